--[[
  Set or remove a group's limits (PUT / DELETE /groups/:name). A group that was waiting for a
  slot (blocked) or for its rate window (its entry in the delayed ZSET) gets back in line at
  once, so the next claim applies the new limits instead of the old ones.

  KEYS[1]  task queue ZSET (the group's shard: keys.ofName(group))
  ARGV[1]  task hash key prefix    ARGV[2]  group name
  ARGV[3]  'concurrency max per_ms' ('-' for an unset one), or '' to remove the limits

  Every other key derives from KEYS[1] (lib/groups.lua), in its hash slot.
  Returns 1 when the group had limits before, 0 when not.
]]
--@include lib/groups.lua
local queue, taskPrefix, name, limits = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local had = redis.call('HEXISTS', group_limits_key(queue), name)
if limits == '' then
  redis.call('HDEL', group_limits_key(queue), name)
  redis.call('DEL', group_starts_key(queue, name))
else
  redis.call('HSET', group_limits_key(queue), name, limits)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waited = redis.call('SREM', group_blocked_key(queue), name) + redis.call('ZREM', group_delayed_key(queue), GROUP_ENTRY .. name)
if waited > 0 and group_requeue(queue, taskPrefix, name, now) then
  redis.call('ZADD', queue .. ':marker', 0, '0')
end
return had
