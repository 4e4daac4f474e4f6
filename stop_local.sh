#!/usr/bin/env bash
# Stops what ./start_local.sh started: logic first (no new work), then job (finishes or hands back
# its tasks), then the comets (close sockets with 1001, remove their routing), Redis last.
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f .env ]; then set -a; . ./.env; set +a; fi
STATE="${PUSHLINE_STATE_DIR:-$PWD/.pushline}"
RUN="$STATE/run"

stop() {
  local name="$1" wait_s="$2" pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((wait_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "⚠️  $name (pid $pid) still running after ${wait_s}s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "✅ $name stopped"
  fi
  rm -f "$pidfile"
}
stop logic 10
stop job "$(( ${JOB_SHUTDOWN_TIMEOUT_MS:-10000} / 1000 + 10 ))"
stop comet1 10
stop comet2 10
# Redis last, and only the one start_local.sh started (its AOF is flushed on SIGTERM).
stop redis 20
