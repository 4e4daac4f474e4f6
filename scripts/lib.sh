# Shared by the redis-cli scripts: connection settings from the environment or ./.env (the
# same names the services read), and the `rc` helper that runs redis-cli with them.
# Unless the environment names a Redis itself, a running `pushline start` wins over .env: it
# writes where its Redis really is (not 6379 when that was taken) to .pushline/env.
STACK_FILE="${PUSHLINE_STATE_DIR:-.pushline}/env"
if [ -z "${REDIS_HOST:-}${REDIS_PORT:-}${REDIS_URL:-}" ] && [ -f "$STACK_FILE" ]; then
  stack_pid=$(sed -n 's/^PUSHLINE_PID=//p' "$STACK_FILE")
  if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null; then
    stack_port=$(sed -n 's/^REDIS_PORT=//p' "$STACK_FILE")
    if [ -n "$stack_port" ]; then
      export REDIS_PORT="$stack_port"
      REDIS_HOST=$(sed -n 's/^REDIS_HOST=//p' "$STACK_FILE"); export REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
    fi
  fi
fi
if [ -f .env ]; then
  while IFS='=' read -r name value; do
    case "$name" in
      REDIS_HOST|REDIS_PORT|REDIS_DB|REDIS_PASSWORD|REDIS_KEY_PREFIX|REDIS_TASK_QUEUE|REDIS_RESULT_QUEUE)
        if [ -z "${!name:-}" ]; then value="${value%\"}"; export "$name=${value#\"}"; fi ;;
    esac
  done < <(grep -E '^[A-Z_]+=' .env || true)
fi
HOST="${REDIS_HOST:-localhost}"
PORT="${REDIS_PORT:-6379}"
DB="${REDIS_DB:-0}"
PREFIX="${REDIS_KEY_PREFIX:-}"
if ! command -v redis-cli >/dev/null 2>&1; then
  echo "❌ redis-cli not found (Debian: apt-get install redis-tools)" >&2
  exit 1
fi
if [ -n "${REDIS_PASSWORD:-}" ]; then export REDISCLI_AUTH="$REDIS_PASSWORD"; fi
rc() { redis-cli -h "$HOST" -p "$PORT" -n "$DB" --raw "$@"; }
require_redis() {
  if [ "$(rc PING 2>/dev/null)" != "PONG" ]; then
    echo "❌ Redis 连接失败 / cannot reach Redis at $HOST:$PORT (db $DB)" >&2
    exit 1
  fi
  echo "✅ Redis 连接成功"
}
