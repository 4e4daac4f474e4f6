// Task timeouts (issue 13 item 3) through real processes: bin/pushline.js logic and job on a real
// Redis, with JOB_PROCESSORS fixture types (test/fixtures/processors/slow.mjs) that either ignore
// their signal and return late (`stuck`) or stop when it aborts (`polite`). One consumer with one
// slot, so "the slot was released" shows as other tasks running while a stuck one still hangs.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { authHeader } from '../helpers/logic.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const fixture = fileURLToPath(new URL('../fixtures/processors/slow.mjs', import.meta.url));
const shared = useTestRedis();

describe('task timeouts: timeout_ms, TASK_TIMEOUTS', () => {
  let dir: string;
  let logFile: string;
  let logic: Proc;
  let job: Proc;
  let logicUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushline-timeouts-'));
    logFile = join(dir, 'events.log');
    writeFileSync(logFile, '');
    const logicPort = await freePort();
    logicUrl = `http://127.0.0.1:${logicPort}`;
    const env = {
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(),
      PUSHLINE_DEV: 'true', LOG_LEVEL: 'info', JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0',
      LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(logicPort),
      JOB_CONSUMERS: '1', JOB_CONCURRENCY: '1', TASK_MAX_ATTEMPTS: '2', TASK_BACKOFF_MS: '10', TASK_BACKOFF_MAX_MS: '20',
      // polite has a type default; stuck relies on each task's own timeout_ms.
      TASK_TIMEOUTS: 'polite=300',
      JOB_PROCESSORS: fixture,
      SLOW_FIXTURE_LOG: logFile,
    };
    logic = spawnPushline(['logic'], env);
    job = spawnPushline(['job'], env);
    await waitFor(() => logic.output().includes('logic listening on'), 'logic listening', 30_000);
    await waitFor(() => job.output().includes('Webhook sender started'), 'job started', 30_000);
  });

  afterAll(async () => {
    if (logFile && !existsSync(`${logFile}.release`)) writeFileSync(`${logFile}.release`, '');
    for (const p of [logic, job]) p?.child.kill('SIGTERM');
    await Promise.all([logic?.exited, job?.exited]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const generate = (body: unknown) =>
    fetch(`${logicUrl}/generate`, { method: 'POST', headers: { authorization: authHeader, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const submit = async (body: unknown) => {
    const res = await generate(body);
    expect(res.status).toBe(202);
    return ((await res.json()) as { task_id: string }).task_id;
  };
  const task = async (id: string) => (await (await fetch(`${logicUrl}/tasks/${id}`, { headers: { authorization: authHeader } })).json()) as Record<string, unknown>;
  const events = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  const finished = (id: string) => waitFor(async () => {
    const t = await task(id);
    return ['completed', 'failed', 'dead'].includes(t.status as string) ? t : null;
  }, `task ${id} finished`, 30_000);

  it('a processor that ignores its signal is given up at the deadline: retried, dead-lettered, its slot free, its late result never saved', async () => {
    const stuck = await submit({ type: 'stuck', timeout_ms: 300, priority: 5 });
    const echo = await submit({ type: 'echo', payload: { hello: 'world' }, priority: 1 });

    const dead = await finished(stuck);
    expect(dead).toMatchObject({ status: 'dead', attempts: 2, error: 'timed out after 300 ms (timeout_ms)', timed_out: true, timeout_ms: 300, result: null });
    // One slot only: the echo task ran although both stuck attempts are still hanging.
    expect(await finished(echo)).toMatchObject({ status: 'completed', result: { hello: 'world' } });
    expect(events().filter((e) => e.startsWith(`start ${stuck} `))).toEqual([`start ${stuck} 1`, `start ${stuck} 2`]);
    expect(events().some((e) => e.startsWith('late '))).toBe(false);

    // Now the stuck runs return their results, late.
    writeFileSync(`${logFile}.release`, '');
    await waitFor(() => events().filter((e) => e.startsWith(`late ${stuck} `)).length === 2, 'both late results returned');
    // A task submitted after the late returns and completed means the job has moved on past them.
    const after = await submit({ type: 'echo', payload: { after: true }, priority: 1 });
    expect(await finished(after)).toMatchObject({ status: 'completed' });
    expect(await task(stuck)).toMatchObject({ status: 'dead', error: 'timed out after 300 ms (timeout_ms)', result: null, attempts: 2 });
  });

  it('a processor that honours its signal stops at its type’s timeout (TASK_TIMEOUTS)', async () => {
    const id = await submit({ type: 'polite', priority: 5 });
    const dead = await finished(id);
    expect(dead).toMatchObject({ status: 'dead', attempts: 2, error: 'timed out after 300 ms (timeout_ms)', timed_out: true });
    expect(events().filter((e) => e.startsWith(`aborted ${id} `))).toEqual([`aborted ${id} 1 TaskTimeoutError`, `aborted ${id} 2 TaskTimeoutError`]);
  });

  it('refuses a timeout_ms that is not a whole number of ms in range, naming the field', async () => {
    for (const bad of [0, -5, 1.5, 'soon', 86_400_001]) {
      const res = await generate({ type: 'echo', timeout_ms: bad });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: string; fields: { field: string; message: string }[] };
      expect(body.error).toBe('validation_failed');
      expect(body.fields).toContainEqual({ field: 'timeout_ms', message: expect.stringContaining('timeout_ms must be a whole number of milliseconds') });
    }
  });
});
