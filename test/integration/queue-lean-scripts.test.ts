// Issue 11, item 3: enqueue.lua reads the id counter and each room's seq counter once per call and
// writes them back once, and lines tasks up with one ZADD. The counters must still come out as one
// INCR per task would leave them, across calls, rooms, groups and scheduled tasks.
import { expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue, type NewTask } from '../../src/queue/task-queue.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';

const shared = useTestRedis();
const newQueue = () => new TaskQueue(shared.client, queueKeys({ keyPrefix: uniquePrefix() }), { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
const roomMessage = (room: string): NewTask => ({ type: 'push', priority: 3, payload: '{}', sequenceKey: `room:seq:${room}` });

it('one call for two rooms: each room counts on from where it was, ids increase, the counters hold the last values', async () => {
  const queue = newQueue();
  const seqOf = async (id: string) => Number(await shared.client.hget(queue.keys.task(id), 'seq'));
  const first = await queue.enqueue([roomMessage('a')]);
  const batch = await queue.enqueue([roomMessage('a'), roomMessage('b'), roomMessage('a'), { type: 'x', priority: 1 }, roomMessage('b'), roomMessage('a')]);
  const last = await queue.enqueue([roomMessage('a'), roomMessage('b')]);

  expect(await seqOf(first[0]!.id)).toBe(1);
  expect(await Promise.all(batch.filter((_, i) => i !== 3).map((r) => seqOf(r.id)))).toEqual([2, 1, 3, 2, 4]);
  expect(await Promise.all(last.map((r) => seqOf(r.id)))).toEqual([5, 3]);
  expect(await shared.client.get(queue.keys.sequence('room:seq:a'))).toBe('5');
  expect(await shared.client.get(queue.keys.sequence('room:seq:b'))).toBe('3');

  const ids = [...first, ...batch, ...last].map((r) => r.id);
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(ids.length);
  expect(await shared.client.get(queue.keys.taskSeq)).toBe(String(BigInt(ids.at(-1)!)));
  // All queued, in priority then enqueue order.
  const queued = await shared.client.zrange(queue.keys.tasks.queue, '0', '-1');
  const low = batch[3]!.id; // priority 1: behind every priority-3 task
  expect(queued).toEqual([...ids.filter((id) => id !== low), low]);
});

it('a counter behind the clock is lifted once for the whole call; grouped and scheduled tasks of the call wait where they belong', async () => {
  const queue = newQueue();
  await shared.client.set(queue.keys.taskSeq, '5');
  const results = await queue.enqueue([
    { type: 'x', priority: 3 },
    { type: 'x', priority: 3, group: 'g1' },
    { type: 'x', priority: 3, start: { delayMs: 60_000 } },
    { type: 'x', priority: 3 },
  ]);
  const ids = results.map((r) => r.id);
  const [sec] = await shared.client.time();
  expect(Number(ids[0])).toBeGreaterThan(Number(sec) * 1_000_000 - 60_000_000);
  expect(ids.map((id) => BigInt(id) - BigInt(ids[0]!))).toEqual([0n, 1n, 2n, 3n]);
  expect(await shared.client.get(queue.keys.taskSeq)).toBe(String(BigInt(ids[3]!)));
  expect(await shared.client.zscore(queue.keys.tasks.queue, ids[0]!)).not.toBeNull();
  expect(await shared.client.zscore(queue.keys.tasks.queue, ids[3]!)).not.toBeNull();
  expect(await shared.client.zscore(queue.keys.tasks.queue, 'group:g1')).not.toBeNull();
  expect(await shared.client.zscore(queue.keys.scheduled, ids[2]!)).not.toBeNull();
  expect(await shared.client.zcard(queue.keys.tasks.queue)).toBe(3);
});
