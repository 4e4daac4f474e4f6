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
local queue, processing, delayed, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local taskPrefix, fp, baseField = ARGV[1], ARGV[2], ARGV[3]
local limit, visibility, promoteLimit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowStr = string.format('%d', now)

-- Retries whose backoff has elapsed go back to their original place in line.
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', nowStr, 'LIMIT', 0, promoteLimit)
for _, id in ipairs(due) do
  local key = taskPrefix .. id
  local v = redis.call('HMGET', key, baseField, 'priority', fp .. 'run_at')
  redis.call('ZREM', delayed, id)
  if v[1] and v[2] then
    redis.call('ZADD', queue, string.format('%d', tonumber(v[3] or v[1]) * (6 - tonumber(v[2]))), id)
    redis.call('HDEL', key, fp .. 'retry_at')
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
    local priority = redis.call('HGET', key, 'priority')
    if priority then
      redis.call('ZADD', queue, string.format('%d', tonumber(starting[i + 1]) * (6 - tonumber(priority))), id)
      redis.call('HSET', key, fp .. 'status', 'queued')
    end
  end
end

local out = { nowStr, '', 0 }
local cap = ARGV[7] or '+inf'
local popped
if cap == '+inf' then
  popped = redis.call('ZPOPMIN', queue, limit)
else
  popped = redis.call('ZRANGE', queue, '-inf', cap, 'BYSCORE', 'LIMIT', 0, limit, 'WITHSCORES')
  for i = 1, #popped, 2 do
    redis.call('ZREM', queue, popped[i])
  end
end
local deadline = string.format('%d', now + visibility)
local attemptsField, statusField, startedField = fp .. 'attempts', fp .. 'status', fp .. 'started_at'
local leases = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local key = taskPrefix .. id
  local hash = redis.call('HGETALL', key)
  -- An id whose hash was deleted by hand is dropped rather than leased forever.
  if #hash > 0 then
    local attempts = 0
    for j = 1, #hash, 2 do
      if hash[j] == attemptsField then
        attempts = tonumber(hash[j + 1]) or 0
        break
      end
    end
    attempts = attempts + 1
    redis.call('HSET', key, attemptsField, attempts, statusField, 'processing', startedField, nowStr)
    leases[#leases + 1] = deadline
    leases[#leases + 1] = id
    -- The hash as it was before this claim; the caller applies the three fields set above.
    out[#out + 1] = attempts
    out[#out + 1] = hash
  end
end
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
