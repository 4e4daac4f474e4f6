// The job's consumers, retries, dead-lettering, webhooks and shutdown, in process, on real Redis.
import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Processor } from '../../src/job/processor.ts';
import { echoProcessor } from '../../src/job/processors/echo.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { testRunner, WEBHOOK_SECRET } from '../helpers/runner.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let receiver: Receiver;
const open: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  receiver = await startReceiver();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
  receiver.received.length = 0;
  receiver.respond([200]);
});
afterAll(async () => {
  await receiver.close();
  await redis.close();
});

async function runner(overrides: Parameters<typeof testRunner>[1] = {}) {
  const r = await testRunner(redis.port, overrides);
  open.push(r);
  return r;
}

const statusOf = (r: Awaited<ReturnType<typeof runner>>, id: string) => r.redis.hget(r.keys.task(id), 'status');

describe('processing', () => {
  it('runs tasks strictly by priority when one consumer takes one at a time', async () => {
    const order: number[] = [];
    const recorder: Processor = { type: 'rec', process: async (ctx) => void order.push(ctx.priority) };
    const r = await runner({ processors: [recorder], consumers: 1, concurrency: 1 });
    // Enqueue the whole backlog before the runner starts, so every task competes.
    const priorities = [1, 3, 5, 2, 4, 5, 1, 3];
    await r.queue.enqueue(priorities.map((priority) => ({ type: 'rec', priority })));
    await r.runner.start();
    await waitFor(() => order.length === priorities.length, 'all tasks run');
    expect(order).toEqual([...priorities].sort((a, b) => b - a));
  });

  it('completes echo with the payload as result, and expires the finished hash', async () => {
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: JSON.stringify({ hi: 1 }) });
    await waitFor(async () => (await statusOf(r, id)) === 'completed', 'completed');
    const hash = await r.redis.hgetall(r.keys.task(id));
    expect(JSON.parse(hash.result!)).toEqual({ hi: 1 });
    expect(hash.attempts).toBe('1');
    expect(await r.redis.ttl(r.keys.task(id))).toBeGreaterThan(0);
    expect(await r.redis.zcard(r.keys.tasks.processing)).toBe(0);
  });

  it('retries with backoff until an attempt succeeds; the last error is cleared on success', async () => {
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: JSON.stringify({ fail_attempts: 2 }) });
    await waitFor(async () => (await statusOf(r, id)) === 'completed', 'completed after retries');
    const hash = await r.redis.hgetall(r.keys.task(id));
    expect(hash.attempts).toBe('3');
    expect(hash.error).toBeUndefined();
  });

  it('dead-letters a task whose attempts are spent, keeping the error', async () => {
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: JSON.stringify({ fail_attempts: 10 }) });
    await waitFor(async () => (await statusOf(r, id)) === 'dead', 'dead');
    const hash = await r.redis.hgetall(r.keys.task(id));
    expect(hash.attempts).toBe('3');
    expect(hash.error).toContain('attempt 3');
    expect(await r.redis.zscore(r.keys.tasks.dead, id)).not.toBeNull();
    expect(await r.redis.ttl(r.keys.task(id))).toBe(-1);
  });

  it('fails a task for good on a permanent error or an unknown type, without retrying', async () => {
    const r = await runner();
    await r.runner.start();
    const a = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: JSON.stringify({ fail: 'permanent' }) });
    const b = await r.queue.enqueueOne({ type: 'nope', priority: 3 });
    await waitFor(async () => (await statusOf(r, a.id)) === 'failed' && (await statusOf(r, b.id)) === 'failed', 'failed');
    expect(await r.redis.hget(r.keys.task(a.id), 'attempts')).toBe('1');
    expect(await r.redis.hget(r.keys.task(b.id), 'error')).toContain('no processor for task type "nope"');
  });
});

