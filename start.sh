#!/usr/bin/env bash
# Runs pushline on Docker (docker-compose.yml): Redis with AOF, logic, job, two comets; waits until
# every service is healthy and prints where things are. Extra arguments go to `docker compose up`
# (e.g. ./start.sh --profile monitoring is not one: use COMPOSE_PROFILES=monitoring ./start.sh).
# Without Docker: ./start_local.sh.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v docker >/dev/null 2>&1; then
  echo "❌ docker not found. Without Docker run ./start_local.sh (or npx pushline start)." >&2
  exit 1
fi
if [ ! -f .env ] && [ -z "${API_PASSWORD:-}" ]; then
  echo "❌ no .env: cp .env.example .env and set API_USERNAME, API_PASSWORD, WEBHOOK_SECRET, AUTH_SECRET and COMET_GRPC_TOKEN" >&2
  exit 1
fi
docker compose up -d --build "$@"

echo "waiting for the services to be healthy…"
services=(redis logic job comet1 comet2)
for _ in $(seq 1 90); do
  pending=()
  for s in "${services[@]}"; do
    id="$(docker compose ps -q "$s")"
    status="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)"
    [ "$status" = "healthy" ] || pending+=("$s:$status")
  done
  [ ${#pending[@]} -eq 0 ] && break
  sleep 2
done
if [ ${#pending[@]} -ne 0 ]; then
  echo "❌ not healthy after 3 minutes: ${pending[*]} (docker compose logs -f ${pending[0]%%:*})" >&2
  exit 1
fi
cat <<'INFO'
✅ pushline is running on Docker
   logic    http://localhost:8090   (/health, /metrics)
   comets   ws://localhost:8082  ws://localhost:8083
   Redis    docker exec -it uvr-redis redis-cli      (ZCARD uvr_tasks)
   logs     docker compose logs -f logic job comet1 comet2
   stop     docker compose down          (add -v to delete the Redis data)
try:
   curl -u "$API_USERNAME:$API_PASSWORD" -H 'Content-Type: application/json' http://localhost:8090/generate \
     -d '{"type":"echo","payload":{"hello":"world"},"priority":5}'
INFO
