# Shared by the redis-cli scripts: connection settings from the environment or ./.env (the
# same names the services read), and the `rc` helper that runs redis-cli with them.
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
