--[[
  Settle leased tasks of a stage, many per call: every state change after a claim.

  KEYS[1]  processing ZSET    KEYS[2]  queue ZSET      KEYS[3]  delayed ZSET
  KEYS[4]  dead ZSET          KEYS[5]  marker ZSET
  KEYS[6]  next stage queue   KEYS[7]  next stage marker   (the results stage, for webhooks)
  KEYS[8..] the task hash of each item, in item order

  ARGV[1]  unused (was the task hash key prefix; kept so the positions below stay)
  ARGV[2]  stage field prefix ('' for tasks, 'webhook_' for the results stage)
  ARGV[3]  hash field whose ms value (× (6 − priority)) is the stage score
  ARGV[4]  retention seconds for finished task hashes (0 = keep)
  ARGV[5]  1 = forward finished tasks that have a hook_url to the next stage
  ARGV[6]  number of items N
  ARGV[7]  retention seconds for a completed `push` task's hash, task stage only (-1 = as ARGV[4],
           0 = deleted at once: a delivered message's record is the room history)
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

  A lease is this token's while the stage status is 'processing' and the stage attempts
  equal the token: every transition writes both together with the ZSET moves, and every
  claim increments attempts. With only-if-expired the lease deadline must also have passed.

  Returns one entry per item: 1 = applied, 0 = refused (the lease is no longer this
  token's: reaped, settled already, or, with only-if-expired, extended meanwhile).
]]
--@include lib/groups.lua
local processing, queue, delayed, dead, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local nextQueue, nextMarker = KEYS[6], KEYS[7]
local taskPrefix, fp, baseField = ARGV[1], ARGV[2], ARGV[3]
local retention = tonumber(ARGV[4])
local forward = ARGV[5] == '1'
local count = tonumber(ARGV[6])
local pushRetention = tonumber(ARGV[7])
-- Task stage: completed and failed ids go to the finished index GET /tasks?status= walks
-- (keys.ts StageKeys.finished: `<queue>:finished`, in the queue's slot), trimmed below.
local finishedKey = queue .. ':finished'
local indexed = false

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowStr = string.format('%d', now)
local attemptsField, statusField, finishedField, errorField = fp .. 'attempts', fp .. 'status', fp .. 'finished_at', fp .. 'error'

local out = {}
local unleased = {}
local wake, wakeNext = false, false
local argi = 8
for item = 1, count do
  local id, token, outcome = ARGV[argi], ARGV[argi + 1], ARGV[argi + 2]
  local delay = tonumber(ARGV[argi + 3])
  local onlyIfExpired = ARGV[argi + 4] == '1'
  local nfields = tonumber(ARGV[argi + 5])
  local fieldsAt = argi + 6
  argi = fieldsAt + nfields * 2

  local key = KEYS[7 + item]
  -- attempts, stage status, hook_url, task status, priority, stage error, score base, group, run_at, type
  local v = redis.call('HMGET', key, attemptsField, statusField, 'hook_url', 'status', 'priority', errorField, baseField, 'group', fp .. 'run_at', 'type')
  -- Only the task stage has groups (docs/queue.md, "Groups").
  local group = fp == '' and v[8] or nil
  local ok = 0
  if not v[2] then
    -- The hash is gone (deleted by hand or expired): only the lease entry is left to drop.
    unleased[#unleased + 1] = id
  elseif v[2] == 'processing' and v[1] == token then
    local leaseScore = onlyIfExpired and redis.call('ZSCORE', processing, id)
    if not (onlyIfExpired and (not leaseScore or tonumber(leaseScore) > now)) then
      ok = 1
      unleased[#unleased + 1] = id
      if group and group_slot_freed(queue, taskPrefix, group, now) then
        wake = true
      end
      -- The caller's fields go on the hash straight from ARGV (no copy into a table per item);
      -- they are results and errors, never the stage state fields written with them.
      local fieldsEnd = fieldsAt + nfields * 2 - 1

      -- A delivered push message (not forwarded to a webhook) keeps its hash PUSH_RETENTION_SECONDS
      -- (0: not at all); nil = the task rule (retention).
      local pushTtl = nil
      if pushRetention >= 0 and outcome == 'completed' and fp == '' and v[10] == 'push' and not (forward and v[3]) then
        pushTtl = pushRetention
      end
      if pushTtl == 0 then
        redis.call('DEL', key)
      elseif outcome == 'completed' or outcome == 'failed' or outcome == 'dead' then
        local hooked = forward and v[3]
        if hooked then
          redis.call('HSET', key, statusField, outcome, finishedField, nowStr, 'webhook_status', 'queued', 'webhook_attempts', 0, unpack(ARGV, fieldsAt, fieldsEnd))
        else
          redis.call('HSET', key, statusField, outcome, finishedField, nowStr, unpack(ARGV, fieldsAt, fieldsEnd))
        end
        -- The error of an earlier, retried attempt would read as this outcome's.
        if outcome == 'completed' and v[6] then
          redis.call('HDEL', key, errorField)
        end
        if outcome == 'dead' then
          redis.call('ZADD', dead, nowStr, id)
        elseif fp == '' and v[10] ~= 'push' then
          -- Push messages are not indexed: at thousands a second they would swamp the index
          -- (memory and searches) and their record is the room history (docs/queue.md).
          redis.call('ZADD', finishedKey, nowStr, id)
          indexed = true
        end
        if hooked then
          redis.call('ZADD', nextQueue, string.format('%d', now * (6 - tonumber(v[5]))), id)
          wakeNext = true
        else
          -- A dead-lettered task stays inspectable and retryable for as long as it is dead.
          local taskStatus = fp == '' and outcome or v[4]
          local ttl = pushTtl or retention
          if ttl > 0 and taskStatus ~= 'dead' then
            redis.call('EXPIRE', key, ttl)
          end
        end
      else
        local kv = { statusField, 'queued' }
        if outcome == 'release' then
          kv[#kv + 1] = attemptsField; kv[#kv + 1] = tonumber(token) - 1
        end
        for i = fieldsAt, fieldsEnd do
          kv[#kv + 1] = ARGV[i]
        end
        if outcome == 'retry' and delay > 0 then
          local dueAt = string.format('%d', now + delay)
          kv[#kv + 1] = fp .. 'retry_at'; kv[#kv + 1] = dueAt
          redis.call('HSET', key, unpack(kv))
          redis.call('ZADD', delayed, dueAt, id)
        else
          redis.call('HSET', key, unpack(kv))
          -- A scheduled task's place is its run_at's, not its created_at's (claim.lua).
          line_up_task(queue, id, string.format('%d', tonumber(v[9] or v[7]) * (6 - tonumber(v[5]))), group)
        end
        wake = true
      end
    end
  end
  out[#out + 1] = ok
end

for i = 1, #unleased, 1000 do
  redis.call('ZREM', processing, unpack(unleased, i, math.min(i + 999, #unleased)))
end
-- The finished index keeps no id whose hash has expired (retention) for longer than until the next settle.
if indexed and retention > 0 then
  redis.call('ZREMRANGEBYSCORE', finishedKey, '-inf', string.format('(%d', now - retention * 1000))
end
-- Requeued work, or a new earliest retry time, must reach a consumer that is blocked.
if wake then
  redis.call('ZADD', marker, 0, '0')
end
if wakeNext then
  redis.call('ZADD', nextMarker, 0, '0')
end
return out
