// Redis restarts (clean and crash) with AOF: queued tasks survive, consumers reconnect by
// themselves and finish the work, logic answers 503 while Redis is away and 202 after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';
import { testRunner } from '../helpers/runner.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => redis.close());

describe.each(['stop', 'kill'] as const)('Redis %s and restart', (how) => {
  it('keeps queued tasks, their order and their hashes', async () => {
    const client = redis.client();
    const keys = queueKeys({ keyPrefix: uniquePrefix() });
    const queue = new TaskQueue(client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
    const created = await queue.enqueue(Array.from({ length: 50 }, (_, i) => ({ type: 'echo', priority: 1 + (i % 5), payload: `{"i":${i}}` })));
    const before = await client.zrange(keys.tasks.queue, '0', '-1', 'WITHSCORES');
    await redis.restart(how);
    const after = await waitFor(async () => client.zrange(keys.tasks.queue, '0', '-1', 'WITHSCORES'), 'redis back');
    expect(after).toEqual(before);
    expect(await client.hgetall(keys.task(created[7]!.id))).toMatchObject({ payload: '{"i":7}', status: 'queued' });
    // Ids keep counting up: the counter survived too.
    const next = await queue.enqueueOne({ type: 'echo', priority: 3 });
    expect(next.id > created[49]!.id).toBe(true);
  });

  it('consumers reconnect and complete every task enqueued before and after the restart', async () => {
    const r = await testRunner(redis.port, { reaperIntervalMs: 200, visibilityMs: 1000 });
    try {
      await r.runner.start();
      const first = await r.queue.enqueue(Array.from({ length: 40 }, () => ({ type: 'echo', priority: 3, payload: '{"delay_ms":20}' })));
      await redis.restart(how);
      const second = await waitFor(
        () => r.queue.enqueue(Array.from({ length: 40 }, () => ({ type: 'echo', priority: 4 }))),
        'enqueue after restart',
      );
      const ids = [...first, ...second].map((c) => c.id);
      await waitFor(async () => {
        const statuses = await Promise.all(ids.map((id) => r.redis.hget(r.keys.task(id), 'status')));
        return statuses.every((s) => s === 'completed');
      }, 'all completed', 30_000, 100);
    } finally {
      await r.close();
    }
  });
});

describe('logic while Redis restarts', () => {
  it('answers 503 while Redis is down and 202 once it is back', async () => {
    const logic = await testLogic(redis.port);
    try {
      const send = () => logic.app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader }, payload: { type: 'echo' } });
      expect((await send()).statusCode).toBe(202);
      await redis.server.stop();
      const down = await send();
      expect(down.statusCode).toBe(503);
      await redis.restart('stop'); // already stopped: this starts it again on the same port and folder
      await waitFor(async () => (await send()).statusCode === 202, '202 again');
    } finally {
      await logic.close();
    }
  });
});
