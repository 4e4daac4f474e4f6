// QUEUE_BACKEND=bullmq end to end: logic submits through BullMQ, job consumes from it with the
// same processors, the final state lands in the task hash and the signed webhook goes out through
// the Redis results stage; what only the Redis engine can do answers 501.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { keysFromEnv, queueOptionsFromEnv } from '../../src/config/derive.ts';
import { parseEnv } from '../../src/config/load.ts';
import type { Env } from '../../src/config/schema.ts';
import { startJob, type JobHandle } from '../../src/job/main.ts';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import type { QueueBackend } from '../../src/queue/backend.ts';
import { createBackend } from '../../src/queue/backends/index.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { AUTH, authHeader } from '../helpers/logic.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let env: Env;
let job: JobHandle;
let app: FastifyInstance;
let backend: QueueBackend;
let api: Redis;
let receiver: Receiver;
let queue: TaskQueue;

beforeAll(async () => {
  redis = await startTestRedis();
  receiver = await startReceiver();
  const parsed = parseEnv({
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: uniquePrefix(), QUEUE_BACKEND: 'bullmq',
    WEBHOOK_SECRET: 'bull-secret', COMET_GRPC_TOKEN: 'bull-grpc-token-0123456789', WEBHOOK_ALLOW_PRIVATE: 'true', TASK_BACKOFF_MS: '20', LOG_LEVEL: 'silent',
    JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0',
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  env = parsed.env;
  job = await startJob(env, silentLogger);
  const target = { host: '127.0.0.1', port: redis.port, db: 0, password: '' };
  api = createRedis(target, 'api', 'bull-logic');
  await api.connect();
  queue = new TaskQueue(api, keysFromEnv(env), queueOptionsFromEnv(env));
  backend = await createBackend(env, queue, () => createRedis(target, 'command', 'bull-logic-backend'), silentLogger);
  app = await buildLogicApp({ queue, backend, redis: api, credentials: AUTH, defaultPriority: 3, bodyLimit: 65536, taskTypes: LOGIC_TASK_TYPES, log: silentLogger });
});
afterAll(async () => {
  await app?.close();
  await backend?.close();
  await job?.stop();
  api?.disconnect();
  await receiver?.close();
  await redis.close();
});

const post = (payload: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader, ...headers }, payload });

describe('QUEUE_BACKEND=bullmq', () => {
  it('runs a task submitted through logic, records it, and sends its signed webhook through the results stage', async () => {
    const res = await post({ type: 'echo', payload: { via: 'bullmq' }, priority: 5, hook_url: `${receiver.url}/hook` });
    expect(res.statusCode).toBe(202);
    const id = res.json().task_id as string;
    expect(id).toMatch(/^\d{17}$/);
    // BullMQ holds it under the same id, at BullMQ priority 6 − 5 = 1.
    const task = await waitFor(async () => {
      const got = await app.inject({ method: 'GET', url: `/tasks/${id}`, headers: { authorization: authHeader } });
      return got.statusCode === 200 && got.json().status === 'completed' ? got.json() : null;
    }, 'completed');
    expect(task).toMatchObject({ task_id: id, status: 'completed', result: { via: 'bullmq' } });
    const hook = await waitFor(() => receiver.received.find((r) => r.path === '/hook' && JSON.parse(r.body).task_id === id), 'webhook');
    expect(hook.headers['x-pushline-signature']).toBe(`sha256=${createHmac('sha256', 'bull-secret').update(hook.body).digest('hex')}`);
    expect(JSON.parse(hook.body)).toMatchObject({ task_id: id, status: 'completed', priority: 5, result: { via: 'bullmq' } });
  });

  it('retries through BullMQ and fails a task for good with its error', async () => {
    const retried = (await post({ type: 'echo', payload: { fail_attempts: 1 } })).json().task_id as string;
    const failed = (await post({ type: 'echo', payload: { fail: 'permanent' } })).json().task_id as string;
    const hashOf = (id: string) => waitFor(async () => {
      const h = await queue.get(id);
      return h && h.status !== 'queued' ? h : null;
    }, `task ${id}`);
    expect(await hashOf(retried)).toMatchObject({ status: 'completed', attempts: '2' });
    expect(await hashOf(failed)).toMatchObject({ status: 'failed', error: expect.stringContaining('permanent') });
  });

  it('/health says which backend carries the tasks', async () => {
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toMatchObject({ status: 'ok', backend: 'bullmq' });
  });

  it('answers 501 for what only the Redis engine does, and 404 with a hint for an unfinished task', async () => {
    const idem = await post({ type: 'echo', payload: {} }, { 'idempotency-key': 'k1' });
    expect(idem.statusCode).toBe(501);
    expect(idem.json()).toEqual({ error: 'not_supported', message: 'Idempotency-Key needs QUEUE_BACKEND=redis' });
    const cancel = await app.inject({ method: 'DELETE', url: '/tasks/000000000001', headers: { authorization: authHeader } });
    expect(cancel.statusCode).toBe(501);
    expect(cancel.json().message).toContain('canceling a task needs QUEUE_BACKEND=redis');
    const missing = await app.inject({ method: 'GET', url: '/tasks/000000999999', headers: { authorization: authHeader } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toContain('once it has finished');
  });
});
