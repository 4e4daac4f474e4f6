// Room history (room:history:{room}, a capped STREAM): job appends each room message before it
// is delivered, so a client that missed one recovers it by seq (comet reads it back). A job batch
// appends a room's messages in one script call (lua/append-history.lua) inside its routing read's
// pipeline, in the room's slot.
import { readFileSync } from 'node:fs';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { defineLuaCommand } from '../redis/lua-command.ts';

const APPEND_HISTORY = readFileSync(new URL('./lua/append-history.lua', import.meta.url), 'utf8');

type HistoryCommands = ChainableCommander & {
  pushlineAppendHistory(key: string, cap: string, ttlSeconds: string, ...entries: string[]): ChainableCommander;
};

export interface HistoryEntry {
  seq: number;
  id: string;
  body: string;
}

/** Defines the append command on a connection (once); pipelines made from it can then append. */
export function defineHistoryAppend(redis: Redis | Cluster): void {
  defineLuaCommand(redis, 'pushlineAppendHistory', APPEND_HISTORY, 1);
}

/** Adds the append of `entries` (in order) to a pipeline of a connection given to defineHistoryAppend. */
export function appendHistory(p: ChainableCommander, key: string, limits: { max: number; ttlSeconds: number }, entries: readonly HistoryEntry[]): void {
  const args: string[] = [];
  for (const e of entries) args.push(String(e.seq), e.id, e.body);
  (p as HistoryCommands).pushlineAppendHistory(key, String(limits.max), String(limits.ttlSeconds), ...args);
}
