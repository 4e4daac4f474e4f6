// REDIS_QUEUE_SHARDS on a 3-master Redis Cluster: tasks spread over complete key sets, each in its
// own slot; the shard is read from the id; claims keep priority order across shards; idempotency
// keys and room seq counters live on a fixed shard. Plus the names each layout uses.
import { beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { queueKeys, TASK_ID_PATTERN, type QueueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { uniquePrefix } from '../helpers/redis.ts';
import { useTestCluster } from '../helpers/redis-cluster.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestCluster();
let keys: QueueKeys;
let queue: TaskQueue;
let redis: Redis;

beforeEach(async () => {
  redis ??= shared.cluster.connection('command', 'shards-test');
  keys = queueKeys({ keyPrefix: uniquePrefix(), tagged: true, shards: 3 });
  queue = new TaskQueue(redis, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
});

describe('key names', () => {
  it('a standalone, unsharded queue keeps the exact names of the seed docs', () => {
    const plain = queueKeys();
    expect([plain.tasks.queue, plain.tasks.processing, plain.results.queue, plain.task('000000000001'), plain.idempotency('k'), plain.sequence('room:seq:video_123')]).toEqual([
      'uvr_tasks', 'uvr_tasks:processing', 'uvr_results', 'task:000000000001', 'idempotency:k', 'room:seq:video_123',
    ]);
    expect(routingKeys().roomConnections('video_123')).toBe('room:connections:video_123');
  });

  it('a cluster queue tags its whole key set, and routing keys are tagged per room, user, connection and comet', () => {
    const tagged = queueKeys({ tagged: true });
    expect([tagged.tasks.queue, tagged.tasks.processing, tagged.results.queue, tagged.task('000000000001'), tagged.idempotency('k'), tagged.sequence(routingKeys('', true).roomSeq('video_123'))]).toEqual([
      '{uvr_tasks}', '{uvr_tasks}:processing', '{uvr_tasks}:uvr_results', '{uvr_tasks}:task:000000000001', '{uvr_tasks}:idempotency:k', '{uvr_tasks}:room:seq:{video_123}',
    ]);
    const r = routingKeys('', true);
    expect([r.roomConnections('v'), r.roomComets('v'), r.roomHistory('v'), r.connectionInfo('c'), r.userOnline('u'), r.userConnections('u'), r.cometConnections('h:1')]).toEqual([
      'room:connections:{v}', 'room:comets:{v}', 'room:history:{v}', 'connection:info:{c}', 'user:online:{u}', 'user:connections:{u}', 'comet:connections:{h:1}',
    ]);
    expect(queueKeys({ tagged: true, shards: 3 }).shards.map((s) => s.tasks.queue)).toEqual(['{uvr_tasks:0}', '{uvr_tasks:1}', '{uvr_tasks:2}']);
  });
});

describe('a queue in 3 shards on a Redis Cluster', () => {
  it('spreads tasks over every shard; the id names its shard, so GET and DELETE go straight to it', async () => {
    const created = await queue.enqueue(Array.from({ length: 9 }, (_, i) => ({ type: 'echo', priority: 3, payload: String(i) })));
    for (const c of created) expect(c.id).toMatch(TASK_ID_PATTERN);
    expect(new Set(created.map((c) => c.id.split('-')[0])).size).toBe(3);
    for (const shard of keys.shards) expect(await redis.zcard(shard.tasks.queue)).toBe(3);
    const [first] = created;
    expect(await queue.get(first!.id)).toMatchObject({ id: first!.id, payload: '0', status: 'queued' });
    expect(await redis.exists(keys.ofTask(first!.id).task(first!.id))).toBe(1);
    expect(await queue.cancel(first!.id)).toEqual({ canceled: true, status: 'canceled' });
    expect((await queue.stats()).tasks.queued).toBe(8);
  });

  it('claims in priority order across shards: never a lower priority while a higher one waits on another shard', async () => {
    // Round robin puts task i on shard i % 3: shard 0 holds 5,1,1 — one claim of 4 from it alone
    // would take both 1s ahead of the 4s, 3 and 2 waiting on the other shards.
    const priorities = [5, 4, 3, 1, 4, 2, 1, 1, 1, ...Array.from({ length: 21 }, (_, i) => [1, 5, 3, 2, 4, 3][i % 6]!)];
    const created = await queue.enqueue(priorities.map((priority) => ({ type: 'echo', priority })));
    const priorityOf = new Map(created.map((c, i) => [c.id, priorities[i]!]));
    const popped: number[] = [];
    for (;;) {
      const batch = await queue.tasks.claim(4, 30_000);
      popped.push(...batch.tasks.map((t) => priorityOf.get(t.id)!));
      if (batch.tasks.length === 0 && !batch.more) break;
    }
    expect(popped).toEqual([...priorities].sort((a, b) => b - a));
  });

  it('promotes a due retry on a shard whose queue is empty', async () => {
    const [task] = await queue.enqueue([{ type: 'echo', priority: 3 }]);
    const claimed = await queue.tasks.claim(1, 30_000);
    expect(claimed.tasks.map((t) => t.id)).toEqual([task!.id]);
    await queue.tasks.settle([{ id: task!.id, token: claimed.tasks[0]!.token, outcome: 'retry', delayMs: 30 }]);
    const again = await waitFor(async () => {
      const batch = await queue.tasks.claim(1, 30_000);
      return batch.tasks.length > 0 ? batch : null;
    }, 'the retry claimed again');
    expect(again.tasks[0]).toMatchObject({ id: task!.id, attempt: 2 });
  });

  it('keeps an Idempotency-Key on one fixed shard: a retry finds its task, another body is flagged', async () => {
    const first = await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'order-7', fingerprint: 'a' } });
    for (let i = 0; i < 4; i++) {
      const again = await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'order-7', fingerprint: 'a' } });
      expect(again).toMatchObject({ id: first.id, outcome: 'existing' });
    }
    expect((await queue.enqueueOne({ type: 'echo', priority: 3, idempotency: { key: 'order-7', fingerprint: 'b' } })).outcome).toBe('conflict');
  });

  it("sends a room's messages to the room's shard, where its seq counter lives: 1, 2, 3… without gaps", async () => {
    const seqKey = routingKeys(keys.prefix, true).roomSeq('video_123');
    const created = await queue.enqueue(Array.from({ length: 6 }, () => ({ type: 'push', priority: 3, sequenceKey: seqKey })));
    const shard = keys.ofName(seqKey);
    expect(new Set(created.map((c) => keys.ofTask(c.id).shard))).toEqual(new Set([shard.shard]));
    const seqs = await Promise.all(created.map(async (c) => Number((await queue.get(c.id))!.seq)));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await redis.get(shard.sequence(seqKey))).toBe('6');
  });
});
