// POST /generate/batch (issue 13 item 5) over fastify's inject(), against a real Redis: each item
// validated as /generate validates a body, valid ones queued in one script call, one answer per item.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const batch = (body: unknown, headers: Record<string, string> = {}) =>
  logic.app.inject({
    method: 'POST',
    url: '/generate/batch',
    headers: { authorization: authHeader, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** How many enqueue script calls Redis ran: EVALSHA plus EVAL (the NOSCRIPT fallback). */
async function scriptCalls(): Promise<number> {
  const stats = await logic.redis.info('commandstats');
  let calls = 0;
  for (const m of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

type Answer = { accepted: number; rejected: number; tasks: Record<string, unknown>[] };

describe('POST /generate/batch', () => {
  it('queues the valid items and names the errors of the others, in order (207)', async () => {
    const res = await batch({
      tasks: [
        { type: 'echo', payload: { n: 0 }, priority: 5 },
        { type: 'echo', priority: 9 },
        { type: 'nope' },
        { type: 'echo', payload: { n: 3 }, timeout_ms: 5000 },
        'not an object',
        { type: 'echo', colour: 'red' },
        { type: 'push', user_id: 'u1', payload: { text: 'hi' } },
      ],
    });
    expect(res.statusCode).toBe(207);
    const body = res.json() as Answer;
    expect(body.accepted).toBe(3);
    expect(body.rejected).toBe(4);
    expect(body.tasks.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(body.tasks[0]).toEqual({ index: 0, task_id: expect.stringMatching(/^\d{17}$/), status: 'queued', priority: 5 });
    expect(body.tasks[1]).toMatchObject({ index: 1, error: 'validation_failed', fields: [{ field: 'priority', message: 'priority must be a whole number from 1 to 5' }] });
    expect(body.tasks[2]).toMatchObject({ error: 'validation_failed', fields: [{ field: 'type', message: expect.stringContaining('type must be one of') }] });
    expect(body.tasks[3]).toMatchObject({ task_id: expect.any(String), status: 'queued', priority: 3 });
    expect(body.tasks[4]).toMatchObject({ error: 'validation_failed', fields: [{ field: 'task', message: 'each task must be a JSON object' }] });
    expect(body.tasks[5]).toMatchObject({ error: 'validation_failed', fields: [{ field: 'colour', message: 'colour is not a known field' }] });
    expect(body.tasks[6]).toMatchObject({ task_id: expect.any(String), status: 'queued' });

    // Stored exactly as /generate stores them, in the order sent.
    const ids = [0, 3, 6].map((i) => body.tasks[i]!.task_id as string);
    expect([...ids].sort()).toEqual(ids);
    expect(await logic.redis.hgetall(logic.keys.task(ids[1]!))).toMatchObject({ type: 'echo', payload: '{"n":3}', timeout_ms: '5000', status: 'queued', priority: '3' });
    expect(await logic.redis.hget(logic.keys.task(ids[2]!), 'payload')).toContain('"userIds":["u1"]');
  });

  it('answers 202 when every item is accepted, and replays items by their idempotency_key', async () => {
    const first = await batch({ tasks: [{ type: 'echo', payload: { a: 1 }, idempotency_key: 'batch-a' }, { type: 'echo', payload: { b: 1 } }] });
    expect(first.statusCode).toBe(202);
    const firstBody = first.json() as Answer;
    expect(firstBody).toMatchObject({ accepted: 2, rejected: 0 });

    const again = await batch({
      tasks: [
        { type: 'echo', payload: { a: 1 }, idempotency_key: 'batch-a' },
        { type: 'echo', payload: { a: 2 }, idempotency_key: 'batch-a' },
        { type: 'echo', idempotency_key: '' },
      ],
    });
    expect(again.statusCode).toBe(207);
    const body = again.json() as Answer;
    expect(body.tasks[0]).toEqual({ index: 0, task_id: firstBody.tasks[0]!.task_id, status: 'queued', priority: 3, replayed: true });
    expect(body.tasks[1]).toMatchObject({ error: 'idempotency_key_reused', task_id: firstBody.tasks[0]!.task_id });
    expect(body.tasks[2]).toMatchObject({ error: 'validation_failed', fields: [{ field: 'idempotency_key', message: 'idempotency_key must not be empty' }] });
  });

  it('answers a delayed item as scheduled, as /generate does', async () => {
    const res = await batch({ tasks: [{ type: 'echo', delay_ms: 3_600_000 }, { type: 'echo' }] });
    expect(res.statusCode, res.body).toBe(202);
    const answer = res.json() as Answer;
    expect(answer.tasks.map((t) => t.status)).toEqual(['scheduled', 'queued']);
    expect((await logic.queue.get(String(answer.tasks[0]!.task_id)))?.status).toBe('scheduled');
  });

  it('refuses an empty batch, a non-array, a missing list and one over BATCH_MAX, naming tasks', async () => {
    const cases: [unknown, string][] = [
      [{ tasks: [] }, 'tasks must hold at least one task'],
      [{ tasks: { type: 'echo' } }, 'tasks must be an array of tasks'],
      [{}, 'tasks must be an array of tasks'],
      [{ tasks: Array.from({ length: 1001 }, () => ({ type: 'echo' })) }, 'tasks holds at most 1000 tasks per request (BATCH_MAX)'],
    ];
    const before = await logic.redis.zcard(logic.keys.tasks.queue);
    for (const [body, message] of cases) {
      const res = await batch(body);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'validation_failed', fields: [{ field: 'tasks', message }] });
    }
    expect((await batch({ tasks: [{ type: 'echo' }], extra: 1 })).json()).toMatchObject({ error: 'validation_failed', fields: [{ field: 'extra' }] });
    expect((await batch({ tasks: [{ type: 'echo' }] }, { authorization: 'Basic eDp5' })).statusCode).toBe(401);
    expect(await logic.redis.zcard(logic.keys.tasks.queue)).toBe(before);
  });

  it('queues 1,000 tasks with one enqueue script call, in the order sent', async () => {
    const before = await logic.redis.zcard(logic.keys.tasks.queue);
    const calls = await scriptCalls();
    const res = await batch({ tasks: Array.from({ length: 1000 }, (_, n) => ({ type: 'echo', payload: { n }, priority: 2 })) });
    expect(res.statusCode).toBe(202);
    expect(await scriptCalls()).toBe(calls + 1);
    const body = res.json() as Answer;
    expect(body).toMatchObject({ accepted: 1000, rejected: 0 });
    expect(await logic.redis.zcard(logic.keys.tasks.queue)).toBe(before + 1000);
    const ids = body.tasks.map((t) => t.task_id as string);
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    // Same priority, same millisecond or later: they pop in the order sent.
    const queuedOrder = (await logic.redis.zrange(logic.keys.tasks.queue, '0', '-1')).filter((id) => ids.includes(id));
    expect(queuedOrder).toEqual(ids);
    const payloads = await Promise.all([0, 499, 999].map((n) => logic.redis.hget(logic.keys.task(ids[n]!), 'payload')));
    expect(payloads).toEqual(['{"n":0}', '{"n":499}', '{"n":999}']);
  });
});
