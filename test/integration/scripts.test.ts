// Every redis-cli script in scripts/ on an empty Redis (the state a fresh install is in when
// someone first looks) and on a busy one (tasks in every state, webhooks, rooms, comets): each
// exits 0 and shows what is there, with nothing on stderr.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';

const run = promisify(execFile);
const DIR = fileURLToPath(new URL('../../scripts/', import.meta.url));
const script = (name: string) => `${DIR}${name}`;
// install-redis.sh installs a package and lib.sh is sourced by the others: neither reads Redis.
const INSPECTORS = readdirSync(DIR).filter((f) => f.endsWith('.sh') && !['lib.sh', 'install-redis.sh'].includes(f)).sort();

const shared = useTestRedis();

function envFor(prefix: string) {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: prefix };
}

/** Tasks queued at several priorities, one leased, one waiting to retry, one dead, one webhook due; two live comets. */
async function busy(prefix: string): Promise<void> {
  const queue = new TaskQueue(shared.client, queueKeys({ keyPrefix: prefix }), { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  await queue.enqueue([5, 4, 3, 2, 1, 3, 3].map((priority, i) => ({ type: 'echo', priority, ...(i === 0 ? { hookUrl: 'http://127.0.0.1:9/hook' } : {}) })));
  const { tasks } = await queue.tasks.claim(4, 60_000);
  await queue.tasks.settle([
    { id: tasks[0]!.id, token: tasks[0]!.token, outcome: 'completed', fields: { result: '{}' } },
    { id: tasks[1]!.id, token: tasks[1]!.token, outcome: 'retry', delayMs: 600_000, fields: { error: 'later' } },
    { id: tasks[2]!.id, token: tasks[2]!.token, outcome: 'dead', fields: { error: 'gave up' } },
  ]);
  const routing = routingKeys(prefix);
  const now = Number((await shared.client.time())[0]) * 1000;
  await shared.client.zadd(routing.cometNodes, now, 'localhost:50051', now, 'localhost:50052');
}

describe('scripts/*.sh', () => {
  it('finds the inspection scripts', () => {
    expect(INSPECTORS).toEqual(['check_redis_queue.sh', 'check_redis_routing.sh', 'setup_redis_test_data.sh']);
  });

  it.each(INSPECTORS)('%s runs on an empty Redis', async (name) => {
    const { stdout, stderr } = await run('bash', [script(name)], { env: envFor(uniquePrefix()), cwd: tmpdir() });
    expect(stderr).toBe('');
    expect(stdout).toContain('✅ Redis 连接成功');
  });

  it('check_redis_queue.sh on an empty queue says nothing is waiting', async () => {
    const { stdout } = await run('bash', [script('check_redis_queue.sh')], { env: envFor(uniquePrefix()), cwd: tmpdir() });
    expect(stdout).toMatch(/uvr_tasks\s+0\s+queued/);
    expect(stdout).toContain('oldest waiting task: none waiting');
    expect(stdout).toContain('(empty)');
  });

  it.each(INSPECTORS)('%s runs on a busy Redis', async (name) => {
    const prefix = uniquePrefix();
    await busy(prefix);
    await run('bash', [script('setup_redis_test_data.sh')], { env: envFor(prefix), cwd: tmpdir() });
    const { stdout, stderr } = await run('bash', [script(name)], { env: envFor(prefix), cwd: tmpdir() });
    expect(stderr).toBe('');
    expect(stdout).toContain('✅ Redis 连接成功');
    if (name === 'check_redis_queue.sh') {
      expect(stdout).toMatch(/uvr_tasks\s+3\s+queued/);
      expect(stdout).toMatch(/uvr_tasks:processing\s+1\s/);
      expect(stdout).toMatch(/uvr_tasks:delayed\s+1\s/);
      expect(stdout).toMatch(/uvr_tasks:dead\s+1\s/);
      expect(stdout).toMatch(/uvr_results\s+1\s/);
      expect(stdout).toMatch(/ 3\) \d{12}\s+priority=1\s+type=echo/);
    }
    if (name === 'check_redis_routing.sh') {
      expect(stdout).toContain('在线: 4 | 离线: 0');
      expect(stdout).toMatch(/localhost:50052\s+heartbeat \d+ s ago/);
    }
  });

  it('check_redis_queue.sh refuses a count that is not a number, naming it', async () => {
    const err = await run('bash', [script('check_redis_queue.sh'), 'ten'], { env: envFor(uniquePrefix()), cwd: tmpdir() }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('N must be a whole number');
  });
});
