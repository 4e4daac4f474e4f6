// A task type written outside src/ (test/fixtures/processors/shout.mjs, importing pushline by
// its package name) registered with JOB_PROCESSORS: logic accepts it, job runs it through the
// same leases, retries, webhooks and status notifications as a built-in type. Real processes
// (bin/pushline.js → dist/), a real comet, a real webhook receiver, a real WebSocket client.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { parseEnv } from '../../src/config/load.ts';
import { loadCustomProcessors } from '../../src/job/custom-processors.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { silentLogger } from '../../src/util/log.ts';
import { authHeader } from '../helpers/logic.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient, serverMessages } from '../helpers/ws.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/processors/${name}`, import.meta.url));
const SECRET = 'custom-processors-secret-0123';
const shared = useTestRedis();

describe('JOB_PROCESSORS: a task type from the user’s own module', () => {
  let env: Record<string, string>;
  let comet: CometHandle;
  let receiver: Receiver;
  let logic: Proc;
  let job: Proc;
  let logicUrl: string;

  beforeAll(async () => {
    const logicPort = await freePort();
    logicUrl = `http://127.0.0.1:${logicPort}`;
    env = {
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(),
      PUSHLINE_DEV: 'true', AUTH_SECRET: SECRET, WEBHOOK_SECRET: 'hook-secret', WEBHOOK_ALLOW_PRIVATE: 'true',
      LOG_LEVEL: 'info', JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0', TASK_BACKOFF_MS: '10', TASK_BACKOFF_MAX_MS: '50',
      COMET_HOST: '127.0.0.1', COMET_DEAD_AFTER_MS: '3000', COMET_HEARTBEAT_MS: '200',
      LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(logicPort),
      JOB_PROCESSORS: fixture('shout.mjs'),
    };
    const grpcPort = await freePort();
    const cometEnv = parseEnv({ ...env, COMET_WS_PORT: '0', COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}`, LOG_LEVEL: 'silent' });
    if (!cometEnv.ok) throw new Error(cometEnv.errors.join('\n'));
    comet = await startComet(cometEnv.env, silentLogger);
    receiver = await startReceiver();
    logic = spawnPushline(['logic'], env);
    job = spawnPushline(['job'], env);
    await waitFor(() => logic.output().includes('logic listening on'), 'logic listening', 30_000);
    await waitFor(() => job.output().includes('Webhook sender started'), 'job started', 30_000);
  });

  afterAll(async () => {
    for (const p of [logic, job]) p?.child.kill('SIGTERM');
    await Promise.all([logic?.exited, job?.exited]);
    await receiver?.close();
    await comet?.stop();
  });

  const generate = (body: unknown) =>
    fetch(`${logicUrl}/generate`, { method: 'POST', headers: { authorization: authHeader, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const task = async (id: string) => (await (await fetch(`${logicUrl}/tasks/${id}`, { headers: { authorization: authHeader } })).json()) as Record<string, unknown>;

  it('runs through retries, the webhook and the status notifications like a built-in type', async () => {
    expect(job.output()).toContain('JOB_PROCESSORS: task types shout');
    const viewer = await connectClient(comet.wsPort, SECRET, 'fan', 'stage');
    const res = await generate({ type: 'shout', payload: { text: 'hello', fail_attempts: 1 }, hook_url: `${receiver.url}/hook`, user_id: 'fan', priority: 5 });
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { task_id: string }).task_id;

    const done = await waitFor(async () => ((await task(id)).status === 'completed' ? task(id) : null), `task ${id} completed`, 30_000);
    expect(done).toMatchObject({ type: 'shout', attempts: 2, result: { shouted: 'HELLO', attempt: 2 } });

    const hook = await waitFor(() => receiver.received.find((r) => r.path === '/hook' && r.body.includes(id)), 'webhook delivered');
    expect(JSON.parse(hook.body)).toMatchObject({ task_id: id, status: 'completed', result: { shouted: 'HELLO' } });

    const statuses = () => serverMessages(viewer).filter((m) => m.type === 'task_status' && m.task_id === id);
    await waitFor(() => statuses().some((m) => m.status === 'completed'), 'completed notification');
    expect(statuses().find((m) => m.status === 'queued' && m.attempt === 1)).toMatchObject({ retry_in_ms: expect.any(Number) });
    expect(statuses().find((m) => m.progress !== undefined)).toMatchObject({ task_type: 'shout', progress: 0.5, note: 'warming up the voice' });
    viewer.ws.close();
  });

  it('a PermanentError from the user’s module fails the task at once, with its message in the webhook', async () => {
    const res = await generate({ type: 'shout', payload: { text: '' }, hook_url: `${receiver.url}/bad` });
    const id = ((await res.json()) as { task_id: string }).task_id;
    const failed = await waitFor(async () => ((await task(id)).status === 'failed' ? task(id) : null), `task ${id} failed`, 30_000);
    expect(failed).toMatchObject({ attempts: 1, error: expect.stringContaining('payload.text must be a non-empty string') });
    const hook = await waitFor(() => receiver.received.find((r) => r.path === '/bad'), 'failure webhook');
    expect(JSON.parse(hook.body)).toMatchObject({ task_id: id, status: 'failed' });
  });

  it('logic still refuses a type nobody registered', async () => {
    const res = await generate({ type: 'whisper', payload: {} });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('shout');
  });
});

describe('JOB_PROCESSORS that cannot be used stop job and logic with a config error (exit 2)', () => {
  it.each([
    ['a missing module', './no-such-processors.mjs', 'cannot load ./no-such-processors.mjs'],
    ['a built-in type', fixture('clashing.mjs'), 'type "echo" is already taken'],
    ['something that is not a processor', fixture('not-a-processor.mjs'), 'must export (default) a processor'],
  ])('%s', async (_what, setting, message) => {
    for (const command of ['job', 'logic']) {
      const p = spawnPushline([command], { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), PUSHLINE_DEV: 'true', JOB_METRICS_PORT: '0', LOGIC_PORT: '0', JOB_PROCESSORS: setting });
      expect(await p.exited, `${command}: ${p.output()}`).toBe(2);
      expect(p.output()).toContain(`pushline: config error: JOB_PROCESSORS: `);
      expect(p.output()).toContain(message);
    }
  });

  it('paths are relative to the working directory', async () => {
    const dir = fileURLToPath(new URL('../fixtures/processors/', import.meta.url));
    const [shout] = await loadCustomProcessors('./shout.mjs', ['echo'], dir);
    expect(shout?.type).toBe('shout');
  });
});
