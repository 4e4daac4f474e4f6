// Hostile and malformed HTTP against a listening logic (real sockets, real Redis): every error
// the API can answer comes from the catalogue (src/logic/errors.ts), slow bodies time out,
// deep JSON is refused at parse time, ids are bounded, messages name the field and the limit.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { buildLogicApp, type LogicDeps } from '../../src/logic/app.ts';
import { API_ERRORS, type ApiErrorCode } from '../../src/logic/errors.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import { BullmqBackend } from '../../src/queue/backends/bullmq.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { AUTH, authHeader } from '../helpers/logic.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { testReplicationWait } from '../helpers/redis-sentinel.ts';

const REQUEST_TIMEOUT_MS = 1000;
const BODY_LIMIT = 64 * 1024;

let redis: TestRedis;
const clients: Redis[] = [];
const apps: FastifyInstance[] = [];
let queue: TaskQueue;
/** The main logic: Redis engine, no AUTH_SECRET. */
let base: string;
let port: number;
/** Logic with QUEUE_BACKEND=bullmq. */
let bullBase: string;
/** Logic whose Redis is not there. */
let downBase: string;
/** Logic that waits for one replica on a Redis that has none. */
let unreplicatedBase: string;

async function listenLogic(redisPort: number, extra: Partial<LogicDeps> = {}, backend?: 'bullmq', waitReplicas = 0): Promise<{ url: string; queue: TaskQueue }> {
  const target = { host: '127.0.0.1', port: redisPort, db: 0, password: '' };
  const api = createRedis(target, 'api', 'hostile-logic');
  api.on('error', () => {});
  clients.push(api);
  await api.connect().catch(() => {});
  const replication = waitReplicas ? await testReplicationWait(redisPort, waitReplicas, 50) : undefined;
  if (replication) clients.push(replication.redis);
  const q = new TaskQueue(api, queueKeys({ keyPrefix: uniquePrefix() }), { retentionSeconds: 3600, idempotencyTtlSeconds: 600, ...(replication ? { replication } : {}) });
  const app = await buildLogicApp({
    queue: q,
    redis: api,
    credentials: AUTH,
    defaultPriority: 3,
    bodyLimit: BODY_LIMIT,
    taskTypes: LOGIC_TASK_TYPES,
    log: silentLogger,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    ...(backend
      ? {
          backend: new BullmqBackend(q, () => {
            const c = createRedis(target, 'command', 'hostile-bull');
            clients.push(c);
            return c;
          }, { queueName: 'hostile', maxAttempts: 1, backoffMs: 10 }),
        }
      : {}),
    ...extra,
  });
  apps.push(app);
  return { url: await app.listen({ host: '127.0.0.1', port: 0 }), queue: q };
}

beforeAll(async () => {
  redis = await startTestRedis();
  const main = await listenLogic(redis.port);
  base = main.url;
  queue = main.queue;
  port = Number(new URL(base).port);
  bullBase = (await listenLogic(redis.port, {}, 'bullmq')).url;
  downBase = (await listenLogic(1)).url; // nothing listens on port 1
  unreplicatedBase = (await listenLogic(redis.port, {}, undefined, 1)).url; // REDIS_WAIT_REPLICAS=1, and the Redis has none
});
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const c of clients) c.disconnect();
  await redis.close();
});

interface Answer {
  status: number;
  headers: Headers | Record<string, string>;
  body: Record<string, unknown>;
}

async function request(url: string, init: RequestInit & { json?: unknown; auth?: boolean } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (init.auth !== false && !('authorization' in headers)) headers.authorization = authHeader;
  if (init.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    init.body = typeof init.json === 'string' ? init.json : JSON.stringify(init.json);
  }
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) };
}

/** Writes `text` on a fresh socket and reads the answer until the server closes it. */
function raw(text: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    // The server destroys the socket after answering (as Node does): a reset after the answer is expected.
    socket.on('error', () => {});
    socket.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = all.split('\r\n\r\n');
      const lines = (head ?? '').split('\r\n');
      const status = Number(lines[0]?.split(' ')[1]);
      const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      try {
        resolve({ status, headers, body: JSON.parse(rest.join('\r\n\r\n')) });
      } catch {
        reject(new Error(`not a JSON answer: ${all.slice(0, 300)}`));
      }
    });
    socket.write(text);
  });
}

const nested = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

