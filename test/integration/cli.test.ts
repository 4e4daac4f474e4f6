// The operator's tools as users run them: `pushline queue status`, check_redis_queue.sh,
// `pushline queue dead/retry`, and `pushline start` bringing the whole stack up and down.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { freePort, pingRedis } from '../../src/local/redis-server.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { useTestCluster } from '../helpers/redis-cluster.ts';
import { BIN, spawnPushline } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/check_redis_queue.sh', import.meta.url));
const script = (name: string) => fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));

const shared = useTestRedis();

async function seeded() {
  const prefix = uniquePrefix();
  const keys = queueKeys({ keyPrefix: prefix });
  const queue = new TaskQueue(shared.client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  const created = await queue.enqueue([1, 5, 3, 5, 2].map((priority) => ({ type: 'echo', priority })));
  const env = { ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: prefix };
  return { keys, queue, created, env };
}

describe('inspection', () => {
  it('pushline queue status shows sizes, per-priority counts and the next tasks in pop order', async () => {
    const { created, env } = await seeded();
    const { stdout } = await run(process.execPath, [BIN, 'queue', 'status', '--next', '3'], { env, cwd: tmpdir() });
    expect(stdout).toMatch(/uvr_tasks\s+5\s+0\s+0\s+0/);
    expect(stdout).toMatch(/5 \(highest\)\s+2\s/);
    expect(stdout).toMatch(/4 \(high\)\s+0\s/);
    const next = stdout.split('Next 3 to run')[1]!;
    const ids = [...next.matchAll(/^\s+\d\s+(\d{17})\s+(\d)/gm)].map((m) => [m[1], m[2]]);
    expect(ids).toEqual([[created[1]!.id, '5'], [created[3]!.id, '5'], [created[2]!.id, '3']]);

    const json = JSON.parse((await run(process.execPath, [BIN, 'queue', 'status', '--json'], { env, cwd: tmpdir() })).stdout);
    expect(json.tasks.queued).toBe(5);
    expect(json.next[0].id).toBe(created[1]!.id);
  });

  it('check_redis_queue.sh shows the same with redis-cli alone', async () => {
    const { created, env } = await seeded();
    const { stdout } = await run('bash', [SCRIPT, '2'], { env, cwd: tmpdir() });
    expect(stdout).toContain('✅');
    expect(stdout).toMatch(/uvr_tasks\s+5\s+queued/);
    expect(stdout).toMatch(/priority 5: 2/);
    expect(stdout).toMatch(/priority 4: 0/);
    expect(stdout).toMatch(new RegExp(`1\\) ${created[1]!.id}\\s+priority=5\\s+type=echo`));
    expect(stdout).toMatch(new RegExp(`2\\) ${created[3]!.id}\\s+priority=5`));
  });

  it('check_redis_queue.sh says clearly when Redis is unreachable', async () => {
    const port = await freePort();
    const err = await run('bash', [SCRIPT], { env: { ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port) }, cwd: tmpdir() }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(`cannot reach Redis at 127.0.0.1:${port}`);
  });

  it('pushline queue dead lists dead-lettered tasks and retry queues one again', async () => {
    const { queue, keys, env } = await seeded();
    const [task] = (await queue.tasks.claim(1, 10_000)).tasks;
    await queue.tasks.settle([{ id: task!.id, token: task!.token, outcome: 'dead', fields: { error: 'gave up' } }]);
    const listed = await run(process.execPath, [BIN, 'queue', 'dead'], { env, cwd: tmpdir() });
    expect(listed.stdout).toContain(task!.id);
    expect(listed.stdout).toContain('gave up');
    const retried = await run(process.execPath, [BIN, 'queue', 'retry', task!.id], { env, cwd: tmpdir() });
    expect(retried.stdout).toContain('queued again');
    expect(await shared.client.zscore(keys.tasks.queue, task!.id)).not.toBeNull();
    const again = await run(process.execPath, [BIN, 'queue', 'retry', task!.id], { env, cwd: tmpdir() }).catch((e) => e);
    expect(again.code).toBe(1);
  });
});

describe('pushline queue find', () => {
  it('lists tasks of a status with filters, page by page with --cursor, and refuses a bad status', async () => {
    const { queue, created, env } = await seeded();
    const claimed = (await queue.tasks.claim(2, 10_000)).tasks;
    await queue.tasks.settle(claimed.map((t) => ({ id: t.id, token: t.token, outcome: 'failed' as const, fields: { error: 'bad input' } })));
    const failed = await run(process.execPath, [BIN, 'queue', 'find', '--status', 'failed', '--type', 'echo'], { env, cwd: tmpdir() });
    for (const t of claimed) expect(failed.stdout).toMatch(new RegExp(`^${t.id}  echo  p5  failed  attempts 1  \\S+  bad input$`, 'm'));

    const first = JSON.parse((await run(process.execPath, [BIN, 'queue', 'find', '-s', 'queued', '-n', '2', '--json'], { env, cwd: tmpdir() })).stdout);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = await run(process.execPath, [BIN, 'queue', 'find', '-s', 'queued', '-n', '2', '--cursor', first.next_cursor], { env, cwd: tmpdir() });
    const waiting = created.map((c) => c.id).filter((id) => !claimed.some((t) => t.id === id));
    // Seeded with priorities 1, 5, 3, 5, 2; the two 5s were claimed: pop order 3, 2, then 1.
    expect(first.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([waiting[1], waiting[2]]);
    expect(second.stdout).toMatch(new RegExp(`^${waiting[0]}  echo  p1  queued`, 'm'));
    expect(second.stdout).not.toContain('more:');

    // The finished index and the scheduled set, with redis-cli alone.
    await queue.enqueue([{ type: 'echo', priority: 3, start: { delayMs: 3_600_000 } }]);
    const shown = (await run('bash', [SCRIPT], { env, cwd: tmpdir() })).stdout;
    expect(shown).toMatch(/:finished\s+2\s+completed\/failed\/canceled/);
    expect(shown).toMatch(/:scheduled\s+1\s+waiting for their start/);

    const bad = await run(process.execPath, [BIN, 'queue', 'find', '-s', 'finished'], { env, cwd: tmpdir() }).catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--status must be one of: queued, scheduled, retrying');
  });
});

describe('routing scripts', () => {
  it('setup_redis_test_data.sh writes the seed data set and check_redis_routing.sh shows it grouped by comet', async () => {
    const env = { ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix() };
    const setup = await run('bash', [script('setup_redis_test_data.sh')], { env, cwd: tmpdir() });
    expect(setup.stdout).toContain('✅ 用户 user_123 (conn_1) -> localhost:50051');
    expect(setup.stdout).toContain('✅ 用户 user_999 (conn_4) -> localhost:50052');
    expect(setup.stdout).toContain('房间 video_123 的连接数: 4');
    const check = await run('bash', [script('check_redis_routing.sh'), 'video_123'], { env, cwd: tmpdir() });
    expect(check.stdout).toContain('总连接数: 4');
    expect(check.stdout).toMatch(/\[localhost:50051\] conn_1 -> user_123\n\[localhost:50051\] conn_2 -> user_456\n\[localhost:50052\] conn_3 -> user_789\n\[localhost:50052\] conn_4 -> user_999/);
    expect(check.stdout).toContain('✅ user_789 (连接: conn_3)');
    expect(check.stdout).toContain('在线: 4 | 离线: 0');
    const empty = await run('bash', [script('check_redis_routing.sh'), 'no_such_room'], { env, cwd: tmpdir() });
    expect(empty.stdout).toContain('总连接数: 0');
  });
});

describe('pushline start', () => {
  it('runs Redis, logic and job; a task completes; Ctrl-C stops everything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pushline-start-'));
    const port = await freePort();
    // Every port free-picked: the seed ports may be taken by another stack on this machine.
    const stack = spawnPushline(['start', '--port', String(port), '--redis-port', '0', '--comet-ports', '0:0,0:0', '--job-metrics-port', '0', '--data-dir', dataDir], {});
    try {
      await waitFor(() => stack.output().includes('pushline local stack'), 'the banner', 60_000, 100);
      const out = stack.output();
      expect(out).toContain(`http://localhost:${port}`);
      expect(out).toContain('user admin, password password');
      const redisPort = Number(/redis-cli -h 127\.0\.0\.1 -p (\d+)/.exec(out)![1]);
      expect(out).toMatch(/comet1\s+ws:\/\/localhost:\d+\s+gRPC localhost:\d+/);
      expect(out).toMatch(/comet2\s+ws:\/\/localhost:\d+/);
      const auth = `Basic ${Buffer.from('admin:password').toString('base64')}`;
      const res = await fetch(`http://127.0.0.1:${port}/generate`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'echo', payload: { ok: true }, priority: 5 }),
      });
      expect(res.status).toBe(202);
      const { task_id } = (await res.json()) as { task_id: string };
      const task = await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${port}/tasks/${task_id}`, { headers: { authorization: auth } });
        const body = (await r.json()) as { status: string; result: unknown };
        return body.status === 'completed' ? body : null;
      }, 'task completed');
      expect(task.result).toEqual({ ok: true });

      stack.child.kill('SIGINT');
      expect(await stack.exited).toBe(0);
      expect(await pingRedis(redisPort)).toBe(false);
    } finally {
      stack.child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('inspection on a 3-master Redis Cluster with 3 queue shards', () => {
  const onCluster = useTestCluster();

  it('pushline queue status shows each shard, the totals, and the next tasks merged in pop order', async () => {
    const prefix = uniquePrefix();
    const redis = onCluster.cluster.connection('command', 'cli-test');
    const queue = new TaskQueue(redis, queueKeys({ keyPrefix: prefix, tagged: true, shards: 3 }), { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
    const created = await queue.enqueue([1, 5, 3, 5, 2, 4].map((priority) => ({ type: 'echo', priority })));
    const env = { ...process.env, REDIS_CLUSTER_NODES: onCluster.cluster.seeds, REDIS_QUEUE_SHARDS: '3', REDIS_KEY_PREFIX: prefix };
    const { stdout } = await run(process.execPath, [BIN, 'queue', 'status', '--next', '3'], { env, cwd: tmpdir() });
    for (let i = 0; i < 3; i++) expect(stdout).toMatch(new RegExp(`\\{${prefix}uvr_tasks:${i}\\}\\s+2\\s+0\\s+0\\s+0`));
    expect(stdout).toMatch(/\(all shards\)\s+6\s+0\s+0\s+0/);
    expect(stdout).toContain('redis-cli -c');
    expect(stdout).toMatch(/5 \(highest\)\s+2\s/);
    const next = stdout.split('Next 3 to run')[1]!;
    const ids = [...next.matchAll(/^\s+\d\s+(\d-\d{17})\s+(\d)/gm)].map((m) => [m[1], m[2]]);
    // The two priority-5 tasks sit on different shards; equal scores across shards have no set order.
    expect(ids.slice(0, 2).sort()).toEqual([[created[1]!.id, '5'], [created[3]!.id, '5']].sort());
    expect(ids[2]).toEqual([created[5]!.id, '4']);
  });
});
