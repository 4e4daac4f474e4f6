--[[
  Cancel a task that is still waiting (queued, scheduled, or waiting for a retry).

  KEYS[1]  queue ZSET     KEYS[2]  delayed ZSET     KEYS[3]  the task's hash
  KEYS[4]  scheduled ZSET (optional)
  ARGV[1]  unused (was the task hash key prefix)    ARGV[2]  task id    ARGV[3]  retention seconds (0 = keep)

  Returns { 1, 'canceled' } when this call canceled it, { 0, status } when it was not waiting
  (processing, completed, canceled already, ...), or false when no such task exists.
]]
local key = KEYS[3]
local status = redis.call('HGET', key, 'status')
if not status then
  return false
end
local removed = redis.call('ZREM', KEYS[1], ARGV[2]) + redis.call('ZREM', KEYS[2], ARGV[2])
if KEYS[4] then
  removed = removed + redis.call('ZREM', KEYS[4], ARGV[2])
end
if removed == 0 then
  return { 0, status }
end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', key, 'status', 'canceled', 'finished_at', now)
redis.call('HDEL', key, 'retry_at')
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', key, ARGV[3])
end
return { 1, 'canceled' }
