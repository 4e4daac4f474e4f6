// GET /tasks?status=queued finds grouped tasks too: a grouped task waits in its group's own ZSET
// (docs/queue.md, "Groups"), not in the queue, so the search walks those sets after the queue.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';

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

type Page = { tasks: { task_id: string; group: string | null; status: string }[]; next_cursor: string | null };

async function all(query: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await logic.app.inject({ method: 'GET', url: `/tasks?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: { authorization: authHeader } });
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json() as Page;
    for (const t of page.tasks) expect(t.status).toBe('queued');
    ids.push(...page.tasks.map((t) => t.task_id));
    cursor = page.next_cursor;
  } while (cursor);
  expect(new Set(ids).size).toBe(ids.length);
  return ids;
}

it('lists queued tasks of every group and of none, each once, and filters by group', async () => {
  const tasks = [
    ...Array.from({ length: 7 }, (_, n) => ({ type: 'echo', payload: { n }, group: 'tenant_a' })),
    ...Array.from({ length: 4 }, (_, n) => ({ type: 'echo', payload: { n }, group: 'tenant_b' })),
    ...Array.from({ length: 3 }, (_, n) => ({ type: 'echo', payload: { n } })),
  ];
  const res = await logic.app.inject({ method: 'POST', url: '/generate/batch', headers: { authorization: authHeader, 'content-type': 'application/json' }, payload: JSON.stringify({ tasks }) });
  expect(res.statusCode, res.body).toBe(202);
  const ids = (res.json() as { tasks: { task_id: string }[] }).tasks.map((t) => t.task_id);

  expect((await all('status=queued&limit=3')).sort()).toEqual([...ids].sort());
  expect((await all('status=queued&group=tenant_a&limit=2')).sort()).toEqual(ids.slice(0, 7).sort());
  expect((await all('status=queued&group=tenant_b')).sort()).toEqual(ids.slice(7, 11).sort());
  expect(await all('status=queued&group=nobody')).toEqual([]);
});

it('lists scheduled (delayed) tasks by their start, soonest first', async () => {
  const post = (body: unknown) => logic.app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const later = (await post({ type: 'echo', delay_ms: 7_200_000 })).json() as { task_id: string };
  const sooner = (await post({ type: 'echo', delay_ms: 3_600_000, group: 'tenant_a' })).json() as { task_id: string };
  const res = await logic.app.inject({ method: 'GET', url: '/tasks?status=scheduled', headers: { authorization: authHeader } });
  expect(res.statusCode, res.body).toBe(200);
  const page = res.json() as Page;
  expect(page.tasks.map((t) => t.task_id)).toEqual([sooner.task_id, later.task_id]);
  expect(page.tasks.map((t) => t.status)).toEqual(['scheduled', 'scheduled']);
  expect(page.tasks[0]!.group).toBe('tenant_a');
});

it('leaves finished push messages out of the finished index (their record is the room history), not other tasks', async () => {
  const queue = logic.queue;
  const push = await queue.enqueueOne({ type: 'push', priority: 3, payload: JSON.stringify({ mode: 'room', roomId: 'hall', message: { content: 'hi' } }) });
  const echo = await queue.enqueueOne({ type: 'echo', priority: 3, payload: '{}' });
  const claimed = (await queue.tasks.claim(10, 60_000)).tasks.filter((t) => t.id === push.id || t.id === echo.id);
  expect(claimed).toHaveLength(2);
  expect(await queue.tasks.settle(claimed.map((t) => ({ id: t.id, token: t.token, outcome: 'completed' as const })))).toEqual([true, true]);
  const finished = await queue.redis.zrange(queue.keys.tasks.finished, '0', '-1');
  expect(finished).toContain(echo.id);
  expect(finished).not.toContain(push.id);
  expect((await queue.get(push.id))?.status).toBe('completed');
});
