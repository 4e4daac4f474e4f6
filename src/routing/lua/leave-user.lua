--[[
  Take one connection out of its user's keys: the user's half of a disconnect
  (leave-room.lua is the room's).

  KEYS[1]  user:connections:{user}    KEYS[2]  user:online:{user}
  ARGV[1]  connection id

  SREM from the user's set; when user:online points at this connection, point it at another
  of the user's connections (keeping the TTL) or delete it. Safe to run twice.
]]
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  local other = redis.call('SRANDMEMBER', KEYS[1])
  if other then
    redis.call('SET', KEYS[2], other, 'KEEPTTL')
  else
    redis.call('DEL', KEYS[2])
  end
end
return 1
