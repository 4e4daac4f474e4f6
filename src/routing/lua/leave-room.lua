--[[
  Take one connection out of its room (a socket closing, or a dead comet's cleanup).
  One of the two per-slot halves of a disconnect (leave-user.lua is the other): on a Redis
  Cluster a room's keys and a user's keys live in different slots, so no single script may
  touch both; each half declares every key it touches.

  KEYS[1]  room:connections:{room}    KEYS[2]  room:comets:{room} (the per-comet tally)
  ARGV[1]  connection id              ARGV[2]  comet id ('' when unknown)

  SREM from the room; when it was there, count it out of its comet's tally (the field goes
  at 0). Returns 1 when the connection was in the room. Safe to run twice.
]]
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if removed == 1 and ARGV[2] ~= '' then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
return removed
