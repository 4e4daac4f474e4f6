// Acknowledged durability on a replicated Redis (a master and one replica, real processes):
// REDIS_WAIT_REPLICAS makes 202 mean "a replica has it", /health says which ROLE logic talks
// to, and task ids never repeat even when a failover loses the id counter's last increments.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { allocateIds } from '../../src/queue/backend.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { AUTH, authHeader } from '../helpers/logic.ts';
import { uniquePrefix } from '../helpers/redis.ts';
import { startReplicatedRedis, testReplicationWait, type ReplicatedRedis } from '../helpers/redis-sentinel.ts';
import { waitFor } from '../helpers/wait.ts';

let rr: ReplicatedRedis;
let master: Redis;
let replica: Redis;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  rr = await startReplicatedRedis({ replicas: 1 });
  master = rr.client(rr.nodes[0]!.port);
  replica = rr.client(rr.nodes[1]!.port);
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  // A stopped replica must run again before it can be killed and reaped.
  rr?.nodes[1]?.process.kill('SIGCONT');
  await rr?.close();
});

/** Logic on `port`, optionally with REDIS_WAIT_REPLICAS (its own connection, like startLogic). */
async function logicOn(port: number, wait?: { replicas: number; timeoutMs: number }, keyPrefix = uniquePrefix()) {
  const api = createRedis({ host: '127.0.0.1', port, db: 0, password: '' }, 'api', 'durability-logic');
  api.on('error', () => {});
  await api.connect();
  const replication = wait ? await testReplicationWait(port, wait.replicas, wait.timeoutMs) : undefined;
  const keys = queueKeys({ keyPrefix });
  const queue = new TaskQueue(api, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600, ...(replication ? { replication } : {}) });
  const app = await buildLogicApp({ queue, redis: api, credentials: AUTH, defaultPriority: 3, bodyLimit: 64 * 1024, taskTypes: LOGIC_TASK_TYPES, log: silentLogger });
  closers.push(async () => {
    await app.close();
    api.disconnect();
    replication?.redis.disconnect();
  });
  const generate = (payload: unknown, idempotencyKey?: string) =>
    app.inject({
      method: 'POST',
      url: '/generate',
      headers: { authorization: authHeader, ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
      payload: { type: 'echo', payload },
    });
  return { app, queue, keys, generate };
}

/** SIGSTOP: the replica keeps its connection but acknowledges nothing until SIGCONT. */
async function pauseReplica(): Promise<() => Promise<void>> {
  const pid = rr.nodes[1]!.process.pid!;
  process.kill(pid, 'SIGSTOP');
  await waitFor(() => /^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), 'replica stopped');
  return async () => {
    process.kill(pid, 'SIGCONT');
    // Caught up: the replica's acknowledged offset reaches the master's.
    await waitFor(async () => {
      const info = await master.info('replication');
      const masterOffset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1]);
      const acked = Number(/slave0:.*offset=(\d+)/.exec(info)?.[1]);
      return acked >= masterOffset;
    }, 'replica caught up');
  };
}

describe('REDIS_WAIT_REPLICAS', () => {
  /** WAIT's timeout where a replica must confirm in time: long enough for a loaded machine. */
  const CONFIRM_MS = 2_000;
  it('answers 202 only once a replica has the task', async () => {
    const logic = await logicOn(rr.nodes[0]!.port, { replicas: 1, timeoutMs: 5000 });
    const answer = await logic.generate({ n: 1 });
    expect(answer.statusCode).toBe(202);
    const id = answer.json().task_id as string;
    // Confirmed by WAIT: the replica already holds the hash when the 202 arrives.
    expect(await replica.hget(logic.keys.task(id), 'status')).toBe('queued');
  });

  it('answers 503 not_replicated while no replica confirms, and a retry with the same Idempotency-Key gets the same task', async () => {
    // The retry below must be confirmed within the timeout by a replica just resumed: 100 ms is a
    // deadline a loaded machine can miss, so the refused request pays a longer one instead.
    const logic = await logicOn(rr.nodes[0]!.port, { replicas: 1, timeoutMs: CONFIRM_MS });
    const resume = await pauseReplica();
    let refused;
    try {
      refused = await logic.generate({ n: 2 }, 'retry-me');
    } finally {
      await resume();
    }
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'not_replicated', message: expect.stringMatching(/may exist.*same Idempotency-Key/) });
    const retried = await logic.generate({ n: 2 }, 'retry-me');
    expect(retried.statusCode).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(await replica.hget(logic.keys.task(retried.json().task_id), 'status')).toBe('queued');
  });

  it('does not confirm a replayed task that no replica has, even one another logic wrote', async () => {
    const prefix = uniquePrefix();
    const careless = await logicOn(rr.nodes[0]!.port, undefined, prefix); // REDIS_WAIT_REPLICAS=0
    const careful = await logicOn(rr.nodes[0]!.port, { replicas: 1, timeoutMs: CONFIRM_MS }, prefix);
    const resume = await pauseReplica();
    let first, replay;
    try {
      first = await careless.generate({ n: 3 }, 'shared-key');
      replay = await careful.generate({ n: 3 }, 'shared-key');
    } finally {
      await resume();
    }
    expect(first.statusCode).toBe(202);
    // The task exists on the master only: a 202 here would promise what a failover can lose.
    expect(replay.statusCode).toBe(503);
    expect(replay.json().error).toBe('not_replicated');
    const again = await careful.generate({ n: 3 }, 'shared-key');
    expect(again.statusCode).toBe(202);
    expect(again.json().task_id).toBe(first.json().task_id);
  });
});

