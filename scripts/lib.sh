# Shared by the redis-cli scripts: connection settings from the environment or ./.env (the
# same names the services read), and the `rc` helper that runs redis-cli with them.
# Unless the environment names a Redis itself, a running `pushline start` wins over .env: it
# writes where its Redis really is (not 6379 when that was taken; its cluster's nodes under
# `pushline start --cluster`) to .pushline/env.
STACK_FILE="${PUSHLINE_STATE_DIR:-.pushline}/env"
if [ -z "${REDIS_HOST:-}${REDIS_PORT:-}${REDIS_URL:-}${REDIS_CLUSTER_NODES:-}" ] && [ -f "$STACK_FILE" ]; then
  stack_pid=$(sed -n 's/^PUSHLINE_PID=//p' "$STACK_FILE")
  if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null; then
    stack_port=$(sed -n 's/^REDIS_PORT=//p' "$STACK_FILE")
    stack_nodes=$(sed -n 's/^REDIS_CLUSTER_NODES=//p' "$STACK_FILE")
    if [ -n "$stack_nodes" ]; then
      export REDIS_CLUSTER_NODES="$stack_nodes"
      stack_shards=$(sed -n 's/^REDIS_QUEUE_SHARDS=//p' "$STACK_FILE")
      if [ -n "$stack_shards" ] && [ -z "${REDIS_QUEUE_SHARDS:-}" ]; then export REDIS_QUEUE_SHARDS="$stack_shards"; fi
    elif [ -n "$stack_port" ]; then
      export REDIS_PORT="$stack_port"
      REDIS_HOST=$(sed -n 's/^REDIS_HOST=//p' "$STACK_FILE"); export REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
    fi
  fi
fi
if [ -f .env ]; then
  while IFS='=' read -r name value; do
    case "$name" in
      REDIS_HOST|REDIS_PORT|REDIS_DB|REDIS_PASSWORD|REDIS_KEY_PREFIX|REDIS_TASK_QUEUE|REDIS_RESULT_QUEUE|REDIS_CLUSTER_NODES|REDIS_QUEUE_SHARDS)
        if [ -z "${!name:-}" ]; then value="${value%\"}"; export "$name=${value#\"}"; fi ;;
    esac
  done < <(grep -E '^[A-Z_]+=' .env || true)
fi
HOST="${REDIS_HOST:-localhost}"
PORT="${REDIS_PORT:-6379}"
DB="${REDIS_DB:-0}"
PREFIX="${REDIS_KEY_PREFIX:-}"
# Redis Cluster (REDIS_CLUSTER_NODES=host:port,…): redis-cli -c through the first node (it follows
# MOVED), and the hash-tagged names of docs/scaling.md.
CLUSTER_NODES="${REDIS_CLUSTER_NODES:-}"
SHARDS="${REDIS_QUEUE_SHARDS:-1}"
if [ -n "$CLUSTER_NODES" ]; then
  first_node="${CLUSTER_NODES%%,*}"
  HOST="${first_node%:*}"; PORT="${first_node##*:}"; DB=0
fi
if ! command -v redis-cli >/dev/null 2>&1; then
  echo "❌ redis-cli not found (Debian: apt-get install redis-tools)" >&2
  exit 1
fi
if [ -n "${REDIS_PASSWORD:-}" ]; then export REDISCLI_AUTH="$REDIS_PASSWORD"; fi
if [ -n "$CLUSTER_NODES" ]; then
  rc() { redis-cli -c -h "$HOST" -p "$PORT" --raw "$@"; }
else
  rc() { redis-cli -h "$HOST" -p "$PORT" -n "$DB" --raw "$@"; }
fi
# A routing key: rkey room:connections video_123 → room:connections:video_123, on a cluster
# room:connections:{video_123} (one slot per room, user, connection, comet).
rkey() {
  if [ -n "$CLUSTER_NODES" ]; then echo "${PREFIX}$1:{$2}"; else echo "${PREFIX}$1:$2"; fi
}
# The task queue's key sets, one line per shard: "<task queue> <result queue> <task hash prefix>".
# Plain: uvr_tasks uvr_results task: — tagged (cluster or shards): {uvr_tasks} {uvr_tasks}:uvr_results {uvr_tasks}:task:
queue_shards() {
  local q="${PREFIX}${REDIS_TASK_QUEUE:-uvr_tasks}" r="${REDIS_RESULT_QUEUE:-uvr_results}" i tag
  if [ -z "$CLUSTER_NODES" ] && [ "$SHARDS" -le 1 ]; then echo "$q ${PREFIX}$r ${PREFIX}task:"; return; fi
  for ((i = 0; i < SHARDS; i++)); do
    if [ "$SHARDS" -gt 1 ]; then tag="{$q:$i}"; else tag="{$q}"; fi
    echo "$tag $tag:$r $tag:task:"
  done
}
require_redis() {
  if [ "$(rc PING 2>/dev/null)" != "PONG" ]; then
    echo "❌ Redis 连接失败 / cannot reach Redis at $HOST:$PORT (db $DB${CLUSTER_NODES:+, cluster})" >&2
    exit 1
  fi
  echo "✅ Redis 连接成功"
}
