--[[
  Settle leased tasks of a stage, many per call: every state change after a claim.

  KEYS[1]  processing ZSET    KEYS[2]  queue ZSET      KEYS[3]  delayed ZSET
  KEYS[4]  dead ZSET          KEYS[5]  marker ZSET
  KEYS[6]  next stage queue   KEYS[7]  next stage marker   (the results stage, for webhooks)

  ARGV[1]  task hash key prefix
  ARGV[2]  stage field prefix ('' for tasks, 'webhook_' for the results stage)
  ARGV[3]  hash field whose ms value (× (6 − priority)) is the stage score
  ARGV[4]  retention seconds for finished task hashes (0 = keep)
  ARGV[5]  1 = forward finished tasks that have a hook_url to the next stage
  ARGV[6]  number of items N
  then per item: id, lease token, outcome, delay ms, only-if-expired (0|1),
                 field count F, F field/value pairs to write on the hash

  Outcomes:
    completed | failed  final; forwarded to the next stage when it has a hook_url,
                        otherwise the hash expires after the retention period
    dead                retries exhausted: kept in the dead set (never expires there)
    retry               back to the queue at its original score, or to the delayed set
                        when delay ms > 0 (promoted by claim when due)
    release             as retry with no delay, and the attempt does not count
                        (graceful shutdown handing work back)

  Returns one entry per item: 1 = applied, 0 = refused (the lease is no longer this
  token's: reaped, settled already, or, with only-if-expired, extended meanwhile).
]]
local processing, queue, delayed, dead, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local nextQueue, nextMarker = KEYS[6], KEYS[7]
local taskPrefix, fp, baseField = ARGV[1], ARGV[2], ARGV[3]
local retention = tonumber(ARGV[4])
local forward = ARGV[5] == '1'
local count = tonumber(ARGV[6])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowStr = string.format('%d', now)

local function originalScore(key)
  local v = redis.call('HMGET', key, baseField, 'priority')
  return string.format('%d', tonumber(v[1]) * (6 - tonumber(v[2])))
end

local function finish(key, id)
  if forward and redis.call('HEXISTS', key, 'hook_url') == 1 then
    local priority = tonumber(redis.call('HGET', key, 'priority'))
    redis.call('HSET', key, 'webhook_status', 'queued', 'webhook_attempts', 0)
    redis.call('ZADD', nextQueue, string.format('%d', now * (6 - priority)), id)
    redis.call('ZADD', nextMarker, 0, '0')
    return
  end
  -- A dead-lettered task stays inspectable and retryable for as long as it is dead.
  if retention > 0 and redis.call('HGET', key, 'status') ~= 'dead' then
    redis.call('EXPIRE', key, retention)
  end
end

local out = {}
local wake = false
local argi = 7
for _ = 1, count do
  local id, token, outcome = ARGV[argi], ARGV[argi + 1], ARGV[argi + 2]
  local delay = tonumber(ARGV[argi + 3])
  local onlyIfExpired = ARGV[argi + 4] == '1'
  local nfields = tonumber(ARGV[argi + 5])
  local fieldsAt = argi + 6
  argi = fieldsAt + nfields * 2

  local key = taskPrefix .. id
  local leaseScore = redis.call('ZSCORE', processing, id)
  local ok = 0
  if leaseScore and not (onlyIfExpired and tonumber(leaseScore) > now) then
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', processing, id)
    elseif redis.call('HGET', key, fp .. 'attempts') == token then
      ok = 1
      redis.call('ZREM', processing, id)
      if nfields > 0 then
        local kv = {}
        for i = fieldsAt, fieldsAt + nfields * 2 - 1 do
          kv[#kv + 1] = ARGV[i]
        end
        redis.call('HSET', key, unpack(kv))
      end

      if outcome == 'completed' or outcome == 'failed' then
        redis.call('HSET', key, fp .. 'status', outcome, fp .. 'finished_at', nowStr)
        if outcome == 'completed' then
          -- The error of an earlier, retried attempt would read as this outcome's.
          redis.call('HDEL', key, fp .. 'error')
        end
        finish(key, id)
      elseif outcome == 'dead' then
        redis.call('HSET', key, fp .. 'status', 'dead', fp .. 'finished_at', nowStr)
        redis.call('ZADD', dead, nowStr, id)
        finish(key, id)
      else
        if outcome == 'release' then
          redis.call('HINCRBY', key, fp .. 'attempts', -1)
        end
        redis.call('HSET', key, fp .. 'status', 'queued')
        if outcome == 'retry' and delay > 0 then
          local dueAt = string.format('%d', now + delay)
          redis.call('ZADD', delayed, dueAt, id)
          redis.call('HSET', key, fp .. 'retry_at', dueAt)
        else
          redis.call('ZADD', queue, originalScore(key), id)
        end
        wake = true
      end
    end
  end
  out[#out + 1] = ok
end

-- Requeued work, or a new earliest retry time, must reach a consumer that is blocked.
if wake then
  redis.call('ZADD', marker, 0, '0')
end
return out
