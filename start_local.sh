#!/usr/bin/env bash
# Runs the whole stack without Docker, in the background: Redis (AOF) + logic + job + two comets.
# Logs in logs/*.log, pid files and Redis data under .pushline/ (PUSHLINE_STATE_DIR). Stop it with
# ./stop_local.sh. Configuration comes from the environment or ./.env; without API credentials
# and secrets it runs in dev mode (admin/password), like `npx pushline start`.
#   ./start_local.sh
#   LOGIC_PORT=9090 REDIS_PORT=6380 ./start_local.sh      # other ports
set -euo pipefail
cd "$(dirname "$0")"

if [ -f .env ]; then set -a; . ./.env; set +a; fi
STATE="${PUSHLINE_STATE_DIR:-$PWD/.pushline}"
RUN="$STATE/run"
LOGS="${PUSHLINE_LOG_DIR:-$PWD/logs}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
LOGIC_PORT="${LOGIC_PORT:-8090}"
COMET1_WS="${COMET1_WS_PORT:-8082}"; COMET1_GRPC="${COMET1_GRPC_PORT:-50051}"
COMET2_WS="${COMET2_WS_PORT:-8083}"; COMET2_GRPC="${COMET2_GRPC_PORT:-50052}"
JOB_METRICS_PORT="${JOB_METRICS_PORT:-9464}"
mkdir -p "$RUN" "$LOGS" "$STATE/redis"

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
for name in redis logic job comet1 comet2; do
  if running "$name"; then
    echo "❌ $name is already running (pid $(cat "$RUN/$name.pid")): ./stop_local.sh first" >&2
    exit 1
  fi
done

if [ -z "${API_USERNAME:-}" ] || [ -z "${API_PASSWORD:-}" ] || [ -z "${WEBHOOK_SECRET:-}" ] || [ -z "${AUTH_SECRET:-}" ]; then
  export PUSHLINE_DEV=true
  echo "⚠️  API_USERNAME/API_PASSWORD/WEBHOOK_SECRET/AUTH_SECRET not all set: dev mode (admin/password)"
fi

# Comets refuse gRPC calls without this token; job sends it. A fresh one per run unless set.
if [ -z "${COMET_GRPC_TOKEN:-}" ]; then
  COMET_GRPC_TOKEN="$(node -e "process.stdout.write(require('crypto').randomBytes(24).toString('base64url'))")"
fi
export COMET_GRPC_TOKEN

# Redis: ours, with AOF, unless REDIS_HOST points elsewhere or one already answers there.
if [ "$REDIS_HOST" = "127.0.0.1" ] || [ "$REDIS_HOST" = "localhost" ]; then
  if redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "✅ Redis already answers on $REDIS_HOST:$REDIS_PORT: using it"
  else
    ./scripts/install-redis.sh
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --appendonly yes --appendfsync everysec \
      --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log"
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "✅ Redis started on 127.0.0.1:$REDIS_PORT (AOF in $STATE/redis)"
  fi
fi
export REDIS_HOST REDIS_PORT

# start NAME [VAR=value ...] -- pushline arguments
start() {
  local name="$1"; shift
  local vars=()
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  env "${vars[@]}" nohup node bin/pushline.js "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}
# Dev credentials are served to anyone who can reach logic: keep it on loopback then.
HOST_DEFAULT=0.0.0.0
if [ "${PUSHLINE_DEV:-}" = "true" ]; then HOST_DEFAULT=127.0.0.1; fi
start comet1 COMET_HOST="${COMET_HOST:-$HOST_DEFAULT}" COMET_ID="127.0.0.1:$COMET1_GRPC" COMET_PUBLIC_URL="ws://localhost:$COMET1_WS" -- comet --ws-port "$COMET1_WS" --grpc-port "$COMET1_GRPC"
start comet2 COMET_HOST="${COMET_HOST:-$HOST_DEFAULT}" COMET_ID="127.0.0.1:$COMET2_GRPC" COMET_PUBLIC_URL="ws://localhost:$COMET2_WS" -- comet --ws-port "$COMET2_WS" --grpc-port "$COMET2_GRPC"
start job JOB_METRICS_PORT="$JOB_METRICS_PORT" JOB_METRICS_HOST="${JOB_METRICS_HOST:-$HOST_DEFAULT}" -- job
start logic LOGIC_HOST="${LOGIC_HOST:-$HOST_DEFAULT}" -- logic --port "$LOGIC_PORT"

# Ready when every HTTP endpoint answers 200 (node's fetch: curl may not be installed).
ok() { node -e "fetch('$1').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; }
for _ in $(seq 1 60); do
  if ok "http://127.0.0.1:$LOGIC_PORT/health" && ok "http://127.0.0.1:$COMET1_WS/health" && ok "http://127.0.0.1:$COMET2_WS/health" \
     && ok "http://127.0.0.1:$JOB_METRICS_PORT/metrics"; then
    READY=1; break
  fi
  for name in logic job comet1 comet2; do
    if ! running "$name"; then echo "❌ $name exited during start-up; see $LOGS/$name.log" >&2; tail -n 20 "$LOGS/$name.log" >&2; ./stop_local.sh >/dev/null 2>&1 || true; exit 1; fi
  done
  sleep 0.5
done
if [ -z "${READY:-}" ]; then echo "❌ not healthy after 30 s; see $LOGS/*.log" >&2; exit 1; fi

USER_SHOWN="${API_USERNAME:-admin}:${API_PASSWORD:-password}"
if [ "${PUSHLINE_DEV:-}" != "true" ]; then USER_SHOWN="\$API_USERNAME:\$API_PASSWORD"; fi
cat <<INFO
✅ pushline is running (logs in $LOGS, stop with ./stop_local.sh)
   logic    http://localhost:$LOGIC_PORT   (health: /health, metrics: /metrics)
   job      metrics http://localhost:$JOB_METRICS_PORT/metrics
   comets   ws://localhost:$COMET1_WS  ws://localhost:$COMET2_WS
   Redis    $REDIS_HOST:$REDIS_PORT   (./scripts/check_redis_queue.sh)
try:
   curl -u $USER_SHOWN -H 'Content-Type: application/json' http://localhost:$LOGIC_PORT/generate -d '{"type":"echo","payload":{"hello":"world"},"priority":5}'
INFO
