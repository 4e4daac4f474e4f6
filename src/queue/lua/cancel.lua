--[[
  Cancel a task that is still waiting (queued, scheduled, or waiting for a retry).

  KEYS[1]  queue ZSET     KEYS[2]  delayed ZSET     KEYS[3]  the task's hash
  KEYS[4]  scheduled ZSET (optional)
  ARGV[1]  unused (was the task hash key prefix)    ARGV[2]  task id    ARGV[3]  retention seconds (0 = keep)

  Returns { 1, 'canceled' } when this call canceled it, { 0, status } when it was not waiting
  (processing, completed, canceled already, ...), or false when no such task exists.
]]
--@include lib/groups.lua
local key = KEYS[3]
local v = redis.call('HMGET', key, 'status', 'group')
local status, group = v[1], v[2]
if not status then
  return false
end
-- A grouped task waits in its group's ZSET, not in the queue (docs/queue.md, "Groups").
local waiting = group and group_key(KEYS[1], group) or KEYS[1]
local removed = redis.call('ZREM', waiting, ARGV[2]) + redis.call('ZREM', KEYS[2], ARGV[2])
if KEYS[4] then
  removed = removed + redis.call('ZREM', KEYS[4], ARGV[2])
end
if removed == 0 then
  return { 0, status }
end
if group and redis.call('EXISTS', waiting) == 0 then
  -- Its group has nothing left waiting: its entry goes too (a blocked group stays blocked
  -- until its running tasks settle, which then finds nothing to requeue).
  redis.call('ZREM', KEYS[1], GROUP_ENTRY .. group)
  redis.call('ZREM', KEYS[2], GROUP_ENTRY .. group)
  if not redis.call('HGET', group_running_key(KEYS[1]), group) then
    redis.call('SREM', group_names_key(KEYS[1]), group)
  end
end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', key, 'status', 'canceled', 'finished_at', now)
redis.call('HDEL', key, 'retry_at')
-- The finished index GET /tasks?status=canceled walks (keys.ts StageKeys.finished; settle.lua trims it).
redis.call('ZADD', KEYS[1] .. ':finished', now, ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', key, ARGV[3])
end
return { 1, 'canceled' }
