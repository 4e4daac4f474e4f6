// With QUEUE_BACKEND=bullmq every way a task enters goes where the job consumes: a WebSocket
// client's clientMessages reach the room through BullMQ, and the retry of a dead-lettered task
// (dashboard, `pushline queue retry`) — which only the Redis engine can do — is refused clearly
// instead of writing to the engine's queue that nothing reads.
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { keysFromEnv, queueOptionsFromEnv } from '../../src/config/derive.ts';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import type { QueueBackend } from '../../src/queue/backend.ts';
import { createBackend } from '../../src/queue/backends/index.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { AUTH, authHeader } from '../helpers/logic.ts';
import { BIN } from '../helpers/processes.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages } from '../helpers/ws.ts';
import { execFile } from 'node:child_process';

let stack: PushStack;
let app: FastifyInstance;
let backend: QueueBackend;
let api: Redis;
let queue: TaskQueue;

beforeAll(async () => {
  stack = await startPushStack(1, { env: { QUEUE_BACKEND: 'bullmq' } });
  const target = { host: '127.0.0.1', port: stack.redis.port, db: 0, password: '' };
  api = createRedis(target, 'api', 'paths-logic');
  await api.connect();
  queue = new TaskQueue(api, keysFromEnv(stack.env), queueOptionsFromEnv(stack.env));
  backend = await createBackend(stack.env, queue, () => createRedis(target, 'command', 'paths-backend'), silentLogger);
  app = await buildLogicApp({ queue, backend, redis: api, credentials: AUTH, defaultPriority: 3, bodyLimit: 65536, taskTypes: LOGIC_TASK_TYPES, log: silentLogger });
});
afterAll(async () => {
  await app?.close();
  await backend?.close();
  api?.disconnect();
  await stack?.close();
});

/** A task in the engine's dead-letter set, as one that died under BullMQ is recorded. */
async function deadTask(id: string): Promise<void> {
  await queue.recordFinished({ id, type: 'echo', priority: '3', status: 'processing', payload: '{}', created_at: String(Date.now()) }, 1, 'dead', { error: 'boom' });
}

describe('QUEUE_BACKEND=bullmq', () => {
  it("a WebSocket client's clientMessages reach the room through the backend", async () => {
    const speaker = await stack.connect(stack.comets[0]!, 'speaker', 'room_bull');
    const listener = await stack.connect(stack.comets[0]!, 'listener', 'room_bull');
    speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: 'through bullmq' } }));
    const message = await waitFor(() => serverMessages(listener)[0], 'the room message');
    expect(message).toMatchObject({ roomId: 'room_bull', userId: 'speaker', messages: [{ content: 'through bullmq' }], seq: 1 });
    const ack = speaker.frames.find((f) => (f as { type: string }).type === 'ack') as { payload: { id: string } };
    expect(message.id).toBe(ack.payload.id);
    // Nothing was left in the engine's queue, which no consumer reads with this backend.
    expect(await stack.client.zcard(queue.keys.tasks.queue)).toBe(0);
    speaker.ws.close();
    listener.ws.close();
  });

  it('refuses a task with a group (400 naming group) and the group routes (501): BullMQ has groups only in its Pro edition', async () => {
    const res = await app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader }, payload: { type: 'echo', group: 'tenant-a' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed', fields: [{ field: 'group', message: expect.stringContaining('QUEUE_BACKEND=redis') }] });
    const put = await app.inject({ method: 'PUT', url: '/groups/tenant-a', headers: { authorization: authHeader }, payload: { concurrency: 1 } });
    expect(put.statusCode).toBe(501);
    expect(put.json()).toMatchObject({ error: 'not_supported', message: expect.stringContaining('QUEUE_BACKEND=redis') });
    // The same in a batch: that item is refused naming group, the others are queued.
    const batch = await app.inject({ method: 'POST', url: '/generate/batch', headers: { authorization: authHeader }, payload: { tasks: [{ type: 'echo', group: 'tenant-a' }, { type: 'echo' }] } });
    expect(batch.statusCode).toBe(207);
    expect(batch.json()).toMatchObject({ accepted: 1, rejected: 1, tasks: [{ index: 0, error: 'validation_failed', fields: [{ field: 'group' }] }, { index: 1, status: 'queued' }] });
    // A delayed item needs the scheduled set of the Redis engine: the whole batch gets 501, as /generate does.
    const delayed = await app.inject({ method: 'POST', url: '/generate/batch', headers: { authorization: authHeader }, payload: { tasks: [{ type: 'echo', delay_ms: 1000 }] } });
    expect(delayed.statusCode).toBe(501);
    expect(delayed.json()).toMatchObject({ error: 'not_supported', message: expect.stringContaining('delay_ms') });
  });

  it('the dashboard retry of a dead-lettered task answers 501 and leaves it dead', async () => {
    await deadTask('000000009001');
    const res = await app.inject({ method: 'POST', url: '/dashboard/api/dead/000000009001/retry', headers: { authorization: authHeader } });
    expect(res.statusCode).toBe(501);
    expect(res.json()).toMatchObject({ error: 'not_supported', message: expect.stringContaining('QUEUE_BACKEND=redis') });
    expect(await stack.client.zscore(queue.keys.tasks.dead, '000000009001')).not.toBeNull();
    expect(await stack.client.zcard(queue.keys.tasks.queue)).toBe(0);
  });

  it('pushline queue retry exits non-zero with one line and leaves it dead', async () => {
    await deadTask('000000009002');
    const env = {
      ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(stack.redis.port), REDIS_KEY_PREFIX: stack.env.REDIS_KEY_PREFIX,
      QUEUE_BACKEND: 'bullmq', LOG_LEVEL: 'silent',
    };
    const outcome = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, [BIN, 'queue', 'retry', '000000009002'], { env, cwd: tmpdir() }, (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
    });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toMatch(/QUEUE_BACKEND=redis/);
    expect(await stack.client.zscore(queue.keys.tasks.dead, '000000009002')).not.toBeNull();
    expect(await stack.client.zcard(queue.keys.tasks.queue)).toBe(0);
  });
});
