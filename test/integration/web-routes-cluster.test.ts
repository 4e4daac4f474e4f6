// The dashboard API and the demo's online list on a 3-master Redis Cluster with a queue in 3
// shards (REDIS_QUEUE_SHARDS=3): every read that spans keys of several slots (task hashes of
// different shards, worker hashes, connection hashes, the shards' id counters) still answers.
// Real cluster, real comets and job, real WebSockets; logic through fastify inject.
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { authHeader } from '../helpers/logic.ts';
import { startTestCluster, type TestCluster } from '../helpers/redis-cluster.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let cluster: TestCluster;
let stack: PushStack;
beforeAll(async () => {
  cluster = await startTestCluster();
  stack = await startPushStack(2, {
    devMode: true,
    // Webhooks to a closed loopback port, given up after one try: dead letters on every shard.
    env: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_MAX_ATTEMPTS: '1' },
    cluster: { seeds: cluster.seeds, shards: 3, client: () => cluster.client() as never },
  });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await cluster?.close();
});

const overview = async () => {
  const res = await stack.app.inject({ method: 'GET', url: '/dashboard/api/overview', headers: { authorization: authHeader } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as {
    enqueued_total: number;
    workers: { id: string; backend?: string; types?: string }[];
    webhook_failures: { id: string; hook_url?: string; task_status?: string }[];
  };
};

describe('dashboard and demo API on a Redis Cluster, 3 queue shards', () => {
  it('lists the running job as a worker, with what it runs', async () => {
    const workers = await waitFor(async () => {
      const { workers } = await overview();
      return workers.length > 0 ? workers : null;
    }, 'a worker on the dashboard');
    expect(workers).toEqual([expect.objectContaining({ id: `${hostname()}:${process.pid}`, backend: 'redis', types: expect.stringContaining('echo') })]);
  });

  it('counts the tasks of every shard and shows each shard’s webhook failures with their task hash', async () => {
    const hook = `http://127.0.0.1:${await freePort()}/hook`;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await stack.post('/generate', { type: 'echo', payload: { i }, priority: 3, hook_url: hook });
      expect(res.statusCode, res.body).toBe(202);
      ids.push(res.json().task_id as string);
    }
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(3);
    const failures = await waitFor(async () => {
      const { webhook_failures } = await overview();
      return webhook_failures.length === ids.length ? webhook_failures : null;
    }, 'every webhook given up');
    expect(failures.map((f) => f.id).sort()).toEqual([...ids].sort());
    for (const f of failures) expect(f).toMatchObject({ hook_url: hook, task_status: 'completed' });
    expect((await overview()).enqueued_total).toBe(ids.length);
  });

  it('POST /generate/batch spreads over the shards and GET /tasks finds the finished tasks of every shard', async () => {
    const res = await stack.post('/generate/batch', { tasks: Array.from({ length: 6 }, (_, i) => ({ type: 'echo', payload: { batch: i }, priority: 4 })) });
    expect(res.statusCode, res.body).toBe(202);
    const ids = (res.json().tasks as { task_id: string }[]).map((t) => t.task_id);
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(3);
    const found = await waitFor(async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await stack.app.inject({ method: 'GET', url: `/tasks?status=completed&priority=4&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: { authorization: authHeader } });
        expect(page.statusCode, page.body).toBe(200);
        const body = page.json() as { tasks: { task_id: string }[]; next_cursor: string | null };
        seen.push(...body.tasks.map((t) => t.task_id));
        cursor = body.next_cursor;
      } while (cursor);
      return seen.length === ids.length ? seen : null;
    }, 'the batch completed and found on every shard');
    expect([...found].sort()).toEqual([...ids].sort());
  });

  it('/demo/api/online lists a room’s users whatever slot their connections hash to', async () => {
    const [a, b] = stack.comets;
    const clients = [await stack.connect(a!, 'ann', 'hall'), await stack.connect(b!, 'bob', 'hall'), await stack.connect(b!, 'cid', 'hall'), await stack.connect(a!, 'bob', 'hall')];
    try {
      const users = await waitFor(async () => {
        const res = await stack.app.inject({ method: 'GET', url: '/demo/api/online?roomId=hall' });
        expect(res.statusCode, res.body).toBe(200);
        const { users } = res.json() as { users: { userId: string; comets: string[] }[] };
        return users.flatMap((u) => u.comets).length === 4 ? users : null;
      }, 'four connections online');
      expect(users.map((u) => u.userId)).toEqual(['ann', 'bob', 'cid']);
      expect(users.find((u) => u.userId === 'bob')!.comets.sort()).toEqual([a!.cometId, b!.cometId].sort());
    } finally {
      for (const c of clients) c.ws.close();
    }
  });
});
