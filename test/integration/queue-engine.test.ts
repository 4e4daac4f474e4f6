// The Lua engine against a real redis-server: score formula, pop order, every transition.
import { beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { queueKeys, queueScore, type QueueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { redisNowMs } from '../../src/schedule/store.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestRedis();
let keys: QueueKeys;
let queue: TaskQueue;
let client: Redis;

beforeEach(() => {
  client = shared.client;
  keys = queueKeys({ keyPrefix: uniquePrefix() });
  queue = new TaskQueue(client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Until Redis's clock (the one the scripts read) has reached `ms`. */
const untilRedisTime = (ms: number) => waitFor(async () => (await redisNowMs(client)) >= ms, `Redis time ${ms}`);

describe('enqueue', () => {
  it('stores the hash and scores the member enqueue_ms × (6 − priority)', async () => {
    for (const priority of [1, 2, 3, 4, 5]) {
      const { id, createdAtMs } = await queue.enqueueOne({ type: 'echo', priority, payload: '{"a":1}' });
      expect(Number(await client.zscore(keys.tasks.queue, id))).toBe(queueScore(createdAtMs, priority));
      const hash = await client.hgetall(keys.task(id));
      expect(hash).toMatchObject({ id, type: 'echo', priority: String(priority), status: 'queued', payload: '{"a":1}' });
      expect(Number(hash.created_at)).toBe(createdAtMs);
    }
  });

  it('pops strictly by priority, FIFO within a priority, even within the same millisecond', async () => {
    // One script call: all 60 share one Redis TIME value, so ties are decided by id order alone.
    const priorities = Array.from({ length: 60 }, (_, i) => [3, 5, 1, 4, 2][i % 5]!);
    const created = await queue.enqueue(priorities.map((priority) => ({ type: 'echo', priority })));
    expect(new Set(created.map((c) => c.createdAtMs)).size).toBe(1);
    const expected = created
      .map((c, i) => ({ id: c.id, priority: priorities[i]!, order: i }))
      .sort((a, b) => b.priority - a.priority || a.order - b.order)
      .map((c) => c.id);
    const popped: string[] = [];
    for (;;) {
      const batch = await queue.tasks.claim(7, 30_000);
      if (batch.tasks.length === 0) break;
      popped.push(...batch.tasks.map((t) => t.id));
    }
    expect(popped).toEqual(expected);
  });

  it('orders across calls: an older task of the same priority first, a higher priority before both', async () => {
    const a = await queue.enqueueOne({ type: 'echo', priority: 2 });
    await sleep(3);
    const b = await queue.enqueueOne({ type: 'echo', priority: 2 });
    const c = await queue.enqueueOne({ type: 'echo', priority: 4 });
    const batch = await queue.tasks.claim(10, 30_000);
    expect(batch.tasks.map((t) => t.id)).toEqual([c.id, a.id, b.id]);
  });

  it('returns the same task for a repeated idempotency key, and flags a different body', async () => {
    const first = await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'k1', fingerprint: 'f1' } });
    const again = await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'k1', fingerprint: 'f1' } });
    const other = await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'k1', fingerprint: 'f2' } });
    expect(first.outcome).toBe('created');
    expect(again).toEqual({ ...first, outcome: 'existing' });
    expect(other).toMatchObject({ id: first.id, outcome: 'conflict' });
    expect(await client.zcard(keys.tasks.queue)).toBe(1);
    expect(await client.ttl(keys.idempotency('k1'))).toBeGreaterThan(0);
  });
});

