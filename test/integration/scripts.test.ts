// Every redis-cli script in scripts/ on an empty Redis (the state a fresh install is in when
// someone first looks) and on a busy one (tasks in every state, webhooks, rooms, comets): each
// exits 0 and shows what is there, with nothing on stderr. On a standalone Redis and on a
// 3-master Redis Cluster (REDIS_CLUSTER_NODES: redis-cli -c, hash-tagged names), with 1 and 3 shards.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import type { Redis } from 'ioredis';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { useTestCluster } from '../helpers/redis-cluster.ts';

const run = promisify(execFile);
const DIR = fileURLToPath(new URL('../../scripts/', import.meta.url));
const script = (name: string) => `${DIR}${name}`;
// install-redis.sh installs a package and lib.sh is sourced by the others: neither reads Redis.
const INSPECTORS = readdirSync(DIR).filter((f) => f.endsWith('.sh') && !['lib.sh', 'install-redis.sh'].includes(f)).sort();

const standaloneRedis = useTestRedis();
const onCluster = useTestCluster();

interface Where { name: string; env(): Record<string, string>; client(): Redis; cluster: boolean; shards: number }
let clusterClient: Redis | null = null;
const WHERE: Where[] = [
  { name: 'a standalone Redis', env: () => ({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(standaloneRedis.redis.port) }), client: () => standaloneRedis.client, cluster: false, shards: 1 },
  ...[1, 3].map((shards) => ({
    name: `a 3-master Redis Cluster, ${shards} shard(s)`,
    env: () => ({ REDIS_CLUSTER_NODES: onCluster.cluster.seeds, REDIS_QUEUE_SHARDS: String(shards) }),
    client: () => (clusterClient ??= onCluster.cluster.connection('command', 'scripts-test')),
    cluster: true,
    shards,
  })),
];

describe.each(WHERE)('scripts/*.sh on $name', (where) => {
const shared = { get client() { return where.client(); } };

function envFor(prefix: string) {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...where.env(), REDIS_KEY_PREFIX: prefix };
}

/** Tasks queued at several priorities, one leased, one waiting to retry, one dead, one webhook due; two live comets. */
async function busy(prefix: string): Promise<void> {
  const queue = new TaskQueue(shared.client, queueKeys({ keyPrefix: prefix, tagged: where.cluster, shards: where.shards }), { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  await queue.enqueue([5, 4, 3, 2, 1, 3, 3].map((priority, i) => ({ type: 'echo', priority, ...(i === 0 ? { hookUrl: 'http://127.0.0.1:9/hook' } : {}) })));
  // A sharded claim may stop short at another shard's head: claim until four are leased.
  const tasks = [];
  while (tasks.length < 4) tasks.push(...(await queue.tasks.claim(4 - tasks.length, 60_000)).tasks);
  await queue.tasks.settle([
    { id: tasks[0]!.id, token: tasks[0]!.token, outcome: 'completed', fields: { result: '{}' } },
    { id: tasks[1]!.id, token: tasks[1]!.token, outcome: 'retry', delayMs: 600_000, fields: { error: 'later' } },
    { id: tasks[2]!.id, token: tasks[2]!.token, outcome: 'dead', fields: { error: 'gave up' } },
  ]);
  const routing = routingKeys(prefix, where.cluster);
  const now = Number((await shared.client.time())[0]) * 1000;
  await shared.client.zadd(routing.cometNodes, now, 'localhost:50051', now, 'localhost:50052');
}

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
    expect(stdout).toMatch(/uvr_tasks(:\d)?\}?\s+0\s+queued/);
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
    if (name === 'check_redis_queue.sh' && where.shards === 1) {
      // Plain names standalone (uvr_tasks), the hash-tagged key set on a cluster ({…uvr_tasks}).
      const q = where.cluster ? `\\{${prefix}uvr_tasks\\}` : `${prefix}uvr_tasks`;
      expect(stdout).toMatch(new RegExp(`${q}\\s+3\\s+queued`));
      expect(stdout).toMatch(new RegExp(`${q}:processing\\s+1\\s`));
      expect(stdout).toMatch(new RegExp(`${q}:delayed\\s+1\\s`));
      expect(stdout).toMatch(new RegExp(`${q}:dead\\s+1\\s`));
      expect(stdout).toMatch(/uvr_results\s+1\s/);
      expect(stdout).toMatch(/ 3\) \d{17}\s+priority=1\s+type=echo/);
    }
    if (name === 'check_redis_queue.sh' && where.shards > 1) {
      // One section per shard, and the per-priority counts summed over them: 3 waiting in all.
      for (let i = 0; i < where.shards; i++) expect(stdout).toContain(`ZRANGE {${prefix}uvr_tasks:${i}} 0 9 WITHSCORES`);
      const waiting = [...stdout.matchAll(/priority (\d): (\d+)/g)].reduce((n, m) => n + Number(m[2]), 0);
      expect(waiting).toBe(3);
      expect(stdout).toMatch(/\d-\d{17}\s+priority=\d\s+type=echo/);
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
