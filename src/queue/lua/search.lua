--[[
  Task search (GET /tasks): walk one status index ZSET from a cursor, keep the tasks whose hash
  matches the filters, stop at `limit` matches or after examining `budget` entries. Read-only.

  KEYS[1]  the index ZSET (uvr_tasks, :processing, :delayed, :dead, :finished, ...)

  ARGV[1]  task hash key prefix
  ARGV[2]  'asc' (lowest score first) or 'desc' (highest first)
  ARGV[3]  cursor score ('' = from the start)     ARGV[4]  cursor id
  ARGV[5]  limit (matches to return)              ARGV[6]  budget (entries to examine at most)
  ARGV[7]  hash status the task must have ('' = any)
  ARGV[8]  type ('' = any)    ARGV[9]  group ('' = any)    ARGV[10]  priority ('' = any)
  ARGV[11..] more hash fields to return for each match, after status, type, group, priority

  The cursor is the last entry examined (score and id): the walk continues after it, whether it
  is still in the index or not (an entry popped or settled since does not make the page skip or
  repeat what is left). Equal scores are ordered by member, bytewise, as the ZSET orders them.

  Task hashes are ARGV[1] .. id (not declarable in KEYS); in the tagged layout ARGV[1] carries
  the queue's hash tag, so they share KEYS[1]'s slot.

  Returns { next_score or '', next_id or '', examined, id_1, score_1, values_1..., id_2, ... }
  where values are status, type, group, priority and the ARGV[11..] fields ('' when unset),
  with next '' when the index was walked to its end.
]]
local key, taskPrefix, order = KEYS[1], ARGV[1], ARGV[2]
local cursorScore, cursorId = ARGV[3], ARGV[4]
local limit, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local wantStatus, wantType, wantGroup, wantPriority = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local fields = { 'status', 'type', 'group', 'priority' }
for i = 11, #ARGV do
  fields[#fields + 1] = ARGV[i]
end

-- Bytewise, as a ZSET orders members (Lua's own < follows the locale's collation).
local function lessOrEqual(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a <= #b
end

-- How many entries sort at or before (score, id), and whether (score, id) itself is there.
local function countUpTo(score, id)
  local own = redis.call('ZSCORE', key, id)
  if own and tonumber(own) == tonumber(score) then
    return redis.call('ZRANK', key, id) + 1, true
  end
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local hi = lo + redis.call('ZCOUNT', key, score, score)
  -- Binary search among the equal scores (ordered by member) for the first member after id.
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local member = redis.call('ZRANGE', key, mid, mid)[1]
    if lessOrEqual(member, id) then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo, false
end

local total = redis.call('ZCARD', key)
local pos, step
if order == 'asc' then
  step = 1
  pos = cursorScore == '' and 0 or countUpTo(cursorScore, cursorId)
else
  step = -1
  if cursorScore == '' then
    pos = total - 1
  else
    local upTo, present = countUpTo(cursorScore, cursorId)
    pos = upTo - 1 - (present and 1 or 0)
  end
end

local out = { '', '', 0 }
local matches, examined = 0, 0
local lastScore, lastId = nil, nil
local CHUNK = 100
while matches < limit and examined < budget and pos >= 0 and pos < total do
  local want = math.min(CHUNK, budget - examined)
  local from, to
  if step == 1 then
    from, to = pos, pos + want - 1
  else
    from, to = math.max(0, pos - want + 1), pos
  end
  local chunk = redis.call('ZRANGE', key, from, to, 'WITHSCORES')
  if #chunk == 0 then
    break
  end
  local n = #chunk / 2
  local i = step == 1 and 1 or n
  while i >= 1 and i <= n and matches < limit and examined < budget do
    local id, score = chunk[2 * i - 1], chunk[2 * i]
    examined = examined + 1
    lastScore, lastId = score, id
    pos = pos + step
    local v = redis.call('HMGET', taskPrefix .. id, unpack(fields))
    if v[1]
      and (wantStatus == '' or v[1] == wantStatus)
      and (wantType == '' or v[2] == wantType)
      and (wantGroup == '' or v[3] == wantGroup)
      and (wantPriority == '' or v[4] == wantPriority) then
      matches = matches + 1
      out[#out + 1] = id
      out[#out + 1] = score
      for j = 1, #fields do
        out[#out + 1] = v[j] or ''
      end
    end
    i = i + step
  end
end

if lastId and pos >= 0 and pos < total then
  out[1] = lastScore
  out[2] = lastId
end
out[3] = examined
return out
