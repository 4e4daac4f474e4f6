--[[
  Take a dead-lettered task out of a stage's dead set and queue it again at its original
  place in line, with a fresh attempt budget (the dashboard's and CLI's "retry").

  KEYS[1]  dead ZSET    KEYS[2]  queue ZSET    KEYS[3]  marker ZSET    KEYS[4]  the task's hash
  ARGV[1]  unused (was the task hash key prefix)    ARGV[2]  stage field prefix
  ARGV[3]  hash field whose ms value (× (6 − priority)) is the stage score    ARGV[4]  id

  Returns 1 when requeued, 0 when the id is not in the dead set (or its hash is gone).
]]
--@include lib/groups.lua
local key = KEYS[4]
local fp = ARGV[2]
if redis.call('ZREM', KEYS[1], ARGV[4]) == 0 then
  return 0
end
local v = redis.call('HMGET', key, ARGV[3], 'priority', 'group', fp .. 'run_at')
if not (v[1] and v[2]) then
  return 0
end
redis.call('HSET', key, fp .. 'status', 'queued', fp .. 'attempts', 0)
redis.call('HDEL', key, fp .. 'finished_at', fp .. 'retry_at')
redis.call('PERSIST', key)
line_up_task(KEYS[2], ARGV[4], string.format('%d', tonumber(v[4] or v[1]) * (6 - tonumber(v[2]))), fp == '' and v[3] or nil)
redis.call('ZADD', KEYS[3], 0, '0')
return 1
