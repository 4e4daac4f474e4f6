// Delayed tasks and recurring schedules on a 3-master Redis Cluster with a queue in 3 shards:
// every script still touches one slot (a shard's scheduled set with its queue; the schedule
// definitions with their next runs), and the cluster refuses any that does not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFromEnv } from '../../src/config/derive.ts';
import { authHeader } from '../helpers/logic.ts';
import { startTestCluster, type TestCluster } from '../helpers/redis-cluster.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let cluster: TestCluster;
let stack: PushStack;
beforeAll(async () => {
  cluster = await startTestCluster();
  stack = await startPushStack(1, { cluster: { seeds: cluster.seeds, shards: 3, client: () => cluster.client() as never } });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await cluster?.close();
});

describe('on a Redis Cluster, 3 queue shards', () => {
  it('delayed tasks wait on every shard, are counted, and run once due', async () => {
    const ids: string[] = [];
    // 3 s out: all six must still be waiting when /health counts them below, however slowly a
    // loaded machine gets through the posts (at 800 ms, a stall could let the job start them).
    for (let i = 0; i < 6; i++) {
      const res = await stack.post('/generate', { type: 'echo', payload: { i }, delay_ms: 3_000 + i });
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json().status).toBe('scheduled');
      ids.push(res.json().task_id as string);
    }
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(3);
    const health = (await stack.app.inject({ method: 'GET', url: '/health' })).json();
    expect(health.scheduled).toBeGreaterThan(0);
    for (const id of ids) expect((await stack.finished(id)).status).toBe('completed');
    expect((await stack.app.inject({ method: 'GET', url: '/health' })).json().scheduled).toBe(0);
  });

  it('a schedule fires one task per tick', async () => {
    const res = await stack.app.inject({
      method: 'POST', url: '/schedules', headers: { authorization: authHeader }, payload: { name: 'tick', every_ms: 200, task: { type: 'echo' }, catch_up: 'all' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const anchor = Date.parse(res.json().created_at);
    const keys = keysFromEnv(stack.env);
    // Each tick's task is found through its idempotency key (no KEYS on a cluster); catch_up all
    // fires every tick even when the loaded machine makes the scheduler late.
    const taskOfTick = async (k: number) => {
      const key = `schedule:tick:${anchor + k * 200}`;
      const v = await stack.client.get(keys.ofName(key).idempotency(key));
      return v ? v.split(' ')[0]! : null;
    };
    await waitFor(async () => (await taskOfTick(3)) !== null, 'the third tick fired', 30_000);
    expect((await stack.app.inject({ method: 'DELETE', url: '/schedules/tick', headers: { authorization: authHeader } })).statusCode).toBe(200);
    const id = (await taskOfTick(3))!;
    const done = await stack.finished(id);
    expect(done).toMatchObject({ schedule: 'tick', schedule_tick: String(anchor + 600), status: 'completed' });
  });
});