describe('/health and ROLE', () => {
  it('reports the master role and its replicas', async () => {
    const logic = await logicOn(rr.nodes[0]!.port, { replicas: 1, timeoutMs: 1000 });
    const health = await logic.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json().redis).toMatchObject({ status: 'up', role: 'master', replicas: 1 });
  });

  it('is 503 on a replica: no writable master', async () => {
    const logic = await logicOn(rr.nodes[1]!.port);
    const health = await logic.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ status: 'unavailable', redis: { role: 'replica', reason: expect.stringMatching(/not a writable master/) } });
  });

  it('is 503 when the master has fewer replicas than REDIS_WAIT_REPLICAS', async () => {
    const logic = await logicOn(rr.nodes[0]!.port, { replicas: 2, timeoutMs: 100 });
    const health = await logic.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json().redis).toMatchObject({ role: 'master', replicas: 1, reason: expect.stringMatching(/REDIS_WAIT_REPLICAS/) });
  });
});

describe('task ids', () => {
  it('are never handed out twice when the id counter loses its last increments (a failover without WAIT)', async () => {
    const keys = queueKeys({ keyPrefix: uniquePrefix() });
    const queue = new TaskQueue(master, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
    const first = await queue.enqueue(Array.from({ length: 5 }, () => ({ type: 'echo', priority: 3 })));
    // What a promoted replica holds when the old master's last increments never reached it:
    // the counter as it was before them.
    const before = await master.get(keys.taskSeq);
    const lost = await queue.enqueue(Array.from({ length: 20 }, () => ({ type: 'echo', priority: 3 })));
    await master.set(keys.taskSeq, before!);
    // A failover takes at least down-after-milliseconds: the new master's clock is past the lost writes'.
    const lastLost = lost.at(-1)!.createdAtMs;
    await waitFor(async () => {
      const [sec, micro] = await master.time();
      return Number(sec) * 1000 + Math.floor(Number(micro) / 1000) > lastLost;
    }, 'the Redis clock past the lost enqueues');
    const after = await queue.enqueue(Array.from({ length: 20 }, () => ({ type: 'echo', priority: 3 })));
    const ids = [...first, ...lost, ...after].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Still in enqueue order, as the FIFO tie-break needs.
    expect([...ids].sort()).toEqual(ids);
  });

  it('from the other backends (allocateIds) follow the same rule, and never repeat an engine id', async () => {
    const keys = queueKeys({ keyPrefix: uniquePrefix() });
    const queue = new TaskQueue(master, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
    const engine = await queue.enqueue(Array.from({ length: 5 }, () => ({ type: 'echo', priority: 3 })));
    const before = await master.get(keys.taskSeq);
    const lost = [await allocateIds(master, keys), await allocateIds(master, keys, 'room:seq:r1')];
    expect(lost[1]!.seq).toBe(1);
    await master.set(keys.taskSeq, before!);
    const lastLost = Math.max(...lost.map((l) => l.nowMs));
    await waitFor(async () => {
      const [sec, micro] = await master.time();
      return Number(sec) * 1000 + Math.floor(Number(micro) / 1000) > lastLost;
    }, 'the Redis clock past the lost ids');
    const after = [await allocateIds(master, keys), ...(await queue.enqueue([{ type: 'echo', priority: 3 }]))];
    const ids = [...engine.map((r) => r.id), ...lost.map((l) => l.id), ...after.map((r) => r.id)];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
