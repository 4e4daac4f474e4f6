// Delayed and scheduled tasks (delay_ms / run_at): they wait in the scheduled set, enter the
// queue at their start with the place their priority gives at that moment, can be canceled
// while they wait, and /health and `queue status` count them. A real job process runs them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { redisNowMs } from '../../src/schedule/store.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let logic: Awaited<ReturnType<typeof testLogic>>;
const prefix = uniquePrefix();

beforeAll(async () => {
  redis = await startTestRedis();
  logic = await testLogic(redis.port, { keyPrefix: prefix });
});
afterAll(async () => {
  await logic.close();
  await redis.close();
});

const post = (body: unknown) =>
  logic.app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader, 'content-type': 'application/json' }, payload: JSON.stringify(body) });

const redisNow = () => redisNowMs(logic.redis);

function jobEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: prefix, PUSHLINE_DEV: 'true', LOG_LEVEL: 'info',
    JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0', JOB_CONSUMERS: '1', JOB_CONCURRENCY: '1', ...extra,
  };
}

async function stop(job: Proc): Promise<void> {
  job.child.kill('SIGTERM');
  await job.exited;
}

describe('delay_ms / run_at', () => {
  it('due tasks enter the queue at their start and then run by priority; a waiting one is cancelable; /health counts them', async () => {
    const now = await redisNow();
    const start = new Date(now + 1500).toISOString();
    const later = new Date(now + 1501).toISOString();
    // Low priority starting first, high priority a millisecond later, a normal one queued now.
    const low = await post({ type: 'echo', priority: 1, run_at: start, payload: { delay_ms: 20 } });
    const high = await post({ type: 'echo', priority: 5, run_at: later, payload: { delay_ms: 20 } });
    const now3 = await post({ type: 'echo', priority: 3, payload: { delay_ms: 20 } });
    const far = await post({ type: 'echo', priority: 5, delay_ms: 3_600_000 });
    const past = await post({ type: 'echo', priority: 2, run_at: '2020-01-01T00:00:00+02:00', payload: { delay_ms: 20 } });
    for (const r of [low, high, far]) {
      expect(r.statusCode).toBe(202);
      expect(r.json().status).toBe('scheduled');
    }
    expect(now3.json().status).toBe('queued');
    expect(past.json().status).toBe('queued'); // a start in the past runs now
    const [lowId, highId, nowId, farId, pastId] = [low, high, now3, far, past].map((r) => r.json().task_id as string) as [string, string, string, string, string];

    // redis-cli view: status scheduled, run_at on the hash, the scheduled ZSET scored by the start.
    expect(await logic.redis.hget(logic.keys.task(lowId), 'status')).toBe('scheduled');
    expect(await logic.redis.zscore(logic.keys.scheduled, lowId)).toBe(String(Date.parse(start)));
    expect(await logic.redis.hget(logic.keys.task(pastId), 'run_at')).toBeNull();
    expect(await logic.redis.zcard(logic.keys.tasks.queue)).toBe(2);
    const view = await logic.app.inject({ method: 'GET', url: `/tasks/${lowId}`, headers: { authorization: authHeader } });
    expect(view.json()).toMatchObject({ status: 'scheduled', run_at: start });

    const health = await logic.app.inject({ method: 'GET', url: '/health' });
    expect(health.json().scheduled).toBe(3);
    const overview = await logic.app.inject({ method: 'GET', url: '/dashboard/api/overview', headers: { authorization: authHeader } });
    expect(overview.json().scheduled).toBe(3); // the dashboard's "scheduled for later" line
    const metrics = (await logic.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/pushline_queue_depth\{stage="tasks",state="scheduled"[^}]*\} 3\n/);
    const html = await logic.app.inject({ method: 'GET', url: '/dashboard.js' });
    expect(html.body).toContain('scheduled for later');

    // Cancel while scheduled: it leaves the scheduled set and never runs.
    const del = await logic.app.inject({ method: 'DELETE', url: `/tasks/${farId}`, headers: { authorization: authHeader } });
    expect(del.json()).toEqual({ task_id: farId, status: 'canceled' });
    expect(await logic.redis.zscore(logic.keys.scheduled, farId)).toBeNull();
    expect((await logic.app.inject({ method: 'GET', url: '/health' })).json().scheduled).toBe(2);

    // No job ran yet; start one (one slot) only once both starts have passed.
    await waitFor(async () => (await redisNow()) > Date.parse(later), 'both starts passed');
    const job = spawnPushline(['job'], jobEnv());
    try {
      const ids = [lowId, highId, nowId, pastId];
      await waitFor(async () => (await Promise.all(ids.map((id) => logic.redis.hget(logic.keys.task(id), 'status')))).every((s) => s === 'completed'), 'all completed', 30_000);
      const started = async (id: string) => Number(await logic.redis.hget(logic.keys.task(id), 'started_at'));
      // Priority decides among what is due: 5 (due later) before 3 (queued earlier) before 2 before 1 (due first).
      const order = [highId, nowId, pastId, lowId];
      const times = await Promise.all(order.map(started));
      for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
      expect(await logic.redis.hget(logic.keys.task(farId), 'status')).toBe('canceled');
      expect((await logic.app.inject({ method: 'GET', url: '/health' })).json().scheduled).toBe(0);
    } finally {
      await stop(job);
    }
  });

  it('an idle job starts a delayed task once it is due, and queue status counts the waiting ones', async () => {
    const job = spawnPushline(['job'], jobEnv());
    try {
      await waitFor(() => job.output().includes('Consumer 0 started successfully'), 'job consuming', 30_000);
      const r = await post({ type: 'echo', delay_ms: 700 });
      const id = r.json().task_id as string;
      const waiting = await post({ type: 'echo', delay_ms: 3_600_000 });
      await post({ type: 'echo', delay_ms: 3_600_000 });
      const status = spawnPushline(['queue', 'status'], jobEnv());
      expect(await status.exited).toBe(0);
      // 3, or 2 when the short delay has already passed by the time the CLI looks.
      expect(status.output()).toMatch(/Scheduled \(delay_ms \/ run_at, not yet due\): [23] \(ZCARD \S+:scheduled/);
      const done = await waitFor(async () => {
        const h = await logic.redis.hgetall(logic.keys.task(id));
        return h.status === 'completed' ? h : null;
      }, 'the delayed task completed', 20_000);
      expect(Number(done.started_at)).toBeGreaterThanOrEqual(Number(done.run_at));
      const del = await logic.app.inject({ method: 'DELETE', url: `/tasks/${waiting.json().task_id}`, headers: { authorization: authHeader } });
      expect(del.statusCode).toBe(200);
    } finally {
      await stop(job);
    }
  });

  it('refuses bad starts with 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ type: 'echo', delay_ms: 10, run_at: '2030-01-01T00:00:00Z' }, 'run_at'],
      [{ type: 'echo', delay_ms: -1 }, 'delay_ms'],
      [{ type: 'echo', delay_ms: 1.5 }, 'delay_ms'],
      [{ type: 'echo', delay_ms: 400 * 24 * 3600 * 1000 }, 'delay_ms'],
      [{ type: 'echo', run_at: '2030-01-01T00:00:00' }, 'run_at'],
      [{ type: 'echo', run_at: 'tomorrow' }, 'run_at'],
      [{ type: 'echo', run_at: new Date(Date.now() + 400 * 24 * 3600 * 1000).toISOString() }, 'run_at'],
    ];
    for (const [body, field] of cases) {
      const r = await post(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().fields.map((f: { field: string }) => f.field)).toContain(field);
    }
  });
});