describe('webhooks', () => {
  it('POSTs the signed outcome to hook_url and records the delivery on the task', async () => {
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 4, payload: '{"v":7}', hookUrl: `${receiver.url}/hook` });
    await waitFor(async () => (await r.redis.hget(r.keys.task(id), 'webhook_status')) === 'completed', 'webhook delivered');
    expect(receiver.received).toHaveLength(1);
    const [req] = receiver.received;
    const expected = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(req!.body).digest('hex')}`;
    expect(req!.headers['x-pushline-signature']).toBe(expected);
    expect(JSON.parse(req!.body)).toMatchObject({ task_id: id, status: 'completed', priority: 4, result: { v: 7 }, error: null, attempts: 1 });
    expect(JSON.parse(req!.body).finished_at).toMatch(/^\d{4}-/);
    const hash = await r.redis.hgetall(r.keys.task(id));
    expect(hash).toMatchObject({ webhook_code: '200', webhook_attempts: '1' });
    expect(await r.redis.zcard(r.keys.results.queue)).toBe(0);
    expect(await r.redis.ttl(r.keys.task(id))).toBeGreaterThan(0);
  });

  it('retries 5xx and 429 answers, then succeeds', async () => {
    receiver.respond([500, 429, 200]);
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, hookUrl: receiver.url });
    await waitFor(async () => (await r.redis.hget(r.keys.task(id), 'webhook_status')) === 'completed', 'webhook delivered');
    expect(receiver.received).toHaveLength(3);
    expect(await r.redis.hget(r.keys.task(id), 'webhook_attempts')).toBe('3');
  });

  it('treats other 4xx as final: failed, not retried, status code recorded', async () => {
    receiver.respond([404]);
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, hookUrl: receiver.url });
    await waitFor(async () => (await r.redis.hget(r.keys.task(id), 'webhook_status')) === 'failed', 'webhook failed');
    expect(receiver.received).toHaveLength(1);
    const hash = await r.redis.hgetall(r.keys.task(id));
    expect(hash.webhook_code).toBe('404');
    expect(hash.webhook_error).toContain('404');
    expect(hash.status).toBe('completed');
  });

  it('dead-letters a webhook that keeps failing, and reports dead tasks with status dead', async () => {
    receiver.respond([503]);
    const r = await runner();
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: '{"fail_attempts":9}', hookUrl: receiver.url });
    await waitFor(async () => (await r.redis.hget(r.keys.task(id), 'webhook_status')) === 'dead', 'webhook dead');
    expect(receiver.received).toHaveLength(3);
    expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ status: 'dead', attempts: 3 });
    expect(await r.redis.zscore(r.keys.results.dead, id)).not.toBeNull();
  });

  it('refuses private and loopback targets unless allowed (SSRF), without sending anything', async () => {
    const r = await runner({ allowPrivate: false });
    await r.runner.start();
    const { id } = await r.queue.enqueueOne({ type: 'echo', priority: 3, hookUrl: receiver.url });
    await waitFor(async () => (await r.redis.hget(r.keys.task(id), 'webhook_status')) === 'failed', 'webhook refused');
    expect(await r.redis.hget(r.keys.task(id), 'webhook_error')).toMatch(/private|loopback/);
    expect(receiver.received).toHaveLength(0);
  });
});

describe('shutdown', () => {
  it('finishes short tasks and hands long ones back to the queue without spending an attempt', async () => {
    const r = await runner({ shutdownTimeoutMs: 300, processors: [echoProcessor] });
    await r.runner.start();
    const short = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: '{"delay_ms":50}' });
    const long = await r.queue.enqueueOne({ type: 'echo', priority: 3, payload: '{"delay_ms":30000}' });
    await waitFor(async () => (await statusOf(r, long.id)) === 'processing' && (await statusOf(r, short.id)) === 'processing', 'both running');
    await r.runner.stop();
    expect(await statusOf(r, short.id)).toBe('completed');
    expect(await statusOf(r, long.id)).toBe('queued');
    expect(await r.redis.hget(r.keys.task(long.id), 'attempts')).toBe('0');
    expect(await r.redis.zscore(r.keys.tasks.queue, long.id)).not.toBeNull();
    expect(await r.redis.zcard(r.keys.tasks.processing)).toBe(0);
  });
});
