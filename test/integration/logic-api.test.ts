// The task API over fastify's inject(), against a real Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';

let redis: TestRedis;
let logic: Awaited<ReturnType<typeof testLogic>>;

beforeAll(async () => {
  redis = await startTestRedis();
  logic = await testLogic(redis.port, { bodyLimit: 4096 });
});
afterAll(async () => {
  await logic.close();
  await redis.close();
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  logic.app.inject({
    method: 'POST',
    url: '/generate',
    headers: { authorization: authHeader, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function queued(): Promise<number> {
  return logic.redis.zcard(logic.keys.tasks.queue);
}

describe('POST /generate', () => {
  it('accepts a task: 202 with id, status and priority; the hash and ZSET hold it', async () => {
    const res = await post({ type: 'echo', payload: { hello: 'world' }, priority: 5, hook_url: 'https://example.com/hook' });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toEqual({ task_id: expect.stringMatching(/^\d{17}$/), status: 'queued', priority: 5 });
    const hash = await logic.redis.hgetall(logic.keys.task(body.task_id));
    expect(hash).toMatchObject({ type: 'echo', priority: '5', status: 'queued', payload: '{"hello":"world"}', hook_url: 'https://example.com/hook' });
    expect(hash.request_id).toBe(res.headers['x-request-id']);
    expect(await logic.redis.zscore(logic.keys.tasks.queue, body.task_id)).toBe(String(Number(hash.created_at) * 1));
  });

  it('gives every request its own id (or keeps a valid X-Request-Id) and stores it on the task', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(String((await post({ type: 'echo' })).headers['x-request-id']));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{12,}$/);
    const given = await post({ type: 'echo' }, { 'x-request-id': 'trace-abc.123' });
    expect(given.headers['x-request-id']).toBe('trace-abc.123');
    expect(await logic.redis.hget(logic.keys.task(given.json().task_id), 'request_id')).toBe('trace-abc.123');
    const bad = await post({ type: 'echo' }, { 'x-request-id': 'has spaces and ;' });
    expect(bad.headers['x-request-id']).not.toBe('has spaces and ;');
  });

  it('uses DEFAULT_PRIORITY when none is given', async () => {
    const res = await post({ type: 'echo' });
    expect(res.json().priority).toBe(3);
  });

  it('returns the same task for a repeated Idempotency-Key and refuses the key with another body', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const first = await post({ type: 'echo', payload: { a: 1, b: 2 } }, headers);
    const again = await post({ payload: { b: 2, a: 1 }, type: 'echo' }, headers);
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.json().task_id).toBe(first.json().task_id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const before = await queued();
    const other = await post({ type: 'echo', payload: { a: 2 } }, headers);
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ error: 'idempotency_key_reused', task_id: first.json().task_id });
    expect(await queued()).toBe(before);
  });

  const bad: [string, unknown, number, string][] = [
    ['priority above 5', { type: 'echo', priority: 6 }, 400, 'priority'],
    ['priority below 1', { type: 'echo', priority: 0 }, 400, 'priority'],
    ['fractional priority', { type: 'echo', priority: 2.5 }, 400, 'priority'],
    ['priority as a string', { type: 'echo', priority: '5' }, 400, 'priority'],
    ['unknown type', { type: 'transcode' }, 400, 'type'],
    ['no type and no audio', { payload: {} }, 400, 'type'],
    ['hook_url not a URL', { type: 'echo', hook_url: 'not a url' }, 400, 'hook_url'],
    ['hook_url with another scheme', { type: 'echo', hook_url: 'ftp://example.com/x' }, 400, 'hook_url'],
    ['hook_url with credentials', { type: 'echo', hook_url: 'https://u:p@example.com/x' }, 400, 'hook_url'],
    ['audio not http(s)', { audio: 'file:///etc/passwd' }, 400, 'audio'],
    ['an unknown field', { type: 'echo', prority: 5 }, 400, 'prority'],
    ['user_id with spaces', { type: 'echo', user_id: 'a b' }, 400, 'user_id'],
    ['a JSON array', [1, 2], 400, 'body'],
    ['a JSON string', '"hello"', 400, 'body'],
    ['malformed JSON', '{"type": "echo",', 400, 'body'],
    ['oversized body', { type: 'echo', payload: 'x'.repeat(5000) }, 413, ''],
  ];
  it.each(bad)('%s → %i naming %s, nothing enqueued', async (_name, body, status, field) => {
    const before = await queued();
    const res = await post(body);
    expect(res.statusCode).toBe(status);
    const json = res.json();
    expect(typeof json.error).toBe('string');
    expect(typeof json.message).toBe('string');
    if (field) {
      expect(json.fields.map((f: { field: string }) => f.field)).toContain(field);
      expect(json.message).toContain(field);
    }
    expect(await queued()).toBe(before);
  });

  it('refuses a body that is not JSON with 415', async () => {
    const res = await logic.app.inject({
      method: 'POST', url: '/generate', headers: { authorization: authHeader, 'content-type': 'text/plain' }, payload: 'type=echo',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error).toBe('unsupported_media_type');
  });

  it('refuses a bad Idempotency-Key header, naming it', async () => {
    const res = await post({ type: 'echo' }, { 'idempotency-key': 'x'.repeat(300) });
    expect(res.statusCode).toBe(400);
    expect(res.json().fields[0].field).toBe('idempotency-key');
  });

  it('requires Basic auth: missing or wrong credentials get 401 and nothing is queued', async () => {
    const before = await queued();
    const none = await logic.app.inject({ method: 'POST', url: '/generate', payload: { type: 'echo' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Basic');
    const wrong = await logic.app.inject({
      method: 'POST', url: '/generate', payload: { type: 'echo' },
      headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toBe('unauthorized');
    expect(await queued()).toBe(before);
  });
});

describe('GET and DELETE /tasks/:id', () => {
  it('shows a task, cancels it while queued, and refuses to cancel twice or a finished one', async () => {
    const { task_id } = (await post({ type: 'echo', payload: { n: 1 }, priority: 2 })).json();
    const shown = await logic.app.inject({ method: 'GET', url: `/tasks/${task_id}`, headers: { authorization: authHeader } });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({ task_id, type: 'echo', status: 'queued', priority: 2, payload: { n: 1 }, attempts: 0, result: null });
    expect(shown.json().created_at).toMatch(/^\d{4}-\d\d-\d\dT/);

    const del = await logic.app.inject({ method: 'DELETE', url: `/tasks/${task_id}`, headers: { authorization: authHeader } });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toEqual({ task_id, status: 'canceled' });
    expect(await logic.redis.zscore(logic.keys.tasks.queue, task_id)).toBeNull();

    const again = await logic.app.inject({ method: 'DELETE', url: `/tasks/${task_id}`, headers: { authorization: authHeader } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'not_cancelable', status: 'canceled' });
  });

  it('404 for an unknown id, 400 naming id for a malformed one', async () => {
    const missing = await logic.app.inject({ method: 'GET', url: '/tasks/000000999999', headers: { authorization: authHeader } });
    expect(missing.statusCode).toBe(404);
    const malformed = await logic.app.inject({ method: 'GET', url: '/tasks/abc', headers: { authorization: authHeader } });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().fields[0].field).toBe('id');
    // Both forms a task id takes: plain, and with its shard in front (REDIS_QUEUE_SHARDS > 1).
    expect(JSON.stringify(malformed.json().fields[0])).toContain('000000000017 or 2-000000000017');
    const sharded = await logic.app.inject({ method: 'GET', url: '/tasks/2-000000999999', headers: { authorization: authHeader } });
    expect(sharded.statusCode).toBe(404);
  });
});

describe('GET /health', () => {
  it('reports Redis and the queue depths per state and priority, without auth', async () => {
    await post({ type: 'echo', priority: 4 });
    const res = await logic.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ok');
    expect(body.redis).toMatchObject({ status: 'up', version: expect.stringMatching(/^\d+\.\d+/) });
    expect(typeof body.redis.ping_ms).toBe('number');
    expect(body.queues[logic.keys.tasks.queue]).toMatchObject({ queued: expect.any(Number), processing: 0, delayed: 0, dead: 0 });
    expect(body.priorities['4']).toBeGreaterThanOrEqual(1);
    expect(Object.keys(body.priorities).sort()).toEqual(['1', '2', '3', '4', '5']);
  });
});

describe('with Redis down', () => {
  it('answers 503, never 202, and /health says 503', async () => {
    const down = await testLogic(1); // nothing listens on port 1
    try {
      const res = await down.app.inject({
        method: 'POST', url: '/generate', headers: { authorization: authHeader }, payload: { type: 'echo' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toBe('queue_unavailable');
      const health = await down.app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json().redis.status).toBe('down');
    } finally {
      await down.close();
    }
  });
});
