--[[
  Groups (docs/queue.md, "Groups"): fair share between groups and per-group limits.
  Included by scripts.ts (`--@include lib/groups.lua`) into every script that puts a task in
  line or takes one out, so they all agree on one way to do it.

  A grouped task waits in its group's ZSET (same score as in the queue); the stage queue holds
  one entry `group:<name>` per group that has tasks waiting and may start one (task ids are
  digits, so the entry never collides with one). Claiming the entry leases the group's head
  task and puts the entry back behind everything waiting at that priority: groups take turns.
  A group at its concurrency limit is "blocked" (in the blocked SET, entry out of the queue)
  until one of its running tasks settles; a group at its rate limit waits as `group:<name>` in
  the delayed ZSET, scored by when its window frees a start, and claim promotes it like a
  retry (so consumers wake for it through claim's next-due time).

  Every key derives from the task queue key, exactly as keys.ts groupKeys() names them, so a
  script keeps its KEYS layout and every key stays in the queue's hash slot (tagged layout).
]]
local GROUP_ENTRY = 'group:'

local function group_key(queue, name) return queue .. ':group:' .. name end
local function group_limits_key(queue) return queue .. ':group_limits' end
local function group_running_key(queue) return queue .. ':group_running' end
local function group_blocked_key(queue) return queue .. ':group_blocked' end
local function group_names_key(queue) return queue .. ':group_names' end
local function group_starts_key(queue, name) return queue .. ':group_starts:' .. name end
local function group_delayed_key(queue) return queue .. ':delayed' end

--- The group of a queue entry (`group:<name>`), or nil for a task id.
local function group_of_entry(member)
  -- Task ids start with a digit: only a member starting with `g` (103) pays for the substring.
  if string.byte(member, 1) == 103 and string.sub(member, 1, 6) == GROUP_ENTRY then return string.sub(member, 7) end
  return nil
end

--- The entry of group `name` joins the queue at `score` (or keeps its lower one), unless the
--- group waits for a slot (blocked) or for its rate window (entry in the delayed ZSET).
local function group_line_up(queue, name, score)
  if redis.call('SISMEMBER', group_blocked_key(queue), name) == 1 then return end
  if redis.call('ZSCORE', group_delayed_key(queue), GROUP_ENTRY .. name) then return end
  redis.call('ZADD', queue, 'LT', score, GROUP_ENTRY .. name)
end

--- Put task `id` back in line at `score` (a string): in its group's ZSET when it has a group,
--- else in the queue. Every path that queues a task goes through here.
local function line_up_task(queue, id, score, group)
  if group and group ~= '' then
    redis.call('ZADD', group_key(queue, group), score, id)
    redis.call('SADD', group_names_key(queue), group)
    group_line_up(queue, group, score)
  else
    redis.call('ZADD', queue, score, id)
  end
end

--- The group's entry goes back in line behind everything already waiting at its head's
--- priority (max(head score, now × (6 − priority))), so groups of one priority take turns.
--- Returns the entry's score, or nil when the group has nothing waiting.
local function group_requeue(queue, taskPrefix, name, now)
  local head = redis.call('ZRANGE', group_key(queue, name), 0, 0, 'WITHSCORES')
  if not head[1] then return nil end
  local priority = tonumber(redis.call('HGET', taskPrefix .. head[1], 'priority')) or 3
  local score = math.max(tonumber(head[2]), now * (6 - priority))
  redis.call('ZADD', queue, 'LT', string.format('%d', score), GROUP_ENTRY .. name)
  return score
end

--- The limits of a group: { concurrency = n|nil, max = n|nil, per = ms|nil }, or nil when it
--- has none. Stored as `concurrency max per_ms` ('-' for unset) in the limits HASH.
local function group_limits(queue, name)
  local raw = redis.call('HGET', group_limits_key(queue), name)
  if not raw then return nil end
  local c, m, p = string.match(raw, '^(%S+) (%S+) (%S+)$')
  return { concurrency = tonumber(c), max = tonumber(m), per = tonumber(p) }
end

--- When a rate-limited group may start its next task: nil when it may start one now.
--- Drops starts older than the window first (a sliding log: at most max starts in any per ms).
local function group_rate_due(queue, name, limits, now)
  if not (limits and limits.max and limits.per) then return nil end
  local starts = group_starts_key(queue, name)
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', string.format('%d', now - limits.per))
  if redis.call('ZCARD', starts) < limits.max then return nil end
  local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + limits.per
end

--- A grouped task left the processing set (settled, retried, released, reaped): its slot is
--- free, and a group blocked on its concurrency limit goes back in line. Returns true when it
--- did: the caller wakes a consumer (the marker), which may be blocked waiting for work.
local function group_slot_freed(queue, taskPrefix, name, now)
  local requeued = false
  local running = redis.call('HINCRBY', group_running_key(queue), name, -1)
  if running <= 0 then
    redis.call('HDEL', group_running_key(queue), name)
  end
  if redis.call('SREM', group_blocked_key(queue), name) == 1 then
    requeued = group_requeue(queue, taskPrefix, name, now) ~= nil
  end
  if running <= 0 and redis.call('EXISTS', group_key(queue, name)) == 0 then
    redis.call('SREM', group_names_key(queue), name)
  end
  return requeued
end
