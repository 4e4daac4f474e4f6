--[[
  Remove connections from every routing key, many per call (a socket closing, or a whole
  dead comet's connections being cleaned up).

  KEYS     none: the keys depend on each connection's info hash, read here
  ARGV[1]  key prefix
  ARGV[2..] connection ids

  For each connection: SREM from its room, user and comet sets, count it out of the room's
  per-comet tally (room:comets:{room}), DEL its info hash, and, when
  user:online:{user} points at it, point it at another of the user's connections (keeping
  the TTL) or delete it. Returns the number of connections that existed.
]]
local prefix = ARGV[1]
local removed = 0
for i = 2, #ARGV do
  local conn = ARGV[i]
  local infoKey = prefix .. 'connection:info:' .. conn
  local info = redis.call('HMGET', infoKey, 'comet_id', 'user_id', 'room_id')
  local comet, user, room = info[1], info[2], info[3]
  if comet or user or room then
    removed = removed + 1
  end
  redis.call('DEL', infoKey)
  if room then
    local removedFromRoom = redis.call('SREM', prefix .. 'room:connections:' .. room, conn)
    if comet and removedFromRoom == 1 then
      local tally = prefix .. 'room:comets:' .. room
      if redis.call('HINCRBY', tally, comet, -1) <= 0 then
        redis.call('HDEL', tally, comet)
      end
    end
  end
  if comet then
    redis.call('SREM', prefix .. 'comet:connections:' .. comet, conn)
  end
  if user then
    local userConns = prefix .. 'user:connections:' .. user
    redis.call('SREM', userConns, conn)
    local onlineKey = prefix .. 'user:online:' .. user
    if redis.call('GET', onlineKey) == conn then
      local other = redis.call('SRANDMEMBER', userConns)
      if other then
        redis.call('SET', onlineKey, other, 'KEEPTTL')
      else
        redis.call('DEL', onlineKey)
      end
    end
  end
end
return removed