describe('every error body comes from the catalogue', () => {
  const provoke: Record<ApiErrorCode, () => Promise<Answer>> = {
    bad_request: () => raw('NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n'),
    validation_failed: () => request(`${base}/generate`, { method: 'POST', json: { type: 'echo', priority: 9 } }),
    invalid_json: () => request(`${base}/generate`, { method: 'POST', json: '{"type":' }),
    json_too_deep: () => request(`${base}/generate`, { method: 'POST', json: `{"type":"echo","payload":${nested(200)}}` }),
    unauthorized: () => request(`${base}/generate`, { method: 'POST', json: { type: 'echo' }, auth: false }),
    not_found: () => request(`${base}/no/such/route`),
    request_timeout: () => raw(`POST /generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${authHeader}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":`),
    not_cancelable: async () => {
      const { body } = await request(`${base}/generate`, { method: 'POST', json: { type: 'echo' } });
      await request(`${base}/tasks/${body.task_id}`, { method: 'DELETE' });
      return request(`${base}/tasks/${body.task_id}`, { method: 'DELETE' });
    },
    payload_too_large: () => request(`${base}/generate`, { method: 'POST', json: { type: 'echo', payload: 'x'.repeat(BODY_LIMIT) } }),
    uri_too_long: () => request(`${base}/tasks/${'1'.repeat(300)}`),
    unsupported_media_type: () => request(`${base}/generate`, { method: 'POST', body: 'type=echo', headers: { 'content-type': 'text/plain' } }),
    idempotency_key_reused: async () => {
      await request(`${base}/generate`, { method: 'POST', json: { type: 'echo', payload: 1 }, headers: { 'idempotency-key': 'walk' } });
      return request(`${base}/generate`, { method: 'POST', json: { type: 'echo', payload: 2 }, headers: { 'idempotency-key': 'walk' } });
    },
    headers_too_large: () => raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`),
    internal: async () => {
      // A task key of the wrong Redis type: the read fails in a way no route expects.
      await redis.client().set(queue.keys.task('000000000042'), 'not a hash');
      return request(`${base}/tasks/000000000042`);
    },
    not_supported: () => request(`${bullBase}/tasks/000000000001`, { method: 'DELETE' }),
    queue_unavailable: () => request(`${downBase}/generate`, { method: 'POST', json: { type: 'echo' } }),
    not_replicated: () => request(`${unreplicatedBase}/generate`, { method: 'POST', json: { type: 'echo' } }),
    service_unavailable: () => request(`${base}/logic/token`, { method: 'POST', json: { userId: 'u1', roomId: 'r1' } }),
  };

  for (const code of Object.keys(API_ERRORS) as ApiErrorCode[]) {
    it(`${code}: ${API_ERRORS[code]} with { error: "${code}", message }`, async () => {
      expect(provoke[code], `no provocation for ${code}`).toBeTypeOf('function');
      const answer = await provoke[code]();
      expect(answer.status).toBe(API_ERRORS[code]);
      expect(answer.body.error).toBe(code);
      expect(answer.body.message).toEqual(expect.any(String));
      expect((answer.body.message as string).length).toBeGreaterThan(5);
      expect(Object.keys(answer.body)).not.toContain('statusCode'); // fastify's own shape
    });
  }

  it('an undecodable URL is a catalogue 400 too', async () => {
    const answer = await request(`${base}/tasks/%E0%A4%A`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('bad_request');
  });
});

describe('Authorization', () => {
  it('missing or malformed → 401 unauthorized with a Basic challenge', async () => {
    for (const headers of [{}, { authorization: 'Bearer abc' }, { authorization: 'Basic !!!' }] as Record<string, string>[]) {
      const answer = await request(`${base}/generate`, { method: 'POST', json: { type: 'echo' }, auth: false, headers });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: 'unauthorized', message: expect.stringMatching(/Authorization: Basic/) });
      expect((answer.headers as Headers).get('www-authenticate')).toMatch(/^Basic realm="pushline"/);
    }
    const wrong = await request(`${base}/generate`, { method: 'POST', json: { type: 'echo' }, headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` } });
    expect(wrong.body).toMatchObject({ error: 'unauthorized', message: 'invalid API credentials' });
  });
});