describe('claim and settle', () => {
  it('leases: queued → processing with a deadline, attempts as the token, and a wake-up for the rest', async () => {
    await queue.enqueue([{ type: 'echo', priority: 3 }, { type: 'echo', priority: 3 }]);
    const batch = await queue.tasks.claim(1, 10_000);
    const [task] = batch.tasks;
    expect(task).toMatchObject({ token: '1', attempt: 1 });
    expect(task!.hash).toMatchObject({ status: 'processing', attempts: '1' });
    const deadline = Number(await client.zscore(keys.tasks.processing, task!.id));
    expect(deadline).toBe(batch.nowMs + 10_000);
    expect(await client.zcard(keys.tasks.marker)).toBe(1);
  });

  it('completed: leaves processing, records result, expires the hash after the retention period', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    const ok = await queue.tasks.settle([{ id, token: task!.token, outcome: 'completed', fields: { result: '{"x":1}' } }]);
    expect(ok).toEqual([true]);
    expect(await client.zscore(keys.tasks.processing, id)).toBeNull();
    expect(await client.hgetall(keys.task(id))).toMatchObject({ status: 'completed', result: '{"x":1}' });
    const ttl = await client.ttl(keys.task(id));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
  });

  it('refuses a settle with a stale token and a second settle of the same lease', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    expect(await queue.tasks.settle([{ id, token: '7', outcome: 'completed' }])).toEqual([false]);
    expect(await queue.tasks.settle([{ id, token: task!.token, outcome: 'completed' }])).toEqual([true]);
    expect(await queue.tasks.settle([{ id, token: task!.token, outcome: 'failed' }])).toEqual([false]);
    expect(await client.hget(keys.task(id), 'status')).toBe('completed');
  });

  it('retry without delay goes back to its original place in line', async () => {
    const first = await queue.enqueueOne({ type: 'echo', priority: 3 });
    await sleep(3);
    const second = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const score = await client.zscore(keys.tasks.queue, first.id);
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    expect(task!.id).toBe(first.id);
    await queue.tasks.settle([{ id: first.id, token: task!.token, outcome: 'retry', fields: { error: 'boom' } }]);
    expect(await client.zscore(keys.tasks.queue, first.id)).toBe(score);
    expect(await client.hgetall(keys.task(first.id))).toMatchObject({ status: 'queued', error: 'boom', attempts: '1' });
    const next = await queue.tasks.claim(2, 10_000);
    expect(next.tasks.map((t) => t.id)).toEqual([first.id, second.id]);
    expect(next.tasks[0]!.token).toBe('2');
  });

  it('retry with delay waits in the delayed set, then is promoted to its original score', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 4 });
    const score = await client.zscore(keys.tasks.queue, id);
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    // A delay no stall of a loaded machine reaches before the early claim below; the test then
    // waits for Redis's clock to pass it rather than sleeping a guess.
    await queue.tasks.settle([{ id, token: task!.token, outcome: 'retry', delayMs: 2_000 }]);
    expect(await client.zscore(keys.tasks.queue, id)).toBeNull();
    const due = Number(await client.zscore(keys.tasks.delayed, id));
    expect(await client.hget(keys.task(id), 'retry_at')).toBe(String(due));
    const early = await queue.tasks.claim(1, 10_000);
    expect(early.tasks).toEqual([]);
    expect(early.nextDueMs).toBe(due);
    await untilRedisTime(due);
    const later = await queue.tasks.claim(1, 10_000);
    expect(later.tasks.map((t) => t.id)).toEqual([id]);
    expect(await client.zscore(keys.tasks.delayed, id)).toBeNull();
    // Promoted at its original score: check by putting it back and reading the score.
    await queue.tasks.settle([{ id, token: later.tasks[0]!.token, outcome: 'release' }]);
    expect(await client.zscore(keys.tasks.queue, id)).toBe(score);
    expect(await client.hget(keys.task(id), 'attempts')).toBe('1');
  });

  it('dead: into the dead set, kept without expiry; revive puts it back with a fresh budget', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    await queue.tasks.settle([{ id, token: task!.token, outcome: 'dead', fields: { error: 'gave up' } }]);
    expect(await client.zscore(keys.tasks.dead, id)).not.toBeNull();
    expect(await client.ttl(keys.task(id))).toBe(-1);
    expect(await client.hget(keys.task(id), 'status')).toBe('dead');
    expect(await queue.tasks.revive(id)).toBe(true);
    expect(await client.hgetall(keys.task(id))).toMatchObject({ status: 'queued', attempts: '0' });
    expect(await client.zcard(keys.tasks.dead)).toBe(0);
    expect(await queue.tasks.revive(id)).toBe(false);
  });

  it('forwards a finished task with hook_url to the results stage at finished_ms × (6 − priority)', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 5, hookUrl: 'https://example.test/hook' });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    await queue.tasks.settle([{ id, token: task!.token, outcome: 'failed', fields: { error: 'bad input' } }]);
    const hash = await client.hgetall(keys.task(id));
    expect(hash).toMatchObject({ status: 'failed', webhook_status: 'queued' });
    expect(Number(await client.zscore(keys.results.queue, id))).toBe(Number(hash.finished_at) * 1);
    expect(await client.ttl(keys.task(id))).toBe(-1);
    const [delivery] = (await queue.results.claim(1, 10_000)).tasks;
    expect(delivery).toMatchObject({ id, token: '1' });
    expect(delivery!.hash).toMatchObject({ webhook_status: 'processing', status: 'failed' });
    await queue.results.settle([{ id, token: '1', outcome: 'completed', fields: { webhook_code: '200' } }]);
    expect(await client.hgetall(keys.task(id))).toMatchObject({ webhook_status: 'completed', webhook_code: '200' });
    expect(await client.ttl(keys.task(id))).toBeGreaterThan(0);
  });
});

