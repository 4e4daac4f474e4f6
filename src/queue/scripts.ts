// Loads the queue's Lua scripts from their .lua files once and defines them on a connection.
// ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT, so a restarted Redis just works.
// Every call passes its KEYS count, so ioredis Cluster routes it by its keys (one slot each).
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

type Arg = string | number;

const SCRIPTS = {
  enqueue: { file: 'enqueue.lua' },
  'allocate-id': { file: 'allocate-id.lua' },
  claim: { file: 'claim.lua' },
  settle: { file: 'settle.lua' },
  extend: { file: 'extend.lua' },
  expired: { file: 'expired.lua' },
  cancel: { file: 'cancel.lua' },
  revive: { file: 'revive.lua' },
  search: { file: 'search.lua' },
  'group-limits': { file: 'group-limits.lua' },
  'schedule-advance': { file: 'schedule-advance.lua' },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/**
 * A line `--@include lib/x.lua` is replaced by that file: Redis scripts cannot load one another,
 * and helpers several scripts must agree on (lib/groups.lua: how a task is put back in line)
 * are written once.
 */
function withIncludes(lua: string): string {
  return lua.replace(/^--@include (\S+)$/gm, (_line, file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8'));
}

const sources = new Map<ScriptName, string>();
function source(name: ScriptName): string {
  let lua = sources.get(name);
  if (!lua) {
    lua = withIncludes(readFileSync(new URL(`./lua/${SCRIPTS[name].file}`, import.meta.url), 'utf8'));
    sources.set(name, lua);
  }
  return lua;
}

const prefix = 'pushline_';
const defined = new WeakSet<Redis>();

/**
 * The command names the scripts are defined under. A Redis Cluster client with auto-pipelining
 * must leave them out of it (redis/connect.ts): ioredis groups auto-pipelined commands by the slot
 * of their first argument, which for a script is its key count, so calls for different shards in
 * one event-loop turn would land in one pipeline, which a cluster refuses ("All keys in the
 * pipeline should belong to the same slots allocation group").
 */
export const SCRIPT_COMMANDS: readonly string[] = Object.keys(SCRIPTS).map((name) => prefix + name);
const observers = new WeakMap<Redis, (script: string, seconds: number) => void>();

/** Times every script call made on this connection (metrics); one observer per connection. */
export function observeScripts(redis: Redis, observe: (script: string, seconds: number) => void): void {
  observers.set(redis, observe);
}

/** Runs a queue script by name: KEYS then ARGV, as the script's header lists them. */
export function runScript(redis: Redis, name: ScriptName, keys: string[], args: Arg[]): Promise<unknown> {
  if (!defined.has(redis)) {
    for (const scriptName of Object.keys(SCRIPTS)) {
      redis.defineCommand(prefix + scriptName, { lua: source(scriptName as ScriptName) });
    }
    defined.add(redis);
  }
  const command = (redis as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[prefix + name]!;
  const call = command.bind(redis);
  const reply = call(keys.length, ...keys, ...args);
  const observe = observers.get(redis);
  if (!observe) return reply;
  const started = performance.now();
  return reply.finally(() => observe(name, (performance.now() - started) / 1000));
}
