// Groups end to end (issue 13 item 4): real logic and job processes (bin/pushline.js), a
// processor from JOB_PROCESSORS (test/fixtures/processors/group-probe.mjs) that records every
// start in Redis. Fair share between groups, per-group concurrency and rate limits across job
// processes, a SIGKILLed job's group slot coming back through the reaper, retries in the group.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { authHeader } from '../helpers/logic.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const PROBE = fileURLToPath(new URL('../fixtures/processors/group-probe.mjs', import.meta.url));
const shared = useTestRedis();

interface Start {
  group: string;
  id: string;
  priority: number;
  attempt: number;
  pid: number;
}

describe('groups: fair share and per-group limits across job processes', () => {
  let env: Record<string, string>;
  let logic: Proc;
  const jobs: Proc[] = [];
  let logicUrl: string;
  const probeKey = `probe${Math.random().toString(36).slice(2, 8)}`;

  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${logicUrl}${path}`, {
      method,
      headers: { authorization: authHeader, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const probeTask = (group: string | undefined, payload: Record<string, unknown> = {}, priority = 3) => ({
    type: 'probe',
    priority,
    ...(group ? { group } : {}),
    payload: { probe: { port: shared.redis.port, key: probeKey }, ...payload },
  });
  const submit = async (bodies: unknown[], parallel = 32): Promise<string[]> => {
    const ids: string[] = new Array(bodies.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < bodies.length) {
          const i = next++;
          const res = await api('POST', '/generate', bodies[i]);
          const answer = (await res.json()) as { task_id: string };
          expect(res.status, JSON.stringify(answer)).toBe(202);
          ids[i] = answer.task_id;
        }
      }),
    );
    return ids;
  };
  const starts = async (): Promise<Start[]> =>
    (await shared.client.lrange(`${probeKey}:starts`, 0, -1)).map((line) => {
      const [group, id, priority, attempt, pid] = line.split('|');
      return { group: group!, id: id!, priority: Number(priority), attempt: Number(attempt), pid: Number(pid) };
    });
  const task = async (id: string) => (await (await api('GET', `/tasks/${id}`)).json()) as Record<string, unknown>;
  const allDone = (ids: string[]) =>
    waitFor(async () => (await Promise.all(ids.map(task))).every((t) => t.status === 'completed'), `${ids.length} tasks completed`, 60_000, 100);
  const startJob = () => {
    const job = spawnPushline(['job'], env);
    jobs.push(job);
    return waitFor(() => job.output().includes('Consumer 1 started successfully') && job, 'job consuming', 30_000);
  };

  const jobsRunning = async (n: number) => {
    while (jobs.length < n) await startJob();
  };

  beforeAll(async () => {
    const logicPort = await freePort();
    logicUrl = `http://127.0.0.1:${logicPort}`;
    env = {
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(),
      PUSHLINE_DEV: 'true', LOG_LEVEL: 'info', JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0',
      LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(logicPort), JOB_PROCESSORS: PROBE,
      JOB_CONSUMERS: '2', JOB_CONCURRENCY: '4', TASK_BACKOFF_MS: '10', TASK_BACKOFF_MAX_MS: '50',
      TASK_VISIBILITY_TIMEOUT_MS: '1000', REAPER_INTERVAL_MS: '250',
    };
    logic = spawnPushline(['logic'], env);
    await waitFor(() => logic.output().includes('logic listening on'), 'logic listening', 30_000);
  });

  afterAll(async () => {
    for (const p of [logic, ...jobs]) p?.child.kill('SIGTERM');
    await Promise.all([logic, ...jobs].map((p) => p?.exited));
  });

  it('B’s 10 tasks start among the first few, not after A’s 2,000 (same priority, A queued first)', async () => {
    const a = await submit(Array.from({ length: 2000 }, () => probeTask('tenant-a')));
    const b = await submit(Array.from({ length: 10 }, () => probeTask('tenant-b')), 10);
    const health = (await (await fetch(`${logicUrl}/health`)).json()) as { priorities: Record<string, number> };
    expect(health.priorities['3']).toBe(2010);

    // 2 job processes × 2 consumers × 4 slots: at most 16 tasks start per round of claims.
    await startJob();
    await startJob();
    await allDone(b);
    const order = await starts();
    const lastB = order.map((s) => s.group).lastIndexOf('tenant-b');
    // Round robin: B's 10 tasks alternate with A's, plus what the 16 slots had claimed at once.
    // The bound does not depend on A's 2,000; first come first served would give ≥ 2,000.
    expect(lastB).toBeGreaterThanOrEqual(9);
    expect(lastB).toBeLessThan(2 * 10 + 16 + 4);
    await allDone(a);
  });

  it('never runs more than a group’s concurrency limit at once across 3 job processes', async () => {
    await jobsRunning(3);
    const put = await api('PUT', '/groups/limited', { concurrency: 3 });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ name: 'limited', limits: { concurrency: 3 }, created: true });
    const limited = await submit(Array.from({ length: 40 }, () => probeTask('limited', { hold_ms: 30 })));
    const free = await submit(Array.from({ length: 20 }, () => probeTask('free', { hold_ms: 30 })));
    await allDone([...limited, ...free]);
    const seen = (await shared.client.lrange(`${probeKey}:concurrency:limited`, 0, -1)).map(Number);
    expect(seen).toHaveLength(40);
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
    const list = (await (await api('GET', '/groups')).json()) as { groups: { name: string; running: number; waiting: number; limits: unknown }[] };
    expect(list.groups.find((g) => g.name === 'limited')).toMatchObject({ limits: { concurrency: 3 }, running: 0, waiting: 0 });
  });

  it('starts at most rate.max of a group’s tasks in any window of rate.per_ms', async () => {
    await jobsRunning(3);
    expect((await api('PUT', '/groups/metered', { rate: { max: 2, per_ms: 400 } })).status).toBe(200);
    const ids = await submit(Array.from({ length: 8 }, () => probeTask('metered')));
    await allDone(ids);
    const started = (await Promise.all(ids.map(task))).map((t) => Date.parse(String(t.started_at))).sort((x, y) => x - y);
    for (let i = 0; i + 2 < started.length; i++) expect(started[i + 2]! - started[i]!).toBeGreaterThanOrEqual(400);
  });

  it('a group slot held by a SIGKILLed job comes back through the reaper', async () => {
    await jobsRunning(3);
    expect((await api('PUT', '/groups/solo', { concurrency: 1 })).status).toBe(200);
    const [stuck] = await submit([probeTask('solo', { hang_attempts: 1 })]);
    const holder = await waitFor(async () => (await starts()).find((s) => s.id === stuck), 'the stuck task started');
    const rest = await submit(Array.from({ length: 3 }, () => probeTask('solo')));
    const victim = jobs.find((j) => j.child.pid === holder.pid)!;
    expect(victim).toBeDefined();
    victim.child.kill('SIGKILL');
    await victim.exited;
    jobs.splice(jobs.indexOf(victim), 1);
    await startJob();
    await allDone([stuck!, ...rest]);
    expect(await task(stuck!)).toMatchObject({ attempts: 2, group: 'solo' });
    const seen = (await shared.client.lrange(`${probeKey}:concurrency:solo`, 0, -1)).map(Number);
    // The killed attempt never decremented the probe's counter: later ones see 2, never more.
    expect(Math.max(...seen.slice(1))).toBeLessThanOrEqual(2);
    const list = (await (await api('GET', '/groups')).json()) as { groups: { name: string; running: number }[] };
    expect(list.groups.find((g) => g.name === 'solo')).toMatchObject({ running: 0 });
  });

  it('a failed attempt of a grouped task is retried through its group, under its limit', async () => {
    await jobsRunning(3);
    expect((await api('PUT', '/groups/retrying', { concurrency: 1 })).status).toBe(200);
    const ids = await submit(Array.from({ length: 4 }, () => probeTask('retrying', { fail_attempts: 1, hold_ms: 10 })));
    await allDone(ids);
    for (const id of ids) expect(await task(id)).toMatchObject({ attempts: 2 });
    const seen = (await shared.client.lrange(`${probeKey}:concurrency:retrying`, 0, -1)).map(Number);
    expect(seen).toHaveLength(8);
    expect(Math.max(...seen)).toBe(1);
  });

  it('shows waiting groups in /health, queue status, the dashboard; cancels a waiting grouped task', async () => {
    await jobsRunning(3);
    // One start per 10 minutes: the first runs, the other three wait in the group's line.
    expect((await api('PUT', '/groups/metered-slow', { rate: { max: 1, per_ms: 600_000 } })).status).toBe(200);
    const ids = await submit(Array.from({ length: 4 }, () => probeTask('metered-slow')), 1);
    await allDone(ids.slice(0, 1));
    expect(await task(ids[1]!)).toMatchObject({ status: 'queued', group: 'metered-slow' });

    const health = (await (await fetch(`${logicUrl}/health`)).json()) as { priorities: Record<string, number>; queues: Record<string, { queued: number; delayed: number }> };
    expect(health.priorities['3']).toBe(3);
    expect(Object.values(health.queues)[0]).toMatchObject({ queued: 3, delayed: 0 });

    const status = spawnPushline(['queue', 'status'], env);
    expect(await status.exited, status.output()).toBe(0);
    expect(status.output()).toMatch(/metered-slow\s+3\s+0\s+1 per 600000 ms/);
    const json = spawnPushline(['queue', 'status', '--json'], env);
    expect(await json.exited).toBe(0);
    expect(JSON.parse(json.output()).groups).toContainEqual({ name: 'metered-slow', limits: { rate: { max: 1, per_ms: 600_000 } }, waiting: 3, running: 0, blocked: false });

    // The same with nothing but redis-cli.
    const { stdout } = await promisify(execFile)(fileURLToPath(new URL('../../scripts/check_redis_queue.sh', import.meta.url)), [], { env: { ...process.env, ...env }, cwd: '/tmp' });
    expect(stdout).toMatch(/metered-slow\s+waiting=3\s+running=0\s+limits=- 1 600000/);

    const overview = (await (await api('GET', '/dashboard/api/overview')).json()) as { groups: { name: string; waiting: number }[] };
    expect(overview.groups.find((x) => x.name === 'metered-slow')).toMatchObject({ waiting: 3 });

    expect(await (await api('DELETE', `/tasks/${ids[3]}`)).json()).toEqual({ task_id: ids[3], status: 'canceled' });
    // Without its limit the group runs what is left at once.
    expect((await api('DELETE', '/groups/metered-slow')).status).toBe(200);
    await allDone(ids.slice(1, 3));
    expect(await task(ids[3]!)).toMatchObject({ status: 'canceled' });
  });

  it('validates group names and limits with 400s naming the field', async () => {
    const bad = await api('POST', '/generate', probeTask('has space'));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'validation_failed', fields: [{ field: 'group' }] });
    for (const [body, field] of [
      [{ concurrency: 0 }, 'concurrency'],
      [{ concurrency: 1.5 }, 'concurrency'],
      [{ rate: { max: 2 } }, 'rate.per_ms'],
      [{ rate: { max: 'x', per_ms: 10 } }, 'rate.max'],
      [{ rate: { max: 100_001, per_ms: 10 } }, 'rate.max'],
      [{}, 'concurrency'],
      [{ concurency: 2 }, 'concurency'],
    ] as const) {
      const res = await api('PUT', '/groups/g1', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const answer = (await res.json()) as { error: string; fields: { field: string }[] };
      expect(answer.error).toBe('validation_failed');
      expect(answer.fields.map((f) => f.field).join(' '), JSON.stringify(answer)).toContain(field);
    }
    expect((await api('PUT', '/groups/bad%20name', { concurrency: 1 })).status).toBe(400);
    expect((await api('DELETE', '/groups/never-limited')).status).toBe(404);
    expect((await api('PUT', '/groups/g2', { concurrency: 2 })).status).toBe(200);
    expect(await (await api('DELETE', '/groups/g2')).json()).toEqual({ name: 'g2', limits: null });
  });

  it('documents the group routes and the task field in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${logicUrl}/docs/json`)).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    expect(Object.keys(doc.paths['/groups/{name}']!).sort()).toEqual(['delete', 'put']);
    expect(Object.keys(doc.paths['/groups']!)).toEqual(['get']);
    expect(Object.keys(doc.paths['/groups/{name}']!.put!.requestBody!.content['application/json']!.schema.properties)).toEqual(['concurrency', 'rate']);
    expect(doc.paths['/generate']!.post!.requestBody!.content['application/json']!.schema.properties).toHaveProperty('group');
  });
});
