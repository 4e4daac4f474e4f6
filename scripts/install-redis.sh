#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing (root: directly; otherwise via sudo).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
  exit 0
fi
echo "redis-server not found: installing Debian package redis-server" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
# The package starts a system-wide instance on 6379; pushline runs its own, so leave that be.
redis-server --version
