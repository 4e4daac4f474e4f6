--[[
  Hands out one task id, and a room seq when asked, without queueing anything: the BullMQ and
  Kafka backends queue elsewhere but number their tasks exactly as enqueue.lua does, so an id is
  never handed out twice, whichever backend took the task and across a failover that lost the
  counter's last increments (the same lift to Redis ms × 1000; docs/durability.md).

  KEYS[1]  id counter (<queue>:seq)    KEYS[2]  created-tasks counter (<queue>:enqueued)
  KEYS[3]  the room's seq counter (optional)
  ARGV[1]  id prefix: the shard's "<n>-" on a sharded queue, else empty

  Returns { id, now_ms, seq } (seq only with KEYS[2]).
]]
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('INCR', KEYS[1])
local floor = nowMs * 1000
if seq < floor then
  seq = floor
  redis.call('SET', KEYS[1], string.format('%d', floor))
end
redis.call('INCR', KEYS[2])
local out = { ARGV[1] .. string.format('%017d', seq), nowMs }
if KEYS[3] then
  out[3] = redis.call('INCR', KEYS[3])
end
return out
