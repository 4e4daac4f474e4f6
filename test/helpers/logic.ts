// Builds the logic app against a test Redis with a fresh key prefix.
import type { FastifyInstance } from 'fastify';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { silentLogger } from '../../src/util/log.ts';
import { uniquePrefix } from './redis.ts';

export const AUTH = { username: 'admin', password: 'password' };
export const authHeader = `Basic ${Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64')}`;

export async function testLogic(port: number, opts: { bodyLimit?: number; keyPrefix?: string; audioWorkDir?: string } = {}) {
  const redis = createRedis({ host: '127.0.0.1', port, db: 0, password: '' }, 'api', 'test-logic');
  redis.on('error', () => {});
  await redis.connect().catch(() => {});
  const keys = queueKeys({ keyPrefix: opts.keyPrefix ?? uniquePrefix() });
  const queue = new TaskQueue(redis, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
  const app: FastifyInstance = await buildLogicApp({
    queue,
    redis,
    credentials: AUTH,
    defaultPriority: 3,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    taskTypes: LOGIC_TASK_TYPES,
    log: silentLogger,
    ...(opts.audioWorkDir ? { audioWorkDir: opts.audioWorkDir } : {}),
  });
  return {
    app,
    queue,
    keys,
    redis,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}
