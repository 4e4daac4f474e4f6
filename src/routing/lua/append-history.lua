--[[
  Append a batch of one room's messages to its history stream (recovery by seq), capped, and
  renew the stream's TTL: one call per room per job batch instead of an XADD per message plus
  an EXPIRE (each command a client builds and sends costs the job far more than Redis).

  KEYS[1]  room:history:{room}
  ARGV[1]  cap (XADD MAXLEN ~)     ARGV[2]  TTL seconds
  then per message, in seq order: seq, message id, body (the JSON clients get)

  Entries are `seq <n> id <id> body <json>`, exactly as an XADD per message wrote them.
  Returns the number of entries added.
]]
local key, cap, ttl = KEYS[1], ARGV[1], ARGV[2]
local added = 0
for i = 3, #ARGV, 3 do
  redis.call('XADD', key, 'MAXLEN', '~', cap, '*', 'seq', ARGV[i], 'id', ARGV[i + 1], 'body', ARGV[i + 2])
  added = added + 1
end
if added > 0 then
  redis.call('EXPIRE', key, ttl)
end
return added
