// ./start_local.sh runs Redis (AOF), logic, job and two comets in the background and waits for
// them; a task goes through; ./stop_local.sh stops them all, Redis last, and may run twice.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { waitFor } from '../helpers/wait.ts';

const root = new URL('../../', import.meta.url).pathname;
const state = mkdtempSync(join(tmpdir(), 'pushline-local-'));
let env: NodeJS.ProcessEnv;
const run = (script: string) => spawnSync('bash', [script], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(() => {
  if (env) run('stop_local.sh');
  rmSync(state, { recursive: true, force: true });
});

describe('start_local.sh / stop_local.sh', () => {
  it('starts the stack, serves a task, and stops every process', async () => {
    const ports = { REDIS_PORT: await freePort(), LOGIC_PORT: await freePort(), COMET1_WS_PORT: await freePort(), COMET1_GRPC_PORT: await freePort(), COMET2_WS_PORT: await freePort(), COMET2_GRPC_PORT: await freePort(), JOB_METRICS_PORT: await freePort() };
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PUSHLINE_STATE_DIR: join(state, 'state'),
      PUSHLINE_LOG_DIR: join(state, 'logs'),
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    };
    const started = run('start_local.sh');
    expect(started.status, started.stderr).toBe(0);
    expect(started.stdout).toContain('pushline is running');
    expect(started.stdout).toContain(`ws://localhost:${ports.COMET1_WS_PORT}`);
    const pids = ['redis', 'logic', 'job', 'comet1', 'comet2'].map((n) => Number(readFileSync(join(state, 'state/run', `${n}.pid`), 'utf8')));
    expect(pids.every(alive)).toBe(true);
    expect(existsSync(join(state, 'state/redis/appendonlydir'))).toBe(true);

    // Starting twice is refused, naming what runs.
    const again = run('start_local.sh');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('is already running');

    const auth = `Basic ${Buffer.from('admin:password').toString('base64')}`;
    const res = await request(`http://127.0.0.1:${ports.LOGIC_PORT}/generate`, {
      method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload: { via: 'start_local' } }),
    });
    expect(res.statusCode).toBe(202);
    const { task_id } = (await res.body.json()) as { task_id: string };
    await waitFor(async () => {
      const r = await request(`http://127.0.0.1:${ports.LOGIC_PORT}/tasks/${task_id}`, { headers: { authorization: auth } });
      return ((await r.body.json()) as { status: string }).status === 'completed';
    }, 'the task completed');

    const stopped = run('stop_local.sh');
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout.trim().split('\n')).toEqual(['✅ logic stopped', '✅ job stopped', '✅ comet1 stopped', '✅ comet2 stopped', '✅ redis stopped']);
    expect(pids.some(alive)).toBe(false);
    expect(run('stop_local.sh').status).toBe(0);
  });
});
