--[[
  Claim up to N tasks of a stage in one call: promote due retries, pop the lowest scores,
  lease them (processing ZSET, score = lease deadline) and return their hashes.
  Popping and leasing happen in one script, so no task is ever outside every ZSET: a
  consumer killed at any instant leaves its tasks either queued or leased (and reaped).

  KEYS[1]  queue ZSET        KEYS[2]  processing ZSET
  KEYS[3]  delayed ZSET      KEYS[4]  marker ZSET

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

  Returns { now_ms, next_delayed_due_ms or '', count, attempts_1, hash_1, attempts_2, hash_2, ... }
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
  local v = redis.call('HMGET', key, baseField, 'priority')
  redis.call('ZREM', delayed, id)
  if v[1] and v[2] then
    redis.call('ZADD', queue, string.format('%d', tonumber(v[1]) * (6 - tonumber(v[2]))), id)
    redis.call('HDEL', key, fp .. 'retry_at')
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
return out
