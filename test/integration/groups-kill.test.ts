// At-least-once with groups under fire: job processes are SIGKILLed again and again while grouped
// tasks (some groups with a concurrency limit, one with a rate limit) are enqueued and processed;
// afterwards every task is completed and every group's bookkeeping is back to zero (no slot
// lost with a killed worker, no group left blocked, no stray entry in line).
import { expect, it } from 'vitest';
import { groupKeys, queueKeys } from '../../src/queue/keys.ts';
import { Groups } from '../../src/queue/groups.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('loses no grouped task and no group slot when job processes are SIGKILLed repeatedly', async () => {
  const prefix = uniquePrefix();
  const keys = queueKeys({ keyPrefix: prefix });
  const queue = new TaskQueue(shared.client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  const groups = new Groups(shared.client, keys);
  await groups.setLimits('g0', { concurrency: 1 });
  await groups.setLimits('g1', { concurrency: 3 });
  await groups.setLimits('g2', { rate: { max: 50, per_ms: 100 } });
  const env = {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: prefix,
    PUSHLINE_DEV: 'true', LOG_LEVEL: 'info', JOB_METRICS_PORT: '0', JOB_CONSUMERS: '2', JOB_CONCURRENCY: '8',
    TASK_VISIBILITY_TIMEOUT_MS: '1000', REAPER_INTERVAL_MS: '250', TASK_MAX_ATTEMPTS: '1000',
    TASK_BACKOFF_MS: '10', TASK_BACKOFF_MAX_MS: '50',
  };
  const jobs: Proc[] = [spawnPushline(['job'], env), spawnPushline(['job'], env)];
  const ids: string[] = [];
  let producing = true;
  const producer = (async () => {
    let n = 0;
    while (producing) {
      const batch = Array.from({ length: 20 }, () => {
        n++;
        return { type: 'echo', priority: 1 + (n % 5), payload: JSON.stringify({ delay_ms: n % 3 }), ...(n % 5 === 4 ? {} : { group: `g${n % 4}` }) };
      });
      ids.push(...(await queue.enqueue(batch)).map((r) => r.id));
      await sleep(20);
    }
  })();

  const consuming = (p: Proc) => waitFor(() => p.output().includes('Consumer 1 started successfully'), 'job consuming', 30_000);
  for (let round = 0; round < 6; round++) {
    await Promise.all(jobs.map(consuming));
    await sleep(100 + Math.floor(Math.random() * 400));
    const victim = Math.floor(Math.random() * jobs.length);
    jobs[victim]!.child.kill('SIGKILL');
    await jobs[victim]!.exited;
    jobs[victim] = spawnPushline(['job'], env);
  }
  producing = false;
  await producer;
  expect(ids.length).toBeGreaterThan(200);

  const statuses = async () => {
    const pipeline = shared.client.pipeline();
    for (const id of ids) pipeline.hget(keys.task(id), 'status');
    return (await pipeline.exec())!.map(([, v]) => v as string | null);
  };
  await waitFor(async () => (await statuses()).every((s) => s === 'completed'), 'every task completed', 90_000, 250);

  // The kills hit work in progress: some tasks ran again after their lease expired.
  const attempts = await Promise.all(ids.map((id) => shared.client.hget(keys.task(id), 'attempts')));
  expect(attempts.filter((a) => Number(a) > 1).length).toBeGreaterThan(0);

  const g = groupKeys(keys.tasks.queue);
  expect(await groups.list()).toEqual([
    { name: 'g0', limits: { concurrency: 1 }, waiting: 0, running: 0, blocked: false },
    { name: 'g1', limits: { concurrency: 3 }, waiting: 0, running: 0, blocked: false },
    { name: 'g2', limits: { rate: { max: 50, per_ms: 100 } }, waiting: 0, running: 0, blocked: false },
  ]);
  expect(await shared.client.zcard(keys.tasks.queue)).toBe(0);
  expect(await shared.client.zrange(keys.tasks.delayed, '0', '-1')).toEqual([]);
  expect(await shared.client.smembers(g.names)).toEqual([]);

  for (const j of jobs) j.child.kill('SIGTERM');
  expect(await Promise.all(jobs.map((j) => j.exited))).toEqual([0, 0]);
});
