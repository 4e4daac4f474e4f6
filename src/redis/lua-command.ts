// A Lua script as a named ioredis command (EVALSHA, falling back to EVAL once per connection).
// Each module that owns a script defines it on the connection it is given; several of them may
// be given the same connection, or one of them twice, so a defined name is left as it is.
import type { Cluster, Redis } from 'ioredis';

export function defineLuaCommand(redis: Redis | Cluster, name: string, lua: string, numberOfKeys: number): void {
  if (!(redis as unknown as Record<string, unknown>)[name]) redis.defineCommand(name, { lua, numberOfKeys });
}
