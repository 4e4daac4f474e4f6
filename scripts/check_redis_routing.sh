#!/usr/bin/env bash
# Shows how a room is routed, with plain redis-cli: its connections, grouped by comet node,
# each connection's info hash, and whether each user is online.
#   ./scripts/check_redis_routing.sh [room]      (default video_123)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROOM="${1:-video_123}"
require_redis
mapfile -t conns < <(rc SMEMBERS "$(rkey room:connections "$ROOM")" | sed "/^$/d" | sort)

echo
echo "1️⃣  房间连接统计 / room $ROOM"
echo "总连接数: ${#conns[@]}"

echo
echo "2️⃣  房间内的连接列表"
for c in "${conns[@]}"; do echo "$c"; done

echo
echo "3️⃣  按 Comet 节点分组"
lines=()
for c in "${conns[@]}"; do
  mapfile -t info < <(rc HMGET "$(rkey connection:info "$c")" comet_id user_id)
  lines+=("[${info[0]:-?}] $c -> ${info[1]:-?}")
done
printf '%s\n' "${lines[@]}" | sort

echo
echo "4️⃣  连接详情 / connection info"
for c in "${conns[@]}"; do
  echo "$c: $(rc HGETALL "$(rkey connection:info "$c")" | paste -sd' ' -)"
done

echo
echo "5️⃣  在线用户检查"
online=0; offline=0
for c in "${conns[@]}"; do
  user=$(rc HGET "$(rkey connection:info "$c")" user_id)
  if [ -n "$user" ] && [ "$(rc EXISTS "$(rkey user:online "$user")")" = "1" ]; then
    echo "✅ $user (连接: $(rc GET "$(rkey user:online "$user")"))"; online=$((online + 1))
  else
    echo "❌ ${user:-?} (离线)"; offline=$((offline + 1))
  fi
done
echo
echo "在线: $online | 离线: $offline"

echo
echo "Comet 节点 / live comets (comet:nodes, last heartbeat):"
now=$(( $(rc TIME | head -1) * 1000 ))
mapfile -t nodes < <(rc ZRANGE "${PREFIX}comet:nodes" 0 -1 WITHSCORES | sed "/^$/d")
if [ "${#nodes[@]}" -eq 0 ]; then echo "  (none: no comet has registered a heartbeat)"; fi
for ((i = 0; i + 1 < ${#nodes[@]}; i += 2)); do
  echo "  ${nodes[$i]}  heartbeat $(( (now - ${nodes[$((i + 1))]%.*}) / 1000 )) s ago"
done