describe('slow requests', () => {
  it('a body that never finishes gets 408 from the catalogue and the socket is closed', async () => {
    const answer = await raw(`POST /demo/api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":`);
    expect(answer.status).toBe(408);
    expect(answer.body).toEqual({ error: 'request_timeout', message: expect.stringContaining(`${REQUEST_TIMEOUT_MS} ms (HTTP_REQUEST_TIMEOUT_MS)`) });
  });

  it('headers that never finish get 408 too', async () => {
    const answer = await raw('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
    expect(answer.status).toBe(408);
    expect(answer.body.error).toBe('request_timeout');
  });
});

describe('deeply nested JSON', () => {
  it('is refused with 400 naming the limit on every JSON route, Redis untouched', async () => {
    const deep = nested(5000);
    for (const [url, body] of [
      ['/generate', `{"type":"echo","payload":${deep}}`],
      ['/generate', `{"type":"push","room_id":"r1","payload":${deep}}`],
      ['/logic/broadcast', `{"message":${deep}}`],
      ['/logic/push', `{"userIds":["u1"],"message":${deep}}`],
    ] as const) {
      const answer = await request(`${base}${url}`, { method: 'POST', json: body });
      expect(answer.status, url).toBe(400);
      expect(answer.body).toMatchObject({ error: 'json_too_deep', message: expect.stringContaining('more than 64 levels deep (JSON_MAX_DEPTH)') });
    }
  });

  it('brackets inside strings do not count; ordinary nesting is accepted', async () => {
    const ok = await request(`${base}/generate`, { method: 'POST', json: { type: 'echo', payload: { text: '[[[[{{{{'.repeat(100), deep: JSON.parse(nested(60)) } } });
    expect(ok.status).toBe(202);
  });
});

describe('field messages name the field and the real limit', () => {
  const cases: [string, string, unknown, RegExp][] = [
    ['1,001 userIds', '/logic/push', { userIds: Array.from({ length: 1001 }, (_, i) => `u${i}`), message: { t: 1 } }, /^userIds may list at most 1000 users$/],
    ['a 4,001-character message', '/logic/send', { roomId: 'r1', userId: 'u1', messages: [{ content: 'x'.repeat(4001) }] }, /^messages\.0\.content: messages\[\]\.content must be at most 4000 characters$/],
    ['an empty message', '/logic/send', { roomId: 'r1', userId: 'u1', messages: [{ content: '' }] }, /messages\[\]\.content must not be empty/],
    ['no userId', '/logic/send', { roomId: 'r1', messages: [{ content: 'hi' }] }, /^userId is required$/],
    ['userIds not an array', '/logic/push', { userIds: 'u1', message: {} }, /^userIds must be an array$/],
    ['101 messages', '/logic/send', { roomId: 'r1', userId: 'u1', messages: Array.from({ length: 101 }, () => ({ content: 'x' })) }, /messages may hold at most 100 messages/],
  ];
  for (const [what, url, body, message] of cases) {
    it(what, async () => {
      const answer = await request(`${base}${url}`, { method: 'POST', json: body });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('validation_failed');
      expect(answer.body.message).toMatch(message);
    });
  }
});

describe('ids and names are bounded (the identifier rule)', () => {
  const bodies: [string, string, string, RegExp][] = [
    ['a lone surrogate in roomId', '/logic/send', '{"roomId":"r\\ud800","userId":"u1","messages":[{"content":"hi"}]}', /roomId may only contain letters, digits/],
    ['a 2,000-character roomId', '/logic/send', JSON.stringify({ roomId: 'r'.repeat(2000), userId: 'u1', messages: [{ content: 'hi' }] }), /roomId must be at most 128 characters/],
    ['a control character in userName', '/logic/send', JSON.stringify({ roomId: 'r1', userId: 'u1', userName: 'a\u0007b', messages: [{ content: 'hi' }] }), /userName must not contain control characters/],
    ['a lone surrogate in userName', '/logic/send', '{"roomId":"r1","userId":"u1","userName":"a\\udc00","messages":[{"content":"hi"}]}', /userName must be valid UTF-8/],
    ['a lone surrogate in a token userName', '/logic/token', '{"roomId":"r1","userId":"u1","userName":"\\ud83d"}', /userName must be valid UTF-8/],
    ['a 65-character userName', '/logic/send', JSON.stringify({ roomId: 'r1', userId: 'u1', userName: 'n'.repeat(65), messages: [{ content: 'hi' }] }), /userName must be at most 64 characters/],
  ];
  for (const [what, url, body, message] of bodies) {
    it(what, async () => {
      const answer = await request(`${base}${url}`, { method: 'POST', json: body });
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: 'validation_failed', message: expect.stringMatching(message) });
    });
  }

  it('a userName with emoji and CJK is fine', async () => {
    const answer = await request(`${base}/logic/send`, { method: 'POST', json: { roomId: 'r1', userId: 'u1', userName: '主播 😀', messages: [{ content: 'hi' }] } });
    expect(answer.status).toBe(202);
  });
});

describe('message id and seq are the pipeline\'s own', () => {
  const reserved: [string, string, unknown, string][] = [
    ['message.id on /logic/broadcast', '/logic/broadcast', { message: { id: 'same', text: 'hi' } }, 'message.id is reserved'],
    ['message.seq on /logic/push', '/logic/push', { userIds: ['u1'], message: { seq: 5 } }, 'message.seq is reserved'],
    ['payload.seq on a /generate push', '/generate', { type: 'push', room_id: 'r1', payload: { seq: 999999 } }, 'payload.seq is reserved'],
    ['payload.id on a /generate push', '/generate', { type: 'push', user_id: 'u1', payload: { id: 'x' } }, 'payload.id is reserved'],
  ];
  for (const [what, url, body, message] of reserved) {
    it(`${what} → 400`, async () => {
      const answer = await request(`${base}${url}`, { method: 'POST', json: body });
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: 'validation_failed', message: expect.stringContaining(message) });
    });
  }
});

describe('/health while Redis is down', () => {
  it('says 503 with a status and a short reason, no client error text', async () => {
    const answer = await request(`${downBase}/health`, { auth: false });
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({ status: 'unavailable', backend: 'redis', redis: { status: 'down', reason: 'not connected to Redis' } });
  });
});
