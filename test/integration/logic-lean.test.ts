// Logic's per-request shortcuts keep behaviour: requests of one event-loop turn share one enqueue
// script call yet keep their order (ids and per-room seq), and a remembered Authorization header
// never lets another one through. Real HTTP against a real Redis.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';

let redis: TestRedis;
let logic: Awaited<ReturnType<typeof testLogic>>;
let http: Pool;

beforeAll(async () => {
  redis = await startTestRedis();
  logic = await testLogic(redis.port);
  await logic.app.listen({ host: '127.0.0.1', port: 0 });
  http = new Pool(`http://127.0.0.1:${(logic.app.server.address() as AddressInfo).port}`, { connections: 64 });
});
afterAll(async () => {
  await http?.close();
  await logic.close();
  await redis.close();
});

async function send(body: unknown, authorization = authHeader) {
  const res = await http.request({ path: '/logic/send', method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function scriptCalls(): Promise<number> {
  const info = await logic.redis.info('commandstats');
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('enqueue merging', () => {
  it('a burst to one room is queued complete, in arrival order, with consecutive seq, in one enqueue script call', async () => {
    const n = 60;
    // Open every connection first (and load the script), so the burst is requests only.
    await Promise.all(Array.from({ length: n }, () => send({ roomId: 'warm_room', userId: 'warm', messages: [{ content: 'warm-up' }] })));
    const before = await scriptCalls();
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => send({ roomId: 'burst_room', userId: 'u', messages: [{ content: `m${i}` }] })));
    const calls = (await scriptCalls()) - before;
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(202));
    const ids = answers.map((a) => String(a.body.task_id));
    expect(new Set(ids).size).toBe(n);
    // Task ids grow with arrival; seq must follow the same order, with no gap or repeat.
    const hashes = await Promise.all(ids.map((id) => logic.redis.hgetall(logic.keys.task(id))));
    const byId = ids.map((id, i) => ({ id, seq: Number(hashes[i]!.seq) })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const seqs = byId.map((t) => t.seq);
    expect(seqs).toEqual(Array.from({ length: n }, (_, i) => seqs[0]! + i));
    // The client (this process) writes all requests before logic's next poll, so they arrive in
    // one event-loop turn: one script call (2 allows a split turn). Unmerged, the first two
    // requests each went alone and the rest followed: 3 or more.
    expect(calls).toBeLessThanOrEqual(2);
  });
});

describe('remembered Authorization header', () => {
  it('accepts the remembered header again and still refuses a wrong one after it', async () => {
    const ok = { roomId: 'auth_room', userId: 'u', messages: [{ content: 'x' }] };
    expect((await send(ok)).status).toBe(202);
    expect((await send(ok)).status).toBe(202);
    const wrong = `Basic ${Buffer.from('admin:passwore').toString('base64')}`;
    const refused = await send(ok, wrong);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: 'unauthorized' });
    // A prefix of the accepted header is not accepted either.
    expect((await send(ok, authHeader.slice(0, -2))).status).toBe(401);
    expect((await send(ok)).status).toBe(202);
  });
});
