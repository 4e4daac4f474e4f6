#!/usr/bin/env bash
# Shows the task queue with plain redis-cli: sizes per state, waiting tasks per priority, the
# next N tasks with score and priority, how long the oldest task has been waiting, and groups.
#
#   ./scripts/check_redis_queue.sh [N]        (N = how many upcoming tasks to list, default 10)
#
# Connection and names come from the environment or ./.env, as for the services:
# REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD, REDIS_KEY_PREFIX, REDIS_TASK_QUEUE, REDIS_RESULT_QUEUE,
# and on a Redis Cluster or with shards REDIS_CLUSTER_NODES, REDIS_QUEUE_SHARDS (docs/scaling.md):
# then every section is shown per shard key set ({uvr_tasks}, or {uvr_tasks:0} … {uvr_tasks:N-1}).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
NEXT="${1:-10}"
if ! [[ "$NEXT" =~ ^[0-9]+$ ]] || [ "$NEXT" -lt 1 ]; then
  echo "❌ N must be a whole number of at least 1 (got \"$NEXT\")" >&2
  exit 2
fi
if ! [[ "$SHARDS" =~ ^[0-9]+$ ]] || [ "$SHARDS" -lt 1 ]; then
  echo "❌ REDIS_QUEUE_SHARDS must be a whole number of at least 1 (got \"$SHARDS\")" >&2
  exit 2
fi
require_redis
where="$HOST:$PORT, db $DB"
if [ -n "$CLUSTER_NODES" ]; then where="Redis Cluster via $HOST:$PORT"; fi
if [ "$SHARDS" -gt 1 ]; then where="$where, $SHARDS shards"; fi
echo "   ($where)"
mapfile -t shards < <(queue_shards)

mapfile -t t < <(rc TIME)
NOW=$(( ${t[0]} * 1000 + ${t[1]} / 1000 ))

echo
echo "1) 队列大小 / queue sizes (ZCARD)"
for line in "${shards[@]}"; do
  read -r TASKS RESULTS _ <<<"$line"
  printf '   %-28s %s\n' "$TASKS" "$(rc ZCARD "$TASKS")  queued"
  printf '   %-28s %s\n' "$TASKS:processing" "$(rc ZCARD "$TASKS:processing")  leased to a worker"
  printf '   %-28s %s\n' "$TASKS:delayed" "$(rc ZCARD "$TASKS:delayed")  waiting to retry"
  printf '   %-28s %s\n' "$TASKS:dead" "$(rc ZCARD "$TASKS:dead")  dead-lettered"
  printf '   %-28s %s\n' "$TASKS:scheduled" "$(rc ZCARD "$TASKS:scheduled")  waiting for their start (delay_ms / run_at)"
  printf '   %-28s %s\n' "$TASKS:finished" "$(rc ZCARD "$TASKS:finished")  completed/failed/canceled, kept for search"
  printf '   %-28s %s\n' "$RESULTS" "$(rc ZCARD "$RESULTS")  webhooks to send"
  printf '   %-28s %s\n' "$RESULTS:delayed" "$(rc ZCARD "$RESULTS:delayed")  webhooks waiting to retry"
  printf '   %-28s %s\n' "$RESULTS:dead" "$(rc ZCARD "$RESULTS:dead")  webhooks that gave up"
done

age() {
  local ms=$1
  if [ "$ms" -lt 1000 ]; then echo "${ms} ms"; elif [ "$ms" -lt 60000 ]; then echo "$(( ms / 1000 )) s"; else echo "$(( ms / 60000 )) min $(( ms % 60000 / 1000 )) s"; fi
}

