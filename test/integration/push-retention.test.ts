// Issue 11, item 3: a delivered push message's hash is kept PUSH_RETENTION_SECONDS (default 300),
// not TASK_RETENTION_SECONDS (a week: at 1,000 messages/s, 600 M hashes); with 0 it is deleted at
// delivery. Failed and dead pushes keep the normal rules (they are what someone inspects).
import { afterEach, describe, expect, it } from 'vitest';
import { keysFromEnv, queueOptionsFromEnv } from '../../src/config/derive.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages } from '../helpers/ws.ts';

const WEEK = 7 * 86400;
let stack: PushStack | null = null;
afterEach(async () => {
  await stack?.close();
  stack = null;
});

async function sendAndReceive(s: PushStack, roomId: string): Promise<string> {
  const viewer = await s.connect(s.comets[0]!, 'viewer', roomId);
  const res = await s.post('/logic/send', { roomId, userId: 'host', messages: [{ content: 'hello' }] });
  expect(res.statusCode).toBe(202);
  await waitFor(() => serverMessages(viewer).length === 1, 'the viewer got the message');
  expect((serverMessages(viewer)[0]!.messages as { content: string }[])[0]!.content).toBe('hello');
  viewer.ws.close();
  return res.json().task_id as string;
}

/** A stack with `env`, one room message delivered and completed: the TTL left on its hash. */
async function deliveredHashTtl(roomId: string, env: Record<string, string> = {}): Promise<number> {
  stack = await startPushStack(1, { env });
  const id = await sendAndReceive(stack, roomId);
  expect((await stack.finished(id)).status).toBe('completed');
  return stack.client.ttl(keysFromEnv(stack.env).task(id));
}

describe('through logic, the job and a comet', () => {
  it('by default a delivered room message is completed and its hash expires within 300 s (not a week)', async () => {
    const ttl = await deliveredHashTtl('room_a');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it('PUSH_RETENTION_SECONDS=60 bounds the TTL by 60', async () => {
    const ttl = await deliveredHashTtl('room_b', { PUSH_RETENTION_SECONDS: '60' });
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('PUSH_RETENTION_SECONDS=0 deletes the hash at delivery; the viewer got the message and nothing stays leased', async () => {
    stack = await startPushStack(1, { env: { PUSH_RETENTION_SECONDS: '0' } });
    const keys = keysFromEnv(stack.env);
    const id = await sendAndReceive(stack, 'room_c');
    await waitFor(async () => (await stack!.client.zcard(keys.tasks.processing)) === 0, 'settled');
    expect(await stack.client.exists(keys.task(id))).toBe(0);
    expect(await stack.client.zcard(keys.tasks.queue)).toBe(0);
    expect(await stack.client.zcard(keys.tasks.dead)).toBe(0);
  });

  it('a failed push keeps TASK_RETENTION_SECONDS even with PUSH_RETENTION_SECONDS=0', async () => {
    stack = await startPushStack(1, { env: { PUSH_RETENTION_SECONDS: '0' } });
    const queue = new TaskQueue(stack.client, keysFromEnv(stack.env), queueOptionsFromEnv(stack.env));
    // A payload no push mode accepts: the processor refuses it for good (failed, not retried).
    const { id } = await queue.enqueueOne({ type: 'push', priority: 3, payload: JSON.stringify({ mode: 'nowhere', message: {} }) });
    const hash = await stack.finished(id);
    expect(hash.status).toBe('failed');
    expect(hash.error).toBeTruthy();
    const ttl = await stack.client.ttl(keysFromEnv(stack.env).task(id));
    expect(ttl).toBeGreaterThan(300);
    expect(ttl).toBeLessThanOrEqual(WEEK);
  });
});

describe('the engine (settle.lua)', () => {
  const shared = useTestRedis();
  const queueWith = (pushRetentionSeconds?: number) =>
    new TaskQueue(shared.client, queueKeys({ keyPrefix: uniquePrefix() }), {
      retentionSeconds: 3600,
      idempotencyTtlSeconds: 60,
      ...(pushRetentionSeconds === undefined ? {} : { pushRetentionSeconds }),
    });

  async function runOnce(queue: TaskQueue, type: string, outcome: 'completed' | 'failed' | 'dead' | 'retry') {
    const { id } = await queue.enqueueOne({ type, priority: 3, payload: '{}' });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    expect(task!.id).toBe(id);
    expect(await queue.tasks.settle([{ id, token: task!.token, outcome, fields: { result: '{"sent":1}' } }])).toEqual([true]);
    expect(await shared.client.zscore(queue.keys.tasks.processing, id)).toBeNull();
    return { id, key: queue.keys.task(id) };
  }

  it('with 0 a completed push is deleted; a dead or failed push is kept as before', async () => {
    const queue = queueWith(0);
    const done = await runOnce(queue, 'push', 'completed');
    expect(await shared.client.exists(done.key)).toBe(0);

    const dead = await runOnce(queue, 'push', 'dead');
    expect(await shared.client.hget(dead.key, 'status')).toBe('dead');
    expect(await shared.client.ttl(dead.key)).toBe(-1);
    expect(await shared.client.zscore(queue.keys.tasks.dead, dead.id)).not.toBeNull();

    const failed = await runOnce(queue, 'push', 'failed');
    expect(await shared.client.hget(failed.key, 'status')).toBe('failed');
    expect(await shared.client.ttl(failed.key)).toBeGreaterThan(60);
  });

  it('other task types keep TASK_RETENTION_SECONDS; without the option pushes do too', async () => {
    const queue = queueWith(0);
    const other = await runOnce(queue, 'audio', 'completed');
    expect(await shared.client.hget(other.key, 'status')).toBe('completed');
    expect(await shared.client.ttl(other.key)).toBeGreaterThan(60);

    const unset = queueWith(undefined);
    const push = await runOnce(unset, 'push', 'completed');
    expect(await shared.client.hget(push.key, 'status')).toBe('completed');
    expect(await shared.client.ttl(push.key)).toBeGreaterThan(60);
  });

  it('another backend\'s final state (recordFinished) follows the same rule', async () => {
    for (const [setting, check] of [
      [0, async (key: string) => expect(await shared.client.exists(key)).toBe(0)],
      [60, async (key: string) => expect(await shared.client.ttl(key)).toBeLessThanOrEqual(60)],
    ] as const) {
      const queue = queueWith(setting);
      const { id } = await queue.enqueueOne({ type: 'push', priority: 3, payload: '{}' });
      const key = queue.keys.task(id);
      await queue.recordFinished((await queue.get(id))!, 1, 'completed', { result: '{"sent":1}' });
      await check(key);
      const failed = await queue.enqueueOne({ type: 'push', priority: 3, payload: '{}' });
      await queue.recordFinished((await queue.get(failed.id))!, 1, 'failed', { error: 'x' });
      expect(await shared.client.ttl(queue.keys.task(failed.id))).toBeGreaterThan(60);
    }
  });
});
