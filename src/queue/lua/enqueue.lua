--[[
  Enqueue one or more tasks atomically: task hash + ZADD into the queue + wake-up marker.

  KEYS[1]  queue ZSET            (uvr_tasks)
  KEYS[2]  marker ZSET           (uvr_tasks:marker)
  KEYS[3]  id counter            (uvr_tasks:seq)
  KEYS[4]  created-tasks counter (uvr_tasks:enqueued): what the dashboard's enqueued/s reads,
           since the id counter jumps with the clock
  KEYS[5..] per task in order: its idempotency key (when it has one), then its sequence
            counter key (when it has one, e.g. room:seq:{room})
  KEYS[#KEYS] (last) the scheduled ZSET (uvr_tasks:scheduled), for tasks with delay_ms / run_at

  ARGV[1]  task hash key prefix  ("task:")
  ARGV[2]  idempotency TTL in seconds
  ARGV[3]  number of tasks N
  ARGV[4]  id prefix: '' unsharded, '<shard>-' on a shard of REDIS_QUEUE_SHARDS > 1
  then per task:
    priority, has_idempotency_key (0|1), body fingerprint, has_sequence_key (0|1),
    field count F, F field/value pairs

  A task whose fields hold `run_at` (absolute ms) or `delay_ms` (ms from Redis's now) and whose
  start is still ahead is created with status `scheduled` and waits in the scheduled ZSET (score
  = due ms, also stored as `run_at`) instead of the queue; claim.lua moves it into the queue at
  its time, with score run_at × (6 − priority). A start already past is queued now, as usual.

  A task with a sequence key gets the next value of that counter as its `seq` field, in the
  same atomic step as its id: per-room message order without gaps from failed enqueues.

  Returns a flat array, three entries per task:
    id, outcome (1 = created, 0 = existing task returned for the idempotency key,
    -1 = idempotency key reused with a different body), created_at ms

  Ids are zero-padded INCR values (17 digits, so a numeric-looking id keeps a leading zero,
  which BullMQ's job ids require) so that tasks with the same score (same millisecond and
  priority) pop in enqueue order: a ZSET orders equal scores by member, lexicographically.
  Time comes from Redis (TIME) so every logic process shares one clock.

  Task hashes are ARGV[1] .. id: their ids are made here, so they cannot be declared in KEYS.
  In the tagged layout (Redis Cluster, shards) ARGV[1] carries the queue's hash tag, so every
  hash lies in KEYS[1]'s slot, which Redis Cluster allows a script to touch.
]]
--@include lib/groups.lua
local queue, marker, seqKey, enqueuedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local taskPrefix = ARGV[1]
local idemTtl = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local idPrefix = ARGV[4]

local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowStr = string.format('%d', nowMs)

local out = {}
local argi = 5
local keyi = 5
local added = 0
-- Counters are read once per call and written back once (not INCR per task): a call's tasks take
-- consecutive values, as they would one INCR each.
local lastId, storedId = nil, nil -- the id counter after this call's last id; what it holds now
local sequences = {} -- sequence key -> { its value after this call's last task, taken beyond its INCR }
-- Ungrouped, unscheduled tasks join the queue with one ZADD at the end (score, id, ...).
local lineUp = {}
local scoreOf = {} -- priority -> its score now, formatted
for _ = 1, count do
  -- The priority as the caller sent it goes on the hash (a string: no number-to-string per task).
  local priorityText = ARGV[argi]
  local priority = tonumber(priorityText)
  local hasIdem = ARGV[argi + 1] == '1'
  local fingerprint = ARGV[argi + 2]
  local hasSeq = ARGV[argi + 3] == '1'
  local nfields = tonumber(ARGV[argi + 4])
  local fieldsAt = argi + 5
  argi = fieldsAt + nfields * 2

  local idemKey = nil
  local existing = nil
  if hasIdem then
    idemKey = KEYS[keyi]
    keyi = keyi + 1
    existing = redis.call('GET', idemKey)
  end
  local seqKeyOfTask = nil
  if hasSeq then
    seqKeyOfTask = KEYS[keyi]
    keyi = keyi + 1
  end

  local replay = false
  if existing then
    local sep = string.find(existing, ' ', 1, true)
    local id = string.sub(existing, 1, sep - 1)
    local created = redis.call('HGET', taskPrefix .. id, 'created_at')
    -- A key whose task already expired (retention) no longer protects anything: enqueue anew.
    if created then
      replay = true
      local sameBody = string.sub(existing, sep + 1) == fingerprint
      out[#out + 1] = id; out[#out + 1] = sameBody and 0 or -1; out[#out + 1] = created
    end
  end

  if not replay then
    -- The counter never goes back, even when a failover loses its last increments with the
    -- old master's unreplicated writes: each id is at least the Redis clock in µs-like units
    -- (ms × 1000), so a new master whose clock is not behind the old one's starts above every
    -- id the old master handed out (one Redis issues far fewer than 1000 ids per ms, so the
    -- counter never runs ahead of the clock for long). Within one master ids stay strictly
    -- increasing, 16 digits until the year 2286, so they still sort in enqueue order.
    local seq
    if lastId then
      seq = lastId + 1
    else
      seq = redis.call('INCR', seqKey)
      storedId = seq
    end
    local floor = nowMs * 1000
    if seq < floor then
      seq = floor
    end
    lastId = seq
    local id = string.format('%017d', seq)
    id = idPrefix .. id
    local hash = { 'id', id, 'priority', priorityText, 'status', 'queued', 'created_at', nowStr }
    if seqKeyOfTask then
      local counter = sequences[seqKeyOfTask]
      if counter then
        counter[1] = counter[1] + 1
        counter[2] = counter[2] + 1
      else
        counter = { redis.call('INCR', seqKeyOfTask), 0 }
        sequences[seqKeyOfTask] = counter
      end
      hash[#hash + 1] = 'seq'
      hash[#hash + 1] = counter[1]
    end
    -- One pass over the caller's fields: copied to the hash, and read for what decides where the
    -- task waits: a `group` (its group's ZSET, docs/queue.md "Groups") and a later start
    -- (run_at or delay_ms: the scheduled set).
    local group, dueMs = nil, nil
    for i = fieldsAt, fieldsAt + nfields * 2 - 1, 2 do
      local field, value = ARGV[i], ARGV[i + 1]
      if field == 'run_at' then
        -- Written below only while still ahead: a start already past queues the task now, its
        -- score base then being its created_at.
        dueMs = tonumber(value)
      else
        hash[#hash + 1] = field
        hash[#hash + 1] = value
        if field == 'group' then
          group = value
        elseif field == 'delay_ms' then
          dueMs = nowMs + (tonumber(value) or 0)
        end
      end
    end
    if dueMs and dueMs <= nowMs then
      dueMs = nil
    end
    if dueMs then
      hash[6] = 'scheduled'
      hash[#hash + 1] = 'run_at'
      hash[#hash + 1] = string.format('%d', dueMs)
    end
    redis.call('HSET', taskPrefix .. id, unpack(hash))
    if dueMs then
      redis.call('ZADD', KEYS[#KEYS], string.format('%d', dueMs), id)
    else
      local score = scoreOf[priority]
      if not score then
        score = string.format('%d', nowMs * (6 - priority))
        scoreOf[priority] = score
      end
      if group and group ~= '' then
        line_up_task(queue, id, score, group)
      else
        lineUp[#lineUp + 1] = score
        lineUp[#lineUp + 1] = id
      end
    end
    if idemKey then
      redis.call('SET', idemKey, id .. ' ' .. fingerprint, 'EX', idemTtl)
    end
    added = added + 1
    out[#out + 1] = id; out[#out + 1] = 1; out[#out + 1] = nowStr
  end
end

if lastId and lastId ~= storedId then
  redis.call('SET', seqKey, string.format('%d', lastId))
end
for key, counter in pairs(sequences) do
  if counter[2] > 0 then
    redis.call('INCRBY', key, counter[2])
  end
end
for i = 1, #lineUp, 1000 do
  redis.call('ZADD', queue, unpack(lineUp, i, math.min(i + 999, #lineUp)))
end
if added > 0 then
  redis.call('ZADD', marker, 0, '0')
  redis.call('INCRBY', enqueuedKey, added)
end
return out
