--[[
  Claim up to N tasks of a stage in one call: promote due retries, pop the lowest scores,
  lease them (processing ZSET, score = lease deadline) and return their hashes.
  Popping and leasing happen in one script, so no task is ever outside every ZSET: a
  consumer killed at any instant leaves its tasks either queued or leased (and reaped).

  KEYS[1]  queue ZSET        KEYS[2]  processing ZSET
  KEYS[3]  delayed ZSET      KEYS[4]  marker ZSET
  KEYS[5]  scheduled ZSET (task stage only): delayed / scheduled tasks, score = due ms

  ARGV[1]  task hash key prefix
  ARGV[2]  stage field prefix ('' for tasks, 'webhook_' for the results stage)
  ARGV[3]  hash field whose ms value (× (6 − priority)) is the stage score
  ARGV[4]  max tasks to claim
  ARGV[5]  visibility timeout ms (lease length)
  ARGV[6]  max delayed tasks to promote
  ARGV[7]  highest score to claim ('+inf' = any): a sharded queue claims from one shard only
           what is not behind another shard's head (docs/scaling.md)

  Task hashes are ARGV[1] .. id for ids found here (not declarable in KEYS); in the tagged
  layout ARGV[1] carries the queue's hash tag, so they share KEYS[1]'s slot.

  A scheduled task enters the queue at score run_at × (6 − priority): the place its priority
  gives at its start time, as if it had been submitted then. Its retries keep that place
  (settle.lua and the promotion below read run_at before the stage's score field).

  Returns { now_ms, next due ms of a retry or scheduled task or '', count, attempts_1, hash_1, attempts_2, hash_2, ... }
  where each hash is HGETALL's flat field/value array as it was before the claim and
  attempts is the stage's new attempts counter: the lease token.
]]
--@include lib/groups.lua
local queue, processing, delayed, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local taskPrefix, fp, baseField = ARGV[1], ARGV[2], ARGV[3]
local limit, visibility, promoteLimit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowStr = string.format('%d', now)

-- Only the task stage has groups; a results-stage hash's `group` field means nothing here.
local grouped = fp == ''

-- Retries whose backoff has elapsed go back to their original place in line (a grouped one
-- into its group); a group whose rate window has room again (`group:<name>`) gets back in line.
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', nowStr, 'LIMIT', 0, promoteLimit)
for _, id in ipairs(due) do
  redis.call('ZREM', delayed, id)
  local dueGroup = grouped and group_of_entry(id)
  if dueGroup then
    group_requeue(queue, taskPrefix, dueGroup, now)
  else
    local key = taskPrefix .. id
    -- A scheduled task's place is its start (run_at), not its creation.
    local v = redis.call('HMGET', key, baseField, 'priority', 'group', fp .. 'run_at')
    if v[1] and v[2] then
      line_up_task(queue, id, string.format('%d', tonumber(v[4] or v[1]) * (6 - tonumber(v[2]))), grouped and v[3])
      redis.call('HDEL', key, fp .. 'retry_at')
    end
  end
end

-- Delayed / scheduled tasks whose start has come join the queue at their start's place.
local scheduled = KEYS[5]
if scheduled then
  local starting = redis.call('ZRANGEBYSCORE', scheduled, '-inf', nowStr, 'WITHSCORES', 'LIMIT', 0, promoteLimit)
  for i = 1, #starting, 2 do
    local id = starting[i]
    local key = taskPrefix .. id
    redis.call('ZREM', scheduled, id)
    local v = redis.call('HMGET', key, 'priority', 'group')
    if v[1] then
      redis.call('HSET', key, fp .. 'status', 'queued')
      line_up_task(queue, id, string.format('%d', tonumber(starting[i + 1]) * (6 - tonumber(v[1]))), grouped and v[2])
    end
  end
end

local out = { nowStr, '', 0 }
local cap = ARGV[7] or '+inf'
local deadline = string.format('%d', now + visibility)
local attemptsField, statusField, startedField = fp .. 'attempts', fp .. 'status', fp .. 'started_at'
local leases = {}

local function pop(count)
  if cap == '+inf' then
    return redis.call('ZPOPMIN', queue, count)
  end
  local popped = redis.call('ZRANGE', queue, '-inf', cap, 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
  for i = 1, #popped, 2 do
    redis.call('ZREM', queue, popped[i])
  end
  return popped
end

-- Leases task `id`; false when its hash was deleted by hand (dropped rather than leased forever).
-- Also answers the task's group (task stage only), whose running count the lease takes a slot of.
local function lease(id)
  local key = taskPrefix .. id
  local hash = redis.call('HGETALL', key)
  if #hash == 0 then
    return false
  end
  local attempts, group = 0, nil
  for j = 1, #hash, 2 do
    if hash[j] == attemptsField then
      attempts = tonumber(hash[j + 1]) or 0
    elseif grouped and hash[j] == 'group' then
      group = hash[j + 1]
    end
  end
  attempts = attempts + 1
  redis.call('HSET', key, attemptsField, attempts, statusField, 'processing', startedField, nowStr)
  leases[#leases + 1] = deadline
  leases[#leases + 1] = id
  -- The hash as it was before this claim; the caller applies the three fields set above.
  out[#out + 1] = attempts
  out[#out + 1] = hash
  return true, group
end

-- Per group, its limits (false = none), read once per call.
local limitsOf = {}
-- The group's entry was popped: lease its head task unless a limit holds it back, then put
-- the entry where it belongs (back in line, blocked, or waiting for its rate window).
-- Returns the score the entry went back in line at, or nil.
local function take_from_group(name)
  local limits = limitsOf[name]
  if limits == nil then
    limits = group_limits(queue, name) or false
    limitsOf[name] = limits
  end
  local runningKey = group_running_key(queue)
  if limits then
    -- Limits may have been lowered since the entry was queued: check before starting.
    if limits.concurrency and (tonumber(redis.call('HGET', runningKey, name)) or 0) >= limits.concurrency then
      redis.call('SADD', group_blocked_key(queue), name)
      return nil
    end
    local dueAt = group_rate_due(queue, name, limits, now)
    if dueAt then
      redis.call('ZADD', delayed, string.format('%d', dueAt), GROUP_ENTRY .. name)
      return nil
    end
  end
  local head = redis.call('ZPOPMIN', group_key(queue, name), 1)
  if not head[1] then
    return nil -- a stale entry: the group has nothing waiting
  end
  if not lease(head[1]) then
    return group_requeue(queue, taskPrefix, name, now)
  end
  local running = redis.call('HINCRBY', runningKey, name, 1)
  if limits and limits.max and limits.per then
    local starts = group_starts_key(queue, name)
    redis.call('ZADD', starts, nowStr, head[1] .. ':' .. nowStr)
    redis.call('PEXPIRE', starts, limits.per)
  end
  if limits and limits.concurrency and running >= limits.concurrency then
    redis.call('SADD', group_blocked_key(queue), name)
    return nil
  end
  local dueAt = group_rate_due(queue, name, limits, now)
  if dueAt then
    if redis.call('EXISTS', group_key(queue, name)) == 1 then
      redis.call('ZADD', delayed, string.format('%d', dueAt), GROUP_ENTRY .. name)
    end
    return nil
  end
  return group_requeue(queue, taskPrefix, name, now)
end

-- Without groups this runs once: one pop of `limit`, all leased. A group entry leases one task
-- and goes back in line, so pop again for the rest of the batch; popped tasks of a lower
-- priority than a requeued entry go back too (strict priority holds inside one batch).
local leased = 0
repeat
  local popped = pop(limit - leased)
  local requeuedAt = nil
  local again = false
  for i = 1, #popped, 2 do
    local member = popped[i]
    if requeuedAt and tonumber(popped[i + 1]) > requeuedAt then
      local back = {}
      for j = i, #popped, 2 do
        back[#back + 1] = popped[j + 1]
        back[#back + 1] = popped[j]
      end
      redis.call('ZADD', queue, unpack(back))
      break
    end
    local name = grouped and group_of_entry(member)
    if name then
      again = true
      local at = take_from_group(name)
      if at and (not requeuedAt or at < requeuedAt) then
        requeuedAt = at
      end
    else
      local _, stray = lease(member)
      if stray then
        -- A grouped task found in the queue itself (put there by a path that bypassed
        -- line_up_task): it still holds a slot of its group, which settle gives back.
        redis.call('HINCRBY', group_running_key(queue), stray, 1)
      end
    end
  end
  leased = (#out - 3) / 2
until not again or leased >= limit or #popped == 0
if #leases > 0 then
  redis.call('ZADD', processing, unpack(leases))
end
out[3] = (#out - 3) / 2

-- More work is waiting: pass the wake-up on so another idle consumer claims it.
if redis.call('ZCARD', queue) > 0 then
  redis.call('ZADD', marker, 0, '0')
end

local nextDue = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if nextDue[2] then
  out[2] = nextDue[2]
end
-- The earliest scheduled start wakes idle consumers too.
if scheduled then
  local nextStart = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
  if nextStart[2] and (out[2] == '' or tonumber(nextStart[2]) < tonumber(out[2])) then
    out[2] = nextStart[2]
  end
end
return out
