// At-least-once under fire: job processes are SIGKILLed again and again while tasks are
// being enqueued and processed; afterwards every accepted task is completed, none lost.
import { expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestRedis();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('loses no task when job processes are SIGKILLed repeatedly under load', async () => {
  const prefix = uniquePrefix();
  const keys = queueKeys({ keyPrefix: prefix });
  const queue = new TaskQueue(shared.client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  const env = {
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(shared.redis.port),
    REDIS_KEY_PREFIX: prefix,
    PUSHLINE_DEV: 'true',
    LOG_LEVEL: 'info',
    JOB_CONSUMERS: '2',
    JOB_CONCURRENCY: '16',
    TASK_VISIBILITY_TIMEOUT_MS: '1000',
    REAPER_INTERVAL_MS: '250',
    TASK_MAX_ATTEMPTS: '1000',
    TASK_BACKOFF_MS: '10',
    TASK_BACKOFF_MAX_MS: '50',
  };
  const jobs: Proc[] = [spawnPushline(['job'], env), spawnPushline(['job'], env)];
  const ids: string[] = [];
  let producing = true;
  const producer = (async () => {
    let n = 0;
    while (producing) {
      const batch = Array.from({ length: 20 }, () => ({
        type: 'echo',
        priority: 1 + (n++ % 5),
        payload: JSON.stringify({ delay_ms: n % 7 === 0 ? 40 : n % 3 }),
      }));
      ids.push(...(await queue.enqueue(batch)).map((r) => r.id));
      await sleep(15);
    }
  })();

  // Kill a random job process at a random instant while it is consuming, replacing it each time.
  const consuming = (p: Proc) => waitFor(() => p.output().includes('Consumer 1 started successfully'), 'job consuming', 30_000);
  let kills = 0;
  for (let round = 0; round < 10; round++) {
    await Promise.all(jobs.map(consuming));
    await sleep(100 + Math.floor(Math.random() * 400));
    const victim = Math.floor(Math.random() * jobs.length);
    jobs[victim]!.child.kill('SIGKILL');
    await jobs[victim]!.exited;
    kills++;
    jobs[victim] = spawnPushline(['job'], env);
  }
  producing = false;
  await producer;
  expect(kills).toBe(10);
  expect(ids.length).toBeGreaterThan(500);

  const statuses = async () => {
    const pipeline = shared.client.pipeline();
    for (const id of ids) pipeline.hget(keys.task(id), 'status');
    return (await pipeline.exec())!.map(([, v]) => v as string | null);
  };
  await waitFor(async () => (await statuses()).every((s) => s === 'completed'), 'every task completed', 60_000, 250);

  // The kills hit work in progress: some tasks had to run again after their lease expired.
  const attempts = await Promise.all(ids.map((id) => shared.client.hget(keys.task(id), 'attempts')));
  expect(attempts.filter((a) => Number(a) > 1).length).toBeGreaterThan(0);

  // The last replacement may still be starting: it must stop cleanly all the same.
  for (const j of jobs) j.child.kill('SIGTERM');
  const codes = await Promise.all(jobs.map((j) => j.exited));
  expect(codes).toEqual([0, 0]);
  expect(new Set(ids).size).toBe(ids.length);
  expect(await shared.client.zcard(keys.tasks.queue)).toBe(0);
  expect(await shared.client.zcard(keys.tasks.processing)).toBe(0);
  expect(await shared.client.zcard(keys.tasks.delayed)).toBe(0);
  expect(await shared.client.zcard(keys.tasks.dead)).toBe(0);
}, 180_000); // ten kill-and-restart rounds: each restart loads the job afresh
