#!/usr/bin/env bash
# Writes the seed docs' test data with plain redis-cli: room video_123 with four viewers,
# two on comet localhost:50051 and two on localhost:50052 — the keys a comet writes when
# clients connect (DESIGN §3), so job routes them exactly as it routes real connections.
#   ./scripts/setup_redis_test_data.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_redis

ROOM=video_123
while read -r conn user comet; do
  rc SADD "$(rkey room:connections "$ROOM")" "$conn" >/dev/null
  rc HSET "$(rkey connection:info "$conn")" comet_id "$comet" user_id "$user" room_id "$ROOM" >/dev/null
  rc SET "$(rkey user:online "$user")" "$conn" >/dev/null
  rc SADD "$(rkey user:connections "$user")" "$conn" >/dev/null
  rc SADD "$(rkey comet:connections "$comet")" "$conn" >/dev/null
  echo "✅ 用户 $user ($conn) -> $comet"
done <<DATA
conn_1 user_123 localhost:50051
conn_2 user_456 localhost:50051
conn_3 user_789 localhost:50052
conn_4 user_999 localhost:50052
DATA

echo
echo "房间 $ROOM 的连接数: $(rc SCARD "$(rkey room:connections "$ROOM")")"