echo
echo "2) 按优先级 / waiting by priority (score = enqueue_ms × (6 − priority))"
HORIZON=$(( NOW + 86400000 ))
OLDEST=""
for p in 5 4 3 2 1; do
  f=$(( 6 - p ))
  if [ "$f" -eq 1 ]; then lo=0; else lo=$(( (2 * f - 1) * HORIZON / 2 )); fi
  hi=$(( (2 * f + 1) * HORIZON / 2 - 1 ))
  n=0; oldest_p=""
  for line in "${shards[@]}"; do
    read -r TASKS _ _ <<<"$line"
    k=$(rc ZCOUNT "$TASKS" "$lo" "$hi")
    n=$(( n + k ))
    if [ "$k" -gt 0 ]; then
      first=$(rc ZRANGEBYSCORE "$TASKS" "$lo" "$hi" WITHSCORES LIMIT 0 1 | sed -n 2p)
      enq=$(( ${first%.*} / f ))
      if [ -z "$oldest_p" ] || [ "$enq" -lt "$oldest_p" ]; then oldest_p=$enq; fi
    fi
  done
  line="   priority $p: $n"
  if [ -n "$oldest_p" ]; then
    line="$line   (oldest waiting $(age $(( NOW - oldest_p ))))"
    if [ -z "$OLDEST" ] || [ "$oldest_p" -lt "$OLDEST" ]; then OLDEST=$oldest_p; fi
  fi
  echo "$line"
done

echo
if [ -n "$OLDEST" ]; then
  echo "3) 最久等待 / oldest waiting task: $(age $(( NOW - OLDEST )))"
else
  echo "3) 最久等待 / oldest waiting task: none waiting"
fi

for line in "${shards[@]}"; do
  read -r TASKS _ TASK_PREFIX <<<"$line"
  echo
  echo "4) 接下来的任务 / next $NEXT tasks (ZRANGE $TASKS 0 $(( NEXT - 1 )) WITHSCORES)"
  # redis-cli --raw prints one empty line for an empty reply: drop it, or an empty queue reads as one
  # half pair (id without score).
  mapfile -t next < <(rc ZRANGE "$TASKS" 0 $(( NEXT - 1 )) WITHSCORES | sed '/^$/d')
  if [ "${#next[@]}" -eq 0 ]; then
    echo "   (empty)"
  fi
  i=0
  while [ $(( i + 1 )) -lt ${#next[@]} ]; do
    id=${next[$i]}; score=${next[$((i + 1))]}
    mapfile -t f < <(rc HMGET "${TASK_PREFIX}$id" priority type created_at)
    waited=""
    if [ -n "${f[2]:-}" ]; then waited="waiting $(age $(( NOW - f[2] )))"; fi
    printf '   %2d) %s  priority=%s  type=%s  score=%s  %s\n' $(( i / 2 + 1 )) "$id" "${f[0]:-?}" "${f[1]:-?}" "${score%.*}" "$waited"
    i=$(( i + 2 ))
  done
done
echo
echo "   details: redis-cli ${CLUSTER_NODES:+-c }-h $HOST -p $PORT HGETALL ${TASK_PREFIX}<id>"

# Groups (docs/queue.md#groups): a grouped task waits in $TASKS:group:<name>, not in $TASKS, where
# its group has one entry `group:<name>`; the counts above see that entry, these see the tasks.
echo
echo "5) 分组 / groups (waiting: ZCARD <queue>:group:<name>; running: HGET <queue>:group_running <name>)"
groups_shown=0
for line in "${shards[@]}"; do
  read -r TASKS _ _ <<<"$line"
  mapfile -t names < <( { rc SMEMBERS "$TASKS:group_names"; rc HKEYS "$TASKS:group_limits"; } | sed '/^$/d' | sort -u)
  for name in "${names[@]}"; do
    limits=$(rc HGET "$TASKS:group_limits" "$name")
    blocked=""
    if [ "$(rc SISMEMBER "$TASKS:group_blocked" "$name")" = "1" ]; then blocked="  at its concurrency limit"; fi
    printf '   %-24s waiting=%s  running=%s  limits=%s%s\n' "$name" "$(rc ZCARD "$TASKS:group:$name")" "$(rc HGET "$TASKS:group_running" "$name" | sed 's/^$/0/')" "${limits:-none}" "$blocked"
    groups_shown=$(( groups_shown + 1 ))
  done
done
if [ "$groups_shown" -eq 0 ]; then echo "   (none)"; fi
