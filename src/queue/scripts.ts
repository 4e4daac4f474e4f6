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
  'schedule-advance': { file: 'schedule-advance.lua' },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const sources = new Map<ScriptName, string>();
function source(name: ScriptName): string {
  let lua = sources.get(name);
  if (!lua) {
    lua = readFileSync(new URL(`./lua/${SCRIPTS[name].file}`, import.meta.url), 'utf8');
    sources.set(name, lua);
  }
  return lua;
}

const prefix = 'pushline_';
const defined = new WeakSet<Redis>();
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
