// Groups in the Lua engine against a real redis-server (docs/queue.md, "Groups"): where a
// grouped task waits on every path back into line (enqueue, retry, release, delayed retry,
// revive, cancel), strict priority across groups inside one claim batch, the counts of
// stats (GET /health) and of GET /groups, and limits lifted by DELETE /groups/:name.
import { beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { groupKeys, queueKeys, type QueueKeys } from '../../src/queue/keys.ts';
import { Groups } from '../../src/queue/groups.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestRedis();
let keys: QueueKeys;
let queue: TaskQueue;
let groups: Groups;
let client: Redis;

beforeEach(() => {
  client = shared.client;
  keys = queueKeys({ keyPrefix: uniquePrefix() });
  queue = new TaskQueue(client, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
  groups = new Groups(client, keys);
});

const g = () => groupKeys(keys.tasks.queue);

describe('groups in the engine', () => {
  it('keeps strict priority across groups and ungrouped tasks, even inside one claim batch', async () => {
    const spec: [number, string | undefined][] = [];
    for (let i = 0; i < 8; i++) spec.push([1, 'a'], [5, 'b'], [4, undefined], [5, undefined], [2, 'a'], [4, 'c']);
    const created = await queue.enqueue(spec.map(([priority, group]) => ({ type: 'echo', priority, ...(group ? { group } : {}) })));
    const priorityOf = new Map(created.map((c, i) => [c.id, spec[i]![0]]));
    const claimed: number[] = [];
    for (;;) {
      const batch = await queue.tasks.claim(5, 30_000);
      if (batch.tasks.length === 0) break;
      claimed.push(...batch.tasks.map((t) => priorityOf.get(t.id)!));
    }
    expect(claimed).toHaveLength(spec.length);
    expect(claimed).toEqual([...claimed].sort((x, y) => y - x));
  });

  it('takes turns between groups of one priority inside a batch', async () => {
    const a = await queue.enqueue(Array.from({ length: 50 }, () => ({ type: 'echo', priority: 3, group: 'a' })));
    const b = await queue.enqueue(Array.from({ length: 3 }, () => ({ type: 'echo', priority: 3, group: 'b' })));
    // Inspection (queue status, dashboard) shows each group's next task at its group's place.
    expect((await queue.peek(3)).map((w) => [w.id, w.group])).toEqual([[a[0]!.id, 'a'], [b[0]!.id, 'b']]);
    const batch = await queue.tasks.claim(6, 30_000);
    expect(batch.tasks.map((t) => t.id)).toEqual([a[0]!.id, b[0]!.id, a[1]!.id, b[1]!.id, a[2]!.id, b[2]!.id]);
  });

  it('puts a grouped task back in its group on retry, release, delayed retry and revive', async () => {
    const [one] = await queue.enqueue([{ type: 'echo', priority: 3, group: 'g' }]);
    const id = one!.id;
    const inGroup = async () => (await client.zscore(g().waiting('g'), id)) !== null && (await client.zscore(keys.tasks.queue, id)) === null;
    expect(await inGroup()).toBe(true);
    expect(await client.zscore(keys.tasks.queue, g().entry('g'))).not.toBeNull();

    for (const settle of [
      { outcome: 'retry' as const },
      { outcome: 'release' as const },
      { outcome: 'retry' as const, delayMs: 1 },
      { outcome: 'dead' as const },
    ]) {
      const [task] = (await queue.tasks.claim(1, 30_000)).tasks;
      expect(task?.id).toBe(id);
      expect(await client.hget(g().running, 'g')).toBe('1');
      expect(await queue.tasks.settle([{ id, token: task!.token, ...settle }])).toEqual([true]);
      expect(await client.hget(g().running, 'g')).toBeNull();
      if (settle.outcome === 'dead') {
        expect(await queue.tasks.revive(id)).toBe(true);
      } else if (settle.delayMs) {
        expect(await client.zscore(keys.tasks.delayed, id)).not.toBeNull();
        // The next claim promotes it into its group, not into the queue.
        await waitFor(async () => (await queue.tasks.claim(0, 30_000)) && (await client.zscore(keys.tasks.delayed, id)) === null, 'retry promoted');
      }
      expect(await inGroup()).toBe(true);
      expect(await client.zscore(keys.tasks.queue, g().entry('g'))).not.toBeNull();
    }
  });

  it('cancels a waiting grouped task, and its group entry with its last task', async () => {
    const [a, b] = await queue.enqueue([{ type: 'echo', priority: 3, group: 'g' }, { type: 'echo', priority: 3, group: 'g' }]);
    expect(await queue.cancel(a!.id)).toEqual({ canceled: true, status: 'canceled' });
    expect(await client.zscore(keys.tasks.queue, g().entry('g'))).not.toBeNull();
    expect(await queue.cancel(b!.id)).toEqual({ canceled: true, status: 'canceled' });
    expect(await client.zcard(keys.tasks.queue)).toBe(0);
    expect(await client.exists(g().waiting('g'))).toBe(0);
    expect((await queue.tasks.claim(5, 30_000)).tasks).toEqual([]);
    expect(await groups.list()).toEqual([]);
  });

  it('counts grouped waiting tasks per priority in stats, and lists groups with their counts', async () => {
    await queue.enqueue([
      ...Array.from({ length: 4 }, () => ({ type: 'echo', priority: 3, group: 'a' })),
      ...Array.from({ length: 2 }, () => ({ type: 'echo', priority: 5, group: 'a' })),
      ...Array.from({ length: 3 }, () => ({ type: 'echo', priority: 3 })),
      ...Array.from({ length: 1 }, () => ({ type: 'echo', priority: 1, group: 'b' })),
    ]);
    await groups.setLimits('c', { concurrency: 2 });
    const stats = await queue.stats();
    expect(Object.fromEntries(stats.priorities.map((p) => [p.priority, p.queued]))).toEqual({ 5: 2, 4: 0, 3: 7, 2: 0, 1: 1 });
    expect(stats.tasks.queued).toBe(10);
    await queue.tasks.claim(1, 30_000);
    expect(await groups.list()).toEqual([
      { name: 'a', limits: null, waiting: 5, running: 1, blocked: false },
      { name: 'b', limits: null, waiting: 1, running: 0, blocked: false },
      { name: 'c', limits: { concurrency: 2 }, waiting: 0, running: 0, blocked: false },
    ]);
  });

  it('blocks a group at its limit without busy claims, and lifts the block when the limit goes', async () => {
    await groups.setLimits('g', { concurrency: 1 });
    await queue.enqueue(Array.from({ length: 3 }, () => ({ type: 'echo', priority: 3, group: 'g' })));
    const first = await queue.tasks.claim(5, 30_000);
    expect(first.tasks).toHaveLength(1);
    // Blocked: out of line, so an idle consumer finds nothing and waits on its marker.
    expect(await client.zcard(keys.tasks.queue)).toBe(0);
    expect(await client.sismember(g().blocked, 'g')).toBe(1);
    expect((await queue.tasks.claim(5, 30_000)).tasks).toHaveLength(0);
    expect(await groups.removeLimits('g')).toBe(true);
    expect((await queue.tasks.claim(5, 30_000)).tasks).toHaveLength(2);
  });

  it('wakes a waiting consumer when a completed task unblocks its group', async () => {
    await groups.setLimits('g', { concurrency: 1 });
    await queue.enqueue(Array.from({ length: 2 }, () => ({ type: 'echo', priority: 3, group: 'g' })));
    const [running] = (await queue.tasks.claim(5, 30_000)).tasks;
    // Idle consumers block on the marker (BZPOPMIN); nothing else tells them the group is back.
    await client.del(keys.tasks.marker);
    expect(await queue.tasks.settle([{ id: running!.id, token: running!.token, outcome: 'completed' }])).toEqual([true]);
    expect(await client.zcard(keys.tasks.marker)).toBe(1);
    expect((await queue.tasks.claim(5, 30_000)).tasks).toHaveLength(1);
  });

  it('parks a rate-limited group in the delayed set and tells consumers when to come back', async () => {
    await groups.setLimits('r', { rate: { max: 1, per_ms: 60_000 } });
    await queue.enqueue(Array.from({ length: 2 }, () => ({ type: 'echo', priority: 3, group: 'r' })));
    const batch = await queue.tasks.claim(5, 30_000);
    expect(batch.tasks).toHaveLength(1);
    expect(Number(await client.zscore(keys.tasks.delayed, g().entry('r')))).toBe(batch.nextDueMs);
    expect(batch.nextDueMs! - batch.nowMs).toBeGreaterThan(59_000);
    expect((await queue.stats()).tasks.delayed).toBe(0);
  });
});

describe('groups on a sharded queue (REDIS_QUEUE_SHARDS > 1)', () => {
  it('keeps all of a group on its name’s shard, so its limit holds across the shards', async () => {
    const sharded = queueKeys({ keyPrefix: uniquePrefix(), shards: 3 });
    const q = new TaskQueue(shared.client, sharded, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
    const gs = new Groups(shared.client, sharded);
    await gs.setLimits('tenant', { concurrency: 2 });
    const created = await q.enqueue(Array.from({ length: 6 }, () => ({ type: 'echo', priority: 3, group: 'tenant' })));
    const home = sharded.ofName('tenant');
    expect(new Set(created.map((c) => sharded.ofTask(c.id).shard))).toEqual(new Set([home.shard]));
    expect(await shared.client.zcard(groupKeys(home.tasks.queue).waiting('tenant'))).toBe(6);
    await q.enqueue(Array.from({ length: 6 }, () => ({ type: 'echo', priority: 3 })));
    const claimed: string[] = [];
    for (let i = 0; i < 10; i++) claimed.push(...(await q.tasks.claim(10, 30_000)).tasks.map((t) => t.id));
    const grouped = new Set(created.map((c) => c.id));
    expect(claimed.filter((id) => grouped.has(id))).toHaveLength(2);
    expect(claimed.filter((id) => !grouped.has(id))).toHaveLength(6);
    expect(await gs.list()).toEqual([{ name: 'tenant', limits: { concurrency: 2 }, waiting: 4, running: 2, blocked: true }]);
  });
});
