// GET /tasks?status=&type=&group=&priority=&limit=&cursor= (issue 13 item 6) over fastify's
// inject(), against a real Redis. Tasks are submitted through the API and moved through the
// engine's own Lua scripts (claim, settle, cancel), so every index the search walks is the one
// the engine keeps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { AUTH, authHeader, testLogic } from '../helpers/logic.ts';
import type { Redis } from 'ioredis';
import type { Settlement } from '../../src/queue/task.ts';
import { STATUS_INDEXES, type StatusIndex } from '../../src/queue/task-search.ts';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { silentLogger } from '../../src/util/log.ts';
import { uniquePrefix } from '../helpers/redis.ts';

let redis: TestRedis;
let logic: Awaited<ReturnType<typeof testLogic>>;

beforeAll(async () => {
  redis = await startTestRedis();
  logic = await testLogic(redis.port, { bodyLimit: 1024 * 1024 });
});
afterAll(async () => {
  await logic.close();
  await redis.close();
});

type Summary = { task_id: string; type: string; status: string; priority: number; finished_at: string | null; error: string | null };
type Page = { tasks: Summary[]; next_cursor: string | null; scanned: number };

const get = (url: string) => logic.app.inject({ method: 'GET', url, headers: { authorization: authHeader } });

async function page(query: string): Promise<Page> {
  const res = await get(`/tasks?${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Page;
}

/** Every page of a search, following next_cursor; fails on a repeated id. */
async function all(query: string): Promise<{ ids: string[]; pages: number; tasks: Summary[] }> {
  const tasks: Summary[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const p: Page = await page(`${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    tasks.push(...p.tasks);
    cursor = p.next_cursor;
    pages++;
    expect(pages).toBeLessThan(200);
  } while (cursor);
  const ids = tasks.map((t) => t.task_id);
  expect(new Set(ids).size).toBe(ids.length);
  return { ids, pages, tasks };
}

async function submit(tasks: unknown[]): Promise<string[]> {
  const res = await logic.app.inject({
    method: 'POST',
    url: '/generate/batch',
    headers: { authorization: authHeader, 'content-type': 'application/json' },
    payload: JSON.stringify({ tasks }),
  });
  expect(res.statusCode).toBe(202);
  return (res.json() as { tasks: { task_id: string }[] }).tasks.map((t) => t.task_id);
}

describe('GET /tasks: search by status and filters, cursor-paged', () => {
  let audio: string[];
  let echo3: string[];
  let echo1: string[];
  const outcome = { completed: [] as string[], failed: [] as string[], dead: [] as string[], retrying: [] as string[], processing: [] as string[], canceled: [] as string[] };

  beforeAll(async () => {
    echo3 = await submit(Array.from({ length: 25 }, (_, n) => ({ type: 'echo', payload: { n }, priority: 3 })));
    audio = await submit(Array.from({ length: 15 }, (_, n) => ({ type: 'audio', audio: `https://example.com/${n}.mp3`, priority: 5 })));
    echo1 = await submit(Array.from({ length: 5 }, (_, n) => ({ type: 'echo', payload: { n }, priority: 1 })));
    // Pop order: the 15 audio tasks (priority 5), then the first 5 echo tasks of priority 3.
    const claimed = (await logic.queue.tasks.claim(20, 60_000)).tasks;
    expect(claimed.map((t) => t.id)).toEqual([...audio, ...echo3.slice(0, 5)]);
    const plan: [string, Partial<Settlement>][] = [
      ...Array.from({ length: 8 }, (): [string, Partial<Settlement>] => ['completed', { outcome: 'completed', fields: { result: '1' } }]),
      ...Array.from({ length: 4 }, (): [string, Partial<Settlement>] => ['failed', { outcome: 'failed', fields: { error: 'bad input' } }]),
      ...Array.from({ length: 3 }, (): [string, Partial<Settlement>] => ['dead', { outcome: 'dead', fields: { error: 'gave up' } }]),
      ...Array.from({ length: 2 }, (): [string, Partial<Settlement>] => ['retrying', { outcome: 'retry', delayMs: 600_000, fields: { error: 'try later' } }]),
    ];
    // One settle call per task, so finish times are distinct or increase in this order.
    for (const [i, [name, s]] of plan.entries()) {
      const task = claimed[i]!;
      expect(await logic.queue.tasks.settle([{ id: task.id, token: task.token, ...s } as Settlement])).toEqual([true]);
      outcome[name as keyof typeof outcome].push(task.id);
    }
    outcome.processing = claimed.slice(plan.length).map((t) => t.id);
    for (const id of [echo3[10]!, echo3[11]!]) {
      expect((await logic.app.inject({ method: 'DELETE', url: `/tasks/${id}`, headers: { authorization: authHeader } })).statusCode).toBe(200);
      outcome.canceled.push(id);
    }
  });

  it('lists every status from its index, in the index order, page by page without repeats or gaps', async () => {
    const queued = [...echo3.slice(5).filter((id) => !outcome.canceled.includes(id)), ...echo1];
    const q = await all('status=queued&limit=3');
    expect(q.ids).toEqual(queued);
    expect(q.pages).toBeGreaterThan(5);
    expect(q.tasks[0]).toMatchObject({ type: 'echo', status: 'queued', priority: 3, finished_at: null });

    // Newest first: the reverse of the order they finished in.
    expect((await all('status=completed&limit=3')).ids).toEqual([...outcome.completed!].reverse());
    const failed = await all('status=failed&limit=2');
    expect(failed.ids).toEqual([...outcome.failed!].reverse());
    expect(failed.tasks[0]).toMatchObject({ status: 'failed', type: 'audio', error: 'bad input', finished_at: expect.any(String) });
    expect((await all('status=dead&limit=2')).ids).toEqual([...outcome.dead!].reverse());
    expect((await all('status=retrying')).ids.sort()).toEqual([...outcome.retrying!].sort());
    expect((await all('status=processing&limit=1')).ids.sort()).toEqual([...outcome.processing!].sort());
    expect((await all('status=canceled')).ids).toEqual([...outcome.canceled!].reverse());
  });

  it('filters by type and priority while walking', async () => {
    expect((await all('status=queued&priority=1&limit=2')).ids).toEqual(echo1);
    expect((await all('status=queued&type=echo&priority=3')).ids).toHaveLength(18);
    expect((await all('status=completed&type=audio')).ids).toEqual([...outcome.completed!].reverse());
    expect((await all('status=completed&type=echo')).ids).toEqual([]);
    expect((await all('status=processing&type=echo')).ids.sort()).toEqual([...outcome.processing!].sort());
    expect((await all('status=queued&group=tenant-a')).ids).toEqual([]);
  });

  it('walks a status spread over several sets one set after another (STATUS_INDEXES allows more than one)', async () => {
    const entry: StatusIndex = STATUS_INDEXES.processing;
    const original = entry.keys;
    const extra = `${logic.keys.tasks.queue}:test-extra`;
    // A second set holding the same leased ids in another order, as a per-group set would.
    await logic.redis.zadd(extra, ...outcome.processing.flatMap((id, i) => [String(100 - i), id]));
    entry.keys = (k) => [k.tasks.processing, extra];
    try {
      const walk = await all('status=processing&limit=2').catch((err: unknown) => err);
      expect(walk).toBeInstanceOf(Error); // the same id twice: all() refuses repeats
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const p: Page = await page(`status=processing&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        ids.push(...p.tasks.map((t) => t.task_id));
        cursor = p.next_cursor;
      } while (cursor);
      const leased = (await logic.redis.zrange(logic.keys.tasks.processing, '0', '-1'));
      expect(ids).toEqual([...leased, ...[...outcome.processing].reverse()]);
    } finally {
      entry.keys = original;
      await logic.redis.del(extra);
    }
  });

  it('continues after its cursor when the tasks of the last page have left the index since', async () => {
    const before = (await all('status=queued&type=echo&priority=3')).ids;
    const first = await page('status=queued&type=echo&priority=3&limit=4');
    expect(first.tasks.map((t) => t.task_id)).toEqual(before.slice(0, 4));
    // Claiming pops the head of the queue: the cursor's own entry is gone.
    const popped = (await logic.queue.tasks.claim(3, 60_000)).tasks.map((t) => t.id);
    expect(popped).toEqual(before.slice(0, 3));
    const rest: string[] = [];
    let cursor = first.next_cursor;
    while (cursor) {
      const p = await page(`status=queued&type=echo&priority=3&limit=4&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...p.tasks.map((t) => t.task_id));
      cursor = p.next_cursor;
    }
    expect(rest).toEqual(before.slice(4));
  });

  it('examines a bounded number of entries per request and says where to go on', async () => {
    await submit(Array.from({ length: 1000 }, () => ({ type: 'echo', priority: 2 })));
    await submit(Array.from({ length: 200 }, () => ({ type: 'echo', priority: 2 })));
    const first = await page('status=queued&type=audio&limit=100');
    expect(first).toMatchObject({ tasks: [], scanned: 1000, next_cursor: expect.any(String) });
    const second = await page(`status=queued&type=audio&limit=100&cursor=${encodeURIComponent(first.next_cursor!)}`);
    expect(second.tasks).toEqual([]);
    expect(second.next_cursor).toBeNull();
    expect(second.scanned).toBe((await logic.redis.zcard(logic.keys.tasks.queue)) - 1000);
  });

  it('keeps the finished index to the retention window', async () => {
    const finished = logic.keys.tasks.finished;
    await logic.redis.zadd(finished, '1000', 'ancient-expired-task');
    const [task] = (await logic.queue.tasks.claim(1, 60_000)).tasks;
    await logic.queue.tasks.settle([{ id: task!.id, token: task!.token, outcome: 'completed' }]);
    expect(await logic.redis.zscore(finished, 'ancient-expired-task')).toBeNull();
    expect(await logic.redis.zscore(finished, task!.id)).not.toBeNull();
  });

  it('walking newest first, continues after its cursor when that task has left the index', async () => {
    const newestFirst = [...outcome.dead].reverse();
    const first = await page('status=dead&limit=1');
    expect(first.tasks.map((t) => t.task_id)).toEqual([newestFirst[0]]);
    expect(await logic.queue.tasks.discardDead(newestFirst[0]!)).toBe(true);
    const rest: string[] = [];
    let cursor = first.next_cursor;
    while (cursor) {
      const p = await page(`status=dead&limit=1&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...p.tasks.map((t) => t.task_id));
      cursor = p.next_cursor;
    }
    expect(rest).toEqual(newestFirst.slice(1));
  });

  it('refuses bad parameters with 400 naming the field, and asks for credentials', async () => {
    const cursor = (await page('status=queued&limit=1')).next_cursor!;
    const cases: [string, string][] = [
      ['', 'status'],
      ['status=finished', 'status'],
      ['status=queued&limit=0', 'limit'],
      ['status=queued&limit=101', 'limit'],
      ['status=queued&limit=ten', 'limit'],
      ['status=queued&priority=7', 'priority'],
      ['status=queued&type=no%20spaces', 'type'],
      ['status=queued&colour=red', 'colour'],
      ['status=queued&cursor=not-a-cursor', 'cursor'],
      ['status=queued&type=echo&type=audio', 'type'],
      [`status=queued&type=echo&cursor=${encodeURIComponent(cursor)}`, 'cursor'],
      [`status=dead&cursor=${encodeURIComponent(cursor)}`, 'cursor'],
    ];
    for (const [query, field] of cases) {
      const res = await get(`/tasks?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json(), query).toMatchObject({ error: 'validation_failed', fields: [expect.objectContaining({ field })] });
    }
    expect((await logic.app.inject({ method: 'GET', url: '/tasks?status=queued' })).statusCode).toBe(401);
  });
});

describe('on a sharded queue (REDIS_QUEUE_SHARDS=3)', () => {
  let sharded: { app: Awaited<ReturnType<typeof buildLogicApp>>; queue: TaskQueue; redis: Redis };

  beforeAll(async () => {
    const client = createRedis({ host: '127.0.0.1', port: redis.port, db: 0, password: '' }, 'api', 'test-sharded-logic');
    await client.connect();
    const queue = new TaskQueue(client, queueKeys({ keyPrefix: uniquePrefix(), shards: 3 }), { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
    const app = await buildLogicApp({ queue, redis: client, credentials: AUTH, defaultPriority: 3, bodyLimit: 1024 * 1024, taskTypes: LOGIC_TASK_TYPES, log: silentLogger });
    sharded = { app, queue, redis: client };
  });
  afterAll(async () => {
    await sharded?.app.close();
    sharded?.redis.disconnect();
  });

  it('a batch is one enqueue call per shard, and a search walks every shard once, across page boundaries', async () => {
    const calls = async () => {
      const stats = await sharded.redis.info('commandstats');
      return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const send = (n: number) =>
      sharded.app.inject({
        method: 'POST',
        url: '/generate/batch',
        headers: { authorization: authHeader, 'content-type': 'application/json' },
        payload: JSON.stringify({ tasks: Array.from({ length: n }, (_, i) => ({ type: 'echo', payload: { i }, priority: 1 + (i % 5) })) }),
      });
    expect((await send(3)).statusCode).toBe(202); // loads the script on this Redis
    const before = await calls();
    const res = await send(30);
    expect(res.statusCode).toBe(202);
    expect(await calls()).toBe(before + 3);
    const ids = [...(res.json() as { tasks: { task_id: string }[] }).tasks.map((t) => t.task_id)];
    expect(new Set(ids.map((id) => id.split('-')[0]))).toEqual(new Set(['0', '1', '2']));

    const found: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await sharded.app.inject({ method: 'GET', url: `/tasks?status=queued&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: { authorization: authHeader } });
      expect(page.statusCode).toBe(200);
      const body = page.json() as { tasks: { task_id: string }[]; next_cursor: string | null };
      found.push(...body.tasks.map((t) => t.task_id));
      cursor = body.next_cursor;
    } while (cursor);
    expect(found).toHaveLength(33);
    expect(new Set(found).size).toBe(33);
    expect(found.filter((id) => ids.includes(id))).toHaveLength(30);
    const p5 = await sharded.app.inject({ method: 'GET', url: '/tasks?status=queued&priority=5&limit=100', headers: { authorization: authHeader } });
    expect((p5.json() as { tasks: { priority: number }[] }).tasks.map((t) => t.priority)).toEqual(Array(6).fill(5));
  });
});
