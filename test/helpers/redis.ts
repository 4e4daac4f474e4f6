// Real redis-server processes for tests: each suite starts its own on a free loopback port,
// and each test uses its own key prefix so nothing is shared between tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { waitFor } from './wait.ts';
import { afterAll, beforeAll } from 'vitest';
import { startRedisServer, type RunningRedis } from '../../src/local/redis-server.ts';

export interface TestRedis {
  readonly port: number;
  readonly dir: string;
  server: RunningRedis;
  /** A client for assertions (RESP2, like redis-cli). */
  client(): Redis;
  /** Stop (SIGTERM) or crash (SIGKILL) and start again on the same port and data folder. */
  restart(how?: 'stop' | 'kill'): Promise<void>;
  close(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-redis-'));
  const clients: Redis[] = [];
  const handle: TestRedis = {
    server: await startRedisServer({ dir }),
    get port() {
      return handle.server.port;
    },
    dir,
    client() {
      const c = new Redis({ port: handle.port, host: '127.0.0.1', protocol: 2, maxRetriesPerRequest: null });
      clients.push(c);
      return c;
    },
    async restart(how = 'stop') {
      const port = handle.port;
      if (how === 'kill') {
        // With appendfsync everysec Redis may hold acknowledged writes in its AOF buffer for up
        // to 2 s while a slow disk is still syncing (docs/queue.md): a crash test kills it once
        // they reached the file, which is what the AOF promises.
        const probe = new Redis({ port, host: '127.0.0.1', protocol: 2 });
        await waitFor(async () => /aof_buffer_length:0\r?\n/.test(await probe.info('persistence')), 'the AOF buffer written out');
        probe.disconnect();
      }
      await (how === 'kill' ? handle.server.kill() : handle.server.stop());
      handle.server = await startRedisServer({ dir, port });
    },
    async close() {
      for (const c of clients) c.disconnect();
      await handle.server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

/**
 * One redis-server for a whole test file: started before its tests, killed after them.
 * Read `.redis` / `.client` inside tests (they exist once beforeAll has run).
 */
export function useTestRedis(): { readonly redis: TestRedis; readonly client: Redis } {
  const shared = {} as { redis: TestRedis; client: Redis };
  beforeAll(async () => {
    shared.redis = await startTestRedis();
    shared.client = shared.redis.client();
  });
  afterAll(async () => shared.redis?.close());
  return shared;
}
