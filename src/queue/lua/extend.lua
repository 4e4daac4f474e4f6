--[[
  Extend the leases of tasks a consumer is still working on.

  KEYS[1]  processing ZSET    KEYS[2..] the task hash of each pair, in pair order
  ARGV[1]  unused (was the task hash key prefix)     ARGV[2]  stage field prefix
  ARGV[3]  visibility timeout ms    ARGV[4..] pairs of id, lease token (attempts)

  Returns one entry per pair: 1 = extended, 0 = the lease is gone (reaped, or another
  consumer holds a newer one); the caller should stop that work, its result would be refused.
]]
local processing, fp = KEYS[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = string.format('%d', now + tonumber(ARGV[3]))
local out = {}
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local ok = 0
  if redis.call('ZSCORE', processing, id)
      and redis.call('HGET', KEYS[1 + (i - 2) / 2], fp .. 'attempts') == token then
    redis.call('ZADD', processing, 'XX', deadline, id)
    ok = 1
  end
  out[#out + 1] = ok
end
return out
