// Recurring schedules: POST/GET/DELETE /schedules and `pushline schedule`, fired by real job
// processes. One task per tick however many jobs run and whichever is SIGKILLed; no burst of
// missed ticks after downtime (catch_up latest / none / all).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const api = (method: 'POST' | 'GET' | 'DELETE', url: string, body?: unknown) =>
  logic.app.inject({
    method,
    url,
    headers: { authorization: authHeader, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: prefix, PUSHLINE_DEV: 'true', LOG_LEVEL: 'info',
    JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0', JOB_CONSUMERS: '1', JOB_CONCURRENCY: '4', TASK_VISIBILITY_TIMEOUT_MS: '2000', ...extra,
  };
}

const consuming = (p: Proc) => waitFor(() => p.output().includes('Consumer 0 started successfully'), 'job consuming', 30_000);

async function stopAll(jobs: Proc[]): Promise<void> {
  for (const j of jobs) if (j.child.exitCode === null && j.child.signalCode === null) j.child.kill('SIGTERM');
  await Promise.all(jobs.map((j) => j.exited));
}

const redisNow = () => redisNowMs(logic.redis);

/** The tasks a schedule made (a test may KEYS its own prefix; the product never does). */
async function scheduleTasks(name: string): Promise<Record<string, string>[]> {
  const keys = await logic.redis.keys(`${logic.keys.taskPrefix}*`);
  const hashes = await Promise.all(keys.map((k) => logic.redis.hgetall(k)));
  return hashes.filter((h) => h.schedule === name);
}

describe('POST /schedules validation', () => {
  it('refuses bad schedules with 400 naming the field, and stores nothing', async () => {
    const task = { type: 'echo' };
    const cases: [unknown, string][] = [
      [{ name: 'a', task }, 'cron'],
      [{ name: 'a', cron: '* * * * *', every_ms: 1000, task }, 'cron'],
      [{ name: 'a', cron: 'every day', task }, 'cron'],
      [{ name: 'a', cron: '61 * * * *', task }, 'cron'],
      [{ name: 'a', cron: '* * * * *', tz: 'Mars/Olympus', task }, 'tz'],
      [{ name: 'a', every_ms: 1000, tz: 'UTC', task }, 'tz'],
      [{ name: 'a', every_ms: 10, task }, 'every_ms'],
      [{ name: 'a', every_ms: 1.5, task }, 'every_ms'],
      [{ name: 'a b', every_ms: 1000, task }, 'name'],
      [{ every_ms: 1000, task }, 'name'],
      [{ name: 'a', every_ms: 1000 }, 'task'],
      [{ name: 'a', every_ms: 1000, task: { type: 'nope' } }, 'task.type'],
      [{ name: 'a', every_ms: 1000, task: { type: 'echo', priority: 9 } }, 'task.priority'],
      [{ name: 'a', every_ms: 1000, task: { type: 'echo', run_at: '2030-01-01T00:00:00Z' } }, 'task.run_at'],
      [{ name: 'a', every_ms: 1000, task, catch_up: 'sometimes' }, 'catch_up'],
      [{ name: 'a', every_ms: 1000, task, catch_up: 'all', catch_up_max: 0 }, 'catch_up_max'],
      [{ name: 'a', every_ms: 1000, task, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const r = await api('POST', '/schedules', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error).toBe('validation_failed');
      expect(r.json().fields.map((f: { field: string }) => f.field), JSON.stringify(body)).toContain(field);
    }
    expect(await logic.redis.hlen(logic.keys.schedules)).toBe(0);
    expect((await api('DELETE', '/schedules/nope')).statusCode).toBe(404);
    // OpenAPI (generated from the routes' schemas) documents the routes and the task's start fields.
    const doc = (await logic.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/schedules', '/schedules/{name}']));
    expect(JSON.stringify(doc.paths['/generate'])).toContain('run_at');
    expect((await api('DELETE', '/schedules/bad%20name')).statusCode).toBe(400);
  });

  it('adds, replaces, lists with the next run, and deletes', async () => {
    const created = await api('POST', '/schedules', { name: 'nightly', cron: '30 2 * * *', tz: 'Europe/Berlin', task: { type: 'echo', payload: { n: 1 } } });
    expect(created.statusCode).toBe(201);
    const next = created.json().next_run_at as string;
    // 02:30 in Berlin is 01:30 UTC in winter, 00:30 UTC in summer.
    expect(next).toMatch(/T0[01]:30:00\.000Z$/);
    expect(Date.parse(next)).toBeGreaterThan(Date.now());
    // The dashboard lists it with its next run.
    const overview = (await api('GET', '/dashboard/api/overview')).json();
    expect(overview.schedules).toEqual([expect.objectContaining({ name: 'nightly', cron: '30 2 * * *', tz: 'Europe/Berlin', next_run_at: next })]);
    expect((await logic.app.inject({ method: 'GET', url: '/dashboard', headers: { authorization: authHeader } })).body).toContain('id="schedules"');
    const replaced = await api('POST', '/schedules', { name: 'nightly', every_ms: 60_000, task: { type: 'echo' }, catch_up: 'none' });
    expect(replaced.statusCode).toBe(200);
    const list = (await api('GET', '/schedules')).json().schedules;
    expect(list).toEqual([expect.objectContaining({ name: 'nightly', every_ms: 60_000, catch_up: 'none', task: { type: 'echo' }, next_run_at: expect.any(String) })]);
    // redis-cli view: the definition hash and the next-run ZSET.
    expect(await logic.redis.zscore(logic.keys.scheduleRuns, 'nightly')).toBe(String(Date.parse(list[0].next_run_at)));
    expect((await api('DELETE', '/schedules/nightly')).json()).toEqual({ name: 'nightly', deleted: true });
    expect((await api('GET', '/schedules')).json().schedules).toEqual([]);
    expect(await logic.redis.zcard(logic.keys.scheduleRuns)).toBe(0);
  });
});

describe('firing', () => {
  it('fires exactly one task per tick with 3 job processes, one SIGKILLed mid-way; DELETE stops it', async () => {
    const jobs = [spawnPushline(['job'], env()), spawnPushline(['job'], env()), spawnPushline(['job'], env())];
    try {
      await Promise.all(jobs.map(consuming));
      const r = await api('POST', '/schedules', { name: 'fast', every_ms: 300, task: { type: 'echo', payload: { hi: 1 } } });
      expect(r.statusCode).toBe(201);
      await waitFor(async () => (await scheduleTasks('fast')).length >= 4, 'four ticks fired', 30_000);
      jobs[0]!.child.kill('SIGKILL');
      await jobs[0]!.exited;
      const atKill = (await scheduleTasks('fast')).length;
      await waitFor(async () => (await scheduleTasks('fast')).length >= atKill + 4, 'four more ticks fired after the kill', 30_000);
      expect((await api('DELETE', '/schedules/fast')).statusCode).toBe(200);
      const atDelete = (await scheduleTasks('fast')).length;

      // Deletion stops it: at most a tick already being fired lands after it, then nothing.
      const until = (await redisNow()) + 1500;
      await waitFor(async () => (await redisNow()) > until, '1.5 s (5 ticks) of Redis time');
      const tasks = await scheduleTasks('fast');
      expect(tasks.length).toBeLessThanOrEqual(atDelete + 1);

      const ticks = tasks.map((t) => Number(t.schedule_tick));
      expect(new Set(ticks).size).toBe(tasks.length); // no tick twice
      const anchor = Date.parse(r.json().created_at);
      for (const tick of ticks) expect((tick - anchor) % 300).toBe(0); // every task is a real tick
      await waitFor(async () => (await Promise.all(tasks.map((t) => logic.redis.hget(logic.keys.task(t.id!), 'status')))).every((s) => s === 'completed'), 'every tick task completed', 30_000);
      const status = await api('GET', `/tasks/${tasks[0]!.id}`);
      expect(status.json()).toMatchObject({ schedule: 'fast', schedule_tick: new Date(ticks[0]!).toISOString() });
    } finally {
      await stopAll(jobs);
    }
  });

  it('a job killed after enqueueing a tick but before advancing leaves the tick to be fired once by another', async () => {
    expect((await api('POST', '/schedules', { name: 'halfway', every_ms: 60_000, task: { type: 'echo' } })).statusCode).toBe(201);
    // What a killed job leaves behind: a run that has come (its ticks anchored 150 s back, the
    // last one 30 s ago), its task enqueued with the tick's idempotency key, the run not advanced.
    const earlier = (await redisNow()) - 150_000;
    const def = JSON.parse((await logic.redis.hget(logic.keys.schedules, 'halfway'))!);
    await logic.redis.hset(logic.keys.schedules, 'halfway', JSON.stringify({ ...def, anchor_ms: earlier }));
    const dueTick = earlier + 60_000 * 2; // the last tick before now
    await logic.redis.zadd(logic.keys.scheduleRuns, dueTick, 'halfway');
    const [made] = await logic.queue.enqueue([{ type: 'echo', priority: 3, fields: { schedule: 'halfway', schedule_tick: String(dueTick) }, idempotency: { key: `schedule:halfway:${dueTick}`, fingerprint: 'schedule' } }]);
    const job = spawnPushline(['job'], env());
    try {
      await waitFor(async () => Number(await logic.redis.zscore(logic.keys.scheduleRuns, 'halfway')) > dueTick, 'the run advanced', 30_000);
      const tasks = await scheduleTasks('halfway');
      expect(tasks.map((t) => t.id)).toEqual([made!.id]);
      expect(Number(await logic.redis.zscore(logic.keys.scheduleRuns, 'halfway'))).toBe(dueTick + 60_000);
    } finally {
      await api('DELETE', '/schedules/halfway');
      await stopAll([job]);
    }
  });

  it('after downtime fires per catch_up policy: latest one run, none zero, all the last catch_up_max', async () => {
    // Ten missed one-minute ticks, as if every job had been down for ten minutes.
    const now = await redisNow();
    const anchor = now - 10 * 60_000 - 30_000;
    const policies = { 'cu-latest': { catch_up: 'latest' }, 'cu-none': { catch_up: 'none' }, 'cu-all': { catch_up: 'all', catch_up_max: 3 } } as const;
    for (const [name, policy] of Object.entries(policies)) {
      expect((await api('POST', '/schedules', { name, every_ms: 60_000, task: { type: 'echo' }, ...policy })).statusCode).toBe(201);
      const def = JSON.parse((await logic.redis.hget(logic.keys.schedules, name))!);
      await logic.redis.hset(logic.keys.schedules, name, JSON.stringify({ ...def, anchor_ms: anchor }));
      await logic.redis.zadd(logic.keys.scheduleRuns, anchor + 60_000, name);
    }
    const job = spawnPushline(['job'], env());
    try {
      const lastMissed = anchor + 10 * 60_000;
      for (const name of Object.keys(policies)) {
        await waitFor(async () => Number(await logic.redis.zscore(logic.keys.scheduleRuns, name)) === lastMissed + 60_000, `${name} caught up`, 30_000);
      }
      const ticksOf = async (name: string) => (await scheduleTasks(name)).map((t) => Number(t.schedule_tick)).sort();
      expect(await ticksOf('cu-latest')).toEqual([lastMissed]);
      expect(await ticksOf('cu-none')).toEqual([]);
      expect(await ticksOf('cu-all')).toEqual([lastMissed - 120_000, lastMissed - 60_000, lastMissed]);
      const listed = (await api('GET', '/schedules')).json().schedules.find((s: { name: string }) => s.name === 'cu-latest');
      expect(listed.next_run_at).toBe(new Date(lastMissed + 60_000).toISOString());
    } finally {
      for (const name of Object.keys(policies)) await api('DELETE', `/schedules/${name}`);
      await stopAll([job]);
    }
  });
});

describe('pushline schedule', () => {
  const cli = async (...args: string[]) => {
    const p = spawnPushline(['schedule', ...args], env());
    const code = await p.exited;
    return { code, out: p.output() };
  };

  it('adds, lists and removes through the real binary, refusing what the API refuses', async () => {
    const added = await cli('add', 'cli-report', '--cron', '0 9 * * 1-5', '--tz', 'Asia/Tokyo', '--task', '{"type":"echo","payload":{"r":1}}');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/schedule cli-report added; next run \d{4}-\d\d-\d\dT00:00:00\.000Z/);
    const listed = await cli('list');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain('cli-report');
    expect(listed.out).toContain('cron "0 9 * * 1-5" Asia/Tokyo');
    expect(listed.out).toContain(`HGETALL ${logic.keys.schedules}`);
    // The API sees what the CLI added.
    expect((await api('GET', '/schedules')).json().schedules.map((s: { name: string }) => s.name)).toContain('cli-report');

    const bad = await cli('add', 'bad', '--cron', '99 * * * *', '--task', '{"type":"echo"}');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/cron: cron is not a valid cron expression/);
    const badTask = await cli('add', 'bad', '--every-ms', '1000', '--task', '{"type":"nope"}');
    expect(badTask.code).toBe(2);
    expect(badTask.out).toMatch(/task\.type: type must be one of/);

    expect((await cli('rm', 'cli-report')).code).toBe(0);
    const again = await cli('rm', 'cli-report');
    expect(again.code).toBe(1);
    expect(again.out).toContain('no schedule cli-report');
    expect((await cli('list')).out).toContain('no schedules');
  });
});
