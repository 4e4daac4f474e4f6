// `.pushline/env`: where a running local stack (`pushline start`) says which ports it ended up on.
// Redis moves off 6379 when that port is taken, so the CLI's inspection commands and the
// redis-cli scripts read this file instead of assuming the default (and writing test data into a
// stranger's Redis). Written once the ports are known, removed on stop; a file left behind by a
// stack that was killed is ignored because its PUSHLINE_PID no longer runs.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';

/** The default data folder of `pushline start`, and where readers look for the file. */
export const DEFAULT_STATE_DIR = '.pushline';

export function stackFilePath(stateDir: string = DEFAULT_STATE_DIR): string {
  return resolve(stateDir, 'env');
}

export function writeStackFile(stateDir: string, values: Record<string, string | number>): string {
  mkdirSync(stateDir, { recursive: true });
  const path = stackFilePath(stateDir);
  const lines = [
    '# Written by `pushline start` while it runs and removed when it stops. The pushline CLI and',
    '# scripts/*.sh read it when REDIS_HOST/REDIS_PORT/REDIS_CLUSTER_NODES are not set in the environment.',
    `PUSHLINE_PID=${process.pid}`,
    ...Object.entries(values).map(([k, v]) => `${k}=${v}`),
  ];
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
  return path;
}

export function removeStackFile(stateDir: string): void {
  rmSync(stackFilePath(stateDir), { force: true });
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The values of a running stack's file, or {} when there is none (or its stack is gone). */
export function readStackFile(stateDir: string = DEFAULT_STATE_DIR): Record<string, string> {
  const path = stackFilePath(stateDir);
  if (!existsSync(path)) return {};
  const values = parseDotenv(readFileSync(path));
  const pid = Number(values.PUSHLINE_PID);
  if (!Number.isInteger(pid) || pid <= 0 || !running(pid)) return {};
  return values;
}

/** Names that say where Redis is: any of them in the environment and a local stack is not looked for. */
const REDIS_ADDRESS = ['REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_CLUSTER_NODES'] as const;

/**
 * The environment for a tool that talks to "the" Redis: the process environment wins, then a
 * running local stack's address (its redis-server, or its cluster under `pushline start
 * --cluster`), then `.env` (`raw` is .env with the environment on top).
 */
export function withLocalStack(raw: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  if (REDIS_ADDRESS.some((name) => env[name])) return raw;
  const stack = readStackFile(raw.PUSHLINE_STATE_DIR || DEFAULT_STATE_DIR);
  const { REDIS_URL: _url, REDIS_HOST: _host, REDIS_PORT: _port, REDIS_CLUSTER_NODES: _nodes, ...rest } = raw;
  if (stack.REDIS_CLUSTER_NODES) {
    // The shard count decides the key names: the stack's, unless the environment sets its own.
    const shards = env.REDIS_QUEUE_SHARDS ? {} : stack.REDIS_QUEUE_SHARDS ? { REDIS_QUEUE_SHARDS: stack.REDIS_QUEUE_SHARDS } : {};
    return { ...rest, REDIS_CLUSTER_NODES: stack.REDIS_CLUSTER_NODES, ...shards };
  }
  if (!stack.REDIS_PORT) return raw;
  return { ...rest, REDIS_HOST: stack.REDIS_HOST ?? '127.0.0.1', REDIS_PORT: stack.REDIS_PORT };
}
