--[[
  Advance a recurring schedule's next run, only if it is still the run this caller fired
  (compare-and-set): the tick's task was enqueued first, with the idempotency key
  schedule:<name>:<tick_ms>, so a job killed between the two steps leaves the run in place for
  another job to fire (its enqueue finds the same task) and advance. Two jobs firing the same
  run make one task, and only one of them moves the run on.

  KEYS[1]  schedule definitions HASH (uvr_tasks:schedules)
  KEYS[2]  next-run ZSET            (uvr_tasks:schedules:next)
  ARGV[1]  schedule name    ARGV[2]  the next-run ms this caller read    ARGV[3]  the new next-run ms

  Returns 1 when advanced, 0 when the run had changed meanwhile (fired by another job, the
  schedule replaced or deleted).
]]
local current = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