describe('scheduled tasks on a sharded, hash-tagged queue', () => {
  it('promotes due tasks on every shard and retries keep their start place', async () => {
    const client = redis.client();
    const keys = queueKeys({ keyPrefix: uniquePrefix(), shards: 2 });
    const queue = new TaskQueue(client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
    // Not due before the first claim below, however slowly a loaded machine gets there (300 ms
    // could pass before it, and that claim would take them); the waitFor then waits them out.
    const made = await queue.enqueue([
      { type: 'echo', priority: 3, start: { delayMs: 2_000 } },
      { type: 'echo', priority: 3, start: { delayMs: 2_000 } },
    ]);
    expect(new Set(made.map((m) => keys.ofTask(m.id).shard))).toEqual(new Set([0, 1]));
    for (const m of made) expect(await client.zscore(keys.ofTask(m.id).scheduled, m.id)).not.toBeNull();
    expect((await queue.stats()).scheduled).toBe(2);
    const first = await queue.tasks.claim(10, 5000);
    expect(first.tasks).toEqual([]);
    expect(first.nextDueMs).not.toBeNull(); // the consumer's wait ends at the earliest start
    const claimed = await waitFor(async () => {
      const batch = await queue.tasks.claim(10, 5000);
      return batch.tasks.length > 0 ? batch.tasks : null;
    }, 'a due scheduled task claimed');
    const task = claimed[0]!;
    const runAt = Number(task.hash.run_at);
    // A retry goes back to the start's place (run_at × (6 − priority)), not the created_at's.
    expect(await queue.tasks.settle([{ id: task.id, token: task.token, outcome: 'retry' }])).toEqual([true]);
    expect(await client.zscore(keys.ofTask(task.id).tasks.queue, task.id)).toBe(String(runAt * 3));
    expect(runAt).toBeGreaterThan(Number(task.hash.created_at));
  });
});
