// user:offline:{user} as the comet reads it. Job writes the list with LPUSH + LTRIM (newest at
// the head, the oldest dropped first when it is full), so the oldest messages are at the tail.
// The comet reads from the tail without removing, writes them to the socket, and only then
// removes them — so a connection that closes midway loses nothing.
import type { Redis } from 'ioredis';
import { defineLuaCommand } from '../redis/lua-command.ts';
import type { RoutingKeys } from '../routing/keys.ts';

// Pops from the tail while the tail is one of the messages just written. Whatever is no longer
// there (job's LTRIM dropped it, or another connection of the user removed it first) is
// skipped, and a message that was not written is never removed.
const ACK = `
local sent = {}
for i = 1, #ARGV do sent[ARGV[i]] = (sent[ARGV[i]] or 0) + 1 end
local removed = 0
while true do
  local oldest = redis.call('LINDEX', KEYS[1], -1)
  if not oldest or not sent[oldest] or sent[oldest] == 0 then break end
  redis.call('RPOP', KEYS[1])
  sent[oldest] = sent[oldest] - 1
  removed = removed + 1
end
return removed
`;

type WithAck = Redis & { pushlineOfflineAck(key: string, ...sent: string[]): Promise<number> };

export interface OfflineStore {
  /** Up to `count` messages, oldest first, left in place. */
  peek(userId: string, count: number): Promise<string[]>;
  /** Removes `sent` (oldest first) as far as they are still the oldest; returns how many. */
  ack(userId: string, sent: readonly string[]): Promise<number>;
}

export function offlineStore(redis: Redis, keys: RoutingKeys): OfflineStore {
  defineLuaCommand(redis, 'pushlineOfflineAck', ACK, 1);
  return {
    async peek(userId, count) {
      const tail = await redis.lrange(keys.userOffline(userId), -count, -1);
      return tail.reverse();
    },
    async ack(userId, sent) {
      if (sent.length === 0) return 0;
      return Number(await (redis as WithAck).pushlineOfflineAck(keys.userOffline(userId), ...sent));
    },
  };
}
