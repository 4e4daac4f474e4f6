--[[
  List leases that have run past their deadline, for the reaper to settle.

  KEYS[1]  processing ZSET
  ARGV[1]  task hash key prefix    ARGV[2]  stage field prefix    ARGV[3]  max entries

  Task hashes are ARGV[1] .. id for ids found here (not declarable in KEYS); in the tagged
  layout ARGV[1] carries the queue's hash tag, so they share KEYS[1]'s slot.

  Returns a flat array, three entries per lease: id, lease token (attempts), the stage's max_attempts ('' = default).
  Read-only: the reaper settles each with settle's only-if-expired flag, so a lease
  extended in between, or settled by another reaper, is left alone.
]]
local processing, taskPrefix, fp = KEYS[1], ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', processing, '-inf', string.format('%d', now), 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', taskPrefix .. id, fp .. 'attempts', fp .. 'max_attempts')
  out[#out + 1] = id
  out[#out + 1] = v[1] or ''
  out[#out + 1] = v[2] or ''
end
return out