describe('leases and the reaper', () => {
  it('extend keeps a lease alive; an expired lease is listed and requeued only once', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const score = await client.zscore(keys.tasks.queue, id);
    const claimed = await queue.tasks.claim(1, 100);
    const [task] = claimed.tasks;
    // Extended far past the claim's 100 ms: still leased once that deadline has passed, however
    // slowly a loaded machine gets there (a 100 ms extension could lapse before the check).
    expect(await queue.tasks.extend([{ id, token: task!.token }], 2_000)).toEqual([true]);
    expect(await queue.tasks.extend([{ id, token: '9' }], 2_000)).toEqual([false]);
    await untilRedisTime(claimed.nowMs + 100);
    expect(await queue.tasks.expired(10)).toEqual([]);
    await untilRedisTime(Number(await client.zscore(keys.tasks.processing, id)));
    const expired = await queue.tasks.expired(10);
    expect(expired).toEqual([{ id, token: '1', attempts: 1, maxAttempts: null }]);
    const settle = { id, token: '1', outcome: 'retry' as const, onlyIfExpired: true, fields: { error: 'lease expired' } };
    // Two reapers race: exactly one wins.
    const [a, b] = await Promise.all([queue.tasks.settle([settle]), queue.tasks.settle([settle])]);
    expect([a[0], b[0]].filter(Boolean)).toHaveLength(1);
    expect(await client.zscore(keys.tasks.queue, id)).toBe(score);
    // The original holder can no longer complete it.
    expect(await queue.tasks.settle([{ id, token: '1', outcome: 'completed' }])).toEqual([false]);
  });

  it('only-if-expired leaves a lease alone that was extended after it was listed', async () => {
    const { id } = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const [task] = (await queue.tasks.claim(1, 50)).tasks;
    await sleep(80);
    expect(await queue.tasks.expired(10)).toHaveLength(1);
    await queue.tasks.extend([{ id, token: task!.token }], 10_000);
    expect(await queue.tasks.settle([{ id, token: task!.token, outcome: 'retry', onlyIfExpired: true }])).toEqual([false]);
    expect(await client.hget(keys.task(id), 'status')).toBe('processing');
  });
});

describe('cancel and inspection', () => {
  it('cancels a queued or delayed task, refuses a running one, and says when it does not exist', async () => {
    const a = await queue.enqueueOne({ type: 'echo', priority: 3 });
    expect(await queue.cancel(a.id)).toEqual({ canceled: true, status: 'canceled' });
    expect(await client.zscore(keys.tasks.queue, a.id)).toBeNull();
    expect(await client.hget(keys.task(a.id), 'status')).toBe('canceled');
    expect(await client.ttl(keys.task(a.id))).toBeGreaterThan(0);
    // Cancelling again changes nothing and reports the status the task already has.
    expect(await queue.cancel(a.id)).toEqual({ canceled: false, status: 'canceled' });

    const b = await queue.enqueueOne({ type: 'echo', priority: 3 });
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    expect(await queue.cancel(b.id)).toEqual({ canceled: false, status: 'processing' });
    await queue.tasks.settle([{ id: b.id, token: task!.token, outcome: 'retry', delayMs: 60_000 }]);
    expect(await queue.cancel(b.id)).toEqual({ canceled: true, status: 'canceled' });
    expect(await client.zscore(keys.tasks.delayed, b.id)).toBeNull();
    expect(await queue.cancel('000000999999')).toBeNull();
  });

  it('counts waiting tasks per priority and reports the oldest waiting age', async () => {
    const spec = { 5: 2, 4: 0, 3: 3, 2: 1, 1: 4 } as Record<number, number>;
    for (const [p, n] of Object.entries(spec)) {
      await queue.enqueue(Array.from({ length: n }, () => ({ type: 'echo', priority: Number(p) })));
    }
    const stats = await queue.stats();
    expect(Object.fromEntries(stats.priorities.map((p) => [p.priority, p.queued]))).toEqual(spec);
    expect(stats.tasks).toEqual({ queued: 10, processing: 0, delayed: 0, dead: 0 });
    expect(stats.oldestWaitingAgeMs).toBeGreaterThanOrEqual(0);
    const next = await queue.peek(3);
    expect(next.map((t) => t.priority)).toEqual([5, 5, 3]);
  });
});
