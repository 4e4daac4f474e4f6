// Issue 11: room messages claimed together are delivered as one batch — one routing read per
// room per batch, one BroadcastRoom call per comet carrying all of them — and still arrive
// complete, in seq order, and are never lost or resent to a comet that already has them.
// Tasks are enqueued while no job runs, then a job starts: its claims take many tasks at once.
import { afterEach, beforeEach, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { loadCometDefinition, type ProtoMsg } from '../../src/comet/proto.ts';
import { startJob, type JobHandle } from '../../src/job/main.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages, type WsClient } from '../helpers/ws.ts';

let stack: PushStack;
let job: JobHandle | null = null;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  stack = await startPushStack(2);
  // The stack's own job is stopped: tasks wait in the queue until the test's job starts.
  await stack.job.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await job?.stop();
  job = null;
  await stack.close();
});

/** A job whose info lines are kept, as `pushline job` would print them. */
async function startLoggedJob(): Promise<{ job: JobHandle; lines: string[] }> {
  const lines: string[] = [];
  const log: Logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s).msg) });
  return { job: await startJob(stack.env, log), lines };
}

async function metric(port: number, name: string, label: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(label))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

async function sendMany(roomId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const res = await stack.post('/logic/send', { roomId, userId: 'host', messages: [{ content: `m${i}` }] });
    expect(res.statusCode).toBe(202);
    ids.push(res.json().task_id);
  }
  return ids;
}

const seqs = (c: WsClient) => serverMessages(c).map((m) => m.seq as number);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

it('300 messages to one room are delivered in batches: every viewer on both comets gets all of them, in seq order', async () => {
  const [a, b] = stack.comets;
  const viewers = [await stack.connect(a!, 'v1', 'big_room'), await stack.connect(a!, 'v2', 'big_room'), await stack.connect(b!, 'v3', 'big_room'), await stack.connect(b!, 'v4', 'big_room')];
  const ids = await sendMany('big_room', 300);
  const started = await startLoggedJob();
  job = started.job;

  await waitFor(() => viewers.every((v) => serverMessages(v).length >= 300), 'all 300 messages on every viewer', 60_000);
  for (const v of viewers) {
    expect(seqs(v)).toEqual(range(300));
    expect(serverMessages(v).map((m) => (m.messages as { content: string }[])[0]!.content)).toEqual(range(300).map((i) => `m${i}`));
  }
  for (const id of ids) expect((await stack.finished(id)).status).toBe('completed');
  const last = JSON.parse((await stack.finished(ids[299]!)).result!);
  expect(last).toMatchObject({ sent: 4, failed: 0, comet_nodes: 2, connections: 4 });

  // Batched: fewer routing reads and fewer gRPC calls than messages (unbatched: 300 and 600).
  const reads = await metric(job.metricsPort, 'redis_command_duration_seconds_count', 'command="get_room_connections"');
  const calls = await metric(job.metricsPort, 'grpc_calls_total', 'name="BroadcastRoom"');
  expect(reads).toBeGreaterThan(0);
  expect(reads).toBeLessThan(300);
  expect(calls).toBeLessThan(300);
  // A batch logs one summary line per room; the per-message seed lines are at debug.
  expect(started.lines.some((l) => /Room big_room: \d+ messages \(seq \d+\.\.\d+\) to 4 connections on 2 comet nodes in 2 gRPC calls: sent=\d+, failed=0/.test(l))).toBe(true);
  // …and nothing per message at info: neither the seed lines nor the job's `task <id> completed`.
  expect(started.lines.filter((l) => /^task \S+ completed$|^Room big_room has |Message distributed/.test(l))).toEqual([]);
  // History holds every message, in order.
  const history = await stack.client.xrange(routingKeys(stack.env.REDIS_KEY_PREFIX).roomHistory('big_room'), '-', '+');
  expect(history.map(([, f]) => Number(f[f.indexOf('seq') + 1]))).toEqual(range(300));
  // Each entry as the comet reads it back for recovery; the stream expires (ROOM_HISTORY_TTL).
  expect(history[0]![1]).toEqual(['seq', '1', 'id', ids[0], 'body', expect.stringContaining('"seq":1')]);
  expect(await stack.client.ttl(routingKeys(stack.env.REDIS_KEY_PREFIX).roomHistory('big_room'))).toBeGreaterThan(0);
  for (const v of viewers) v.ws.close();
});

it('a single message still logs the seed lines at info', async () => {
  const viewers = [await stack.connect(stack.comets[0]!, 'u1', 'video_123'), await stack.connect(stack.comets[1]!, 'u2', 'video_123')];
  const started = await startLoggedJob();
  job = started.job;
  const [id] = await sendMany('video_123', 1);
  await stack.finished(id!);
  await waitFor(() => viewers.every((v) => serverMessages(v).length === 1), 'both viewers');
  const lines = started.lines;
  expect(lines).toContain('Room video_123 has 2 connections');
  expect(lines).toContain('Grouped 2 connections into 2 comet nodes');
  expect(lines.filter((l) => /^\[Consumer \d+\] Broadcasting to Comet 127\.0\.0\.1:\d+ for 1 connections$/.test(l))).toHaveLength(2);
  expect(lines.some((l) => /^\[Consumer \d+\] Message distributed: sent=2, failed=0, comet_nodes=2$/.test(l))).toBe(true);
  for (const v of viewers) v.ws.close();
});

/**
 * A comet over real gRPC that answers UNAVAILABLE to its first `failFirst` calls, then delivers;
 * it records the message ids of every call it was sent.
 */
async function flakyComet(failFirst: number) {
  const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  const calls: { ok: boolean; roomId: string; ids: string[] }[] = [];
  const idsOf = (protos: ProtoMsg[]) => protos.map((p) => JSON.parse(p.body!.toString()).id as string);
  server.addService(pkg.ChatRoom.Comet.Comet.service, {
    // Only the goim-era methods: BroadcastRooms answers UNIMPLEMENTED, as an older comet would.
    BroadcastRoom: (call: grpc.ServerUnaryCall<{ roomId: string; protos: ProtoMsg[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const ok = calls.length >= failFirst;
      calls.push({ ok, roomId: call.request.roomId, ids: idsOf(call.request.protos) });
      if (ok) cb(null, { delivered: 1 });
      else cb({ code: grpc.status.UNAVAILABLE, details: 'flaky comet: not now' } as grpc.ServiceError, null);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { id: `127.0.0.1:${port}`, calls, stop: () => server.forceShutdown() };
}

it('a comet failing mid-batch is retried to completion without resending to the comet that succeeded; nothing is lost', async () => {
  const keys = routingKeys(stack.env.REDIS_KEY_PREFIX);
  const healthy = stack.comets[0]!;
  const viewers = [await stack.connect(healthy, 'h1', 'flaky_room'), await stack.connect(healthy, 'h2', 'flaky_room')];
  // Every message id the healthy comet was asked to publish, duplicates included (its own
  // de-duplication would hide a resend from the viewers).
  const published: string[] = [];
  const publishRoom = healthy.hub.publishRoom.bind(healthy.hub);
  healthy.hub.publishRoom = (roomId, messages) => {
    if (roomId === 'flaky_room') for (const message of messages) published.push(String(message.id));
    return publishRoom(roomId, messages);
  };
  const flaky = await flakyComet(2);
  cleanups.push(flaky.stop);
  // The flaky comet holds one connection of the room and heartbeats, as a comet would.
  await stack.client.sadd(keys.roomConnections('flaky_room'), 'flaky_conn');
  await stack.client.hset(keys.connectionInfo('flaky_conn'), 'comet_id', flaky.id, 'user_id', 'f1', 'room_id', 'flaky_room');
  const beat = setInterval(() => void stack.client.zadd(keys.cometNodes, Date.now(), flaky.id), 100);
  cleanups.push(() => clearInterval(beat));
  await stack.client.zadd(keys.cometNodes, Date.now(), flaky.id);

  const ids = await sendMany('flaky_room', 120);
  job = (await startLoggedJob()).job;
  const results = await Promise.all(ids.map(async (id) => stack.finished(id)));
  expect(results.map((h) => h.status)).toEqual(ids.map(() => 'completed'));
  for (const h of results) expect(JSON.parse(h.result!)).toMatchObject({ sent: 3, failed: 0, comet_nodes: 2 });
  const retried = results.map((h) => JSON.parse(h.result!).nodes.find((n: { comet: string }) => n.comet === flaky.id)).filter((n) => n.attempts > 1);
  expect(retried.length).toBeGreaterThan(0);

  // The healthy comet's viewers: everything, in seq order; the comet was asked once per message.
  await waitFor(() => viewers.every((v) => serverMessages(v).length >= 120), 'all 120 on the healthy comet');
  for (const v of viewers) expect(seqs(v)).toEqual(range(120));
  expect(published).toEqual(ids);
  // The flaky comet refused two calls and then got every message, each accepted exactly once, in order.
  expect(flaky.calls.slice(0, 2).every((c) => !c.ok)).toBe(true);
  expect(flaky.calls.filter((c) => c.ok).flatMap((c) => c.ids)).toEqual(ids);
  for (const v of viewers) v.ws.close();
});

it('user pushes that start together read their routing together; each user gets exactly their own messages', async () => {
  const [a, b] = stack.comets;
  const alice = [await stack.connect(a!, 'alice', 'r1'), await stack.connect(b!, 'alice', 'r2')];
  const bob = await stack.connect(b!, 'bob', 'r1');
  const carol = await stack.connect(a!, 'carol', 'r3');
  const sent: Record<string, number[]> = { alice: [], bob: [], carol: [] };
  for (let i = 1; i <= 60; i++) {
    const userIds = i % 3 === 0 ? ['alice', 'bob'] : i % 3 === 1 ? ['carol'] : ['bob'];
    for (const u of userIds) sent[u]!.push(i);
    const res = await stack.post('/logic/push', { userIds, message: { n: i } });
    expect(res.statusCode).toBe(202);
  }
  job = (await startLoggedJob()).job;
  const got = (c: WsClient) => serverMessages(c).map((m) => m.n as number).sort((x, y) => x - y);
  await waitFor(() => alice.every((c) => got(c).length >= sent.alice!.length) && got(bob).length >= sent.bob!.length && got(carol).length >= sent.carol!.length, 'every push');
  for (const c of alice) expect(got(c)).toEqual(sent.alice);
  expect(got(bob)).toEqual(sent.bob);
  expect(got(carol)).toEqual(sent.carol);
  const reads = await metric(job.metricsPort, 'redis_command_duration_seconds_count', 'command="get_user_connections"');
  expect(reads).toBeGreaterThan(0);
  expect(reads).toBeLessThan(60);
  for (const c of [...alice, bob, carol]) c.ws.close();
});

it('a batch holding several rooms goes to each comet in one BroadcastRooms call; every room arrives complete and in order', async () => {
  const [a, b] = stack.comets;
  const rooms = ['room_a', 'room_b', 'room_c'];
  const viewers = new Map(await Promise.all(rooms.map(async (r) => [r, [await stack.connect(a!, `${r}_1`, r), await stack.connect(b!, `${r}_2`, r)]] as const)));
  // Interleaved, so every claim holds all three rooms.
  for (let i = 1; i <= 60; i++) {
    const res = await stack.post('/logic/send', { roomId: rooms[i % 3], userId: 'host', messages: [{ content: `m${i}` }] });
    expect(res.statusCode).toBe(202);
  }
  job = (await startLoggedJob()).job;
  const all = [...viewers.values()].flat();
  await waitFor(() => all.every((v) => serverMessages(v).length >= 20), 'every room complete');
  for (const v of all) expect(seqs(v)).toEqual(range(20));
  const reads = await metric(job.metricsPort, 'redis_command_duration_seconds_count', 'command="get_room_connections"');
  const multi = await metric(job.metricsPort, 'grpc_calls_total', 'name="BroadcastRooms"');
  const single = await metric(job.metricsPort, 'grpc_calls_total', 'name="BroadcastRoom"');
  expect(multi).toBeGreaterThan(0);
  // At most one call per comet per batch (one per room would be 3 per comet per batch).
  expect(multi + single).toBeLessThanOrEqual(2 * reads);
  for (const v of all) v.ws.close();
});

it('BroadcastRooms refuses a bad room or proto naming its place, and delivers nothing of that call', async () => {
  const viewer = await stack.connect(stack.comets[0]!, 'ok_viewer', 'room_ok');
  const { CometClients } = await import('../../src/job/comet-clients.ts');
  const { STACK_GRPC_TOKEN } = await import('../helpers/stack.ts');
  const clients = new CometClients({ deadlineMs: 5000, token: STACK_GRPC_TOKEN });
  cleanups.push(() => clients.close());
  const proto = (text: string) => ({ ver: 1, op: 4, seq: 0, body: Buffer.from(JSON.stringify({ id: text, text })) });
  const comet = stack.comets[0]!.cometId;
  await expect(clients.broadcastRooms(comet, [{ roomId: 'room_ok', protos: [proto('x')] }, { roomId: 'bad room!', protos: [proto('y')] }])).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: expect.stringContaining('rooms[1].roomId'),
  });
  await expect(clients.broadcastRooms(comet, [{ roomId: 'room_ok', protos: [proto('x'), { ver: 1, op: 4, seq: 0 }] }])).rejects.toMatchObject({
    details: expect.stringContaining('rooms[0].protos[1]'),
  });
  expect(await clients.broadcastRooms(comet, [{ roomId: 'room_ok', protos: [proto('z')] }, { roomId: 'room_empty', protos: [proto('w')] }])).toEqual({ delivered: [1, 0] });
  await waitFor(() => serverMessages(viewer).length === 1, 'the good call');
  expect(serverMessages(viewer).map((m) => m.text)).toEqual(['z']);
  viewer.ws.close();
});

it('a comet without BroadcastRooms (older) gets one BroadcastRoom per room, every room complete and in order', async () => {
  const keys = routingKeys(stack.env.REDIS_KEY_PREFIX);
  const old = await flakyComet(0);
  cleanups.push(old.stop);
  const rooms = ['old_a', 'old_b'];
  for (const r of rooms) {
    await stack.client.sadd(keys.roomConnections(r), `conn_${r}`);
    await stack.client.hset(keys.connectionInfo(`conn_${r}`), 'comet_id', old.id, 'user_id', 'u', 'room_id', r);
  }
  const beat = setInterval(() => void stack.client.zadd(keys.cometNodes, Date.now(), old.id), 100);
  cleanups.push(() => clearInterval(beat));
  await stack.client.zadd(keys.cometNodes, Date.now(), old.id);
  const ids: Record<string, string[]> = { old_a: [], old_b: [] };
  for (let i = 1; i <= 40; i++) {
    const roomId = rooms[i % 2]!;
    const res = await stack.post('/logic/send', { roomId, userId: 'host', messages: [{ content: `m${i}` }] });
    ids[roomId]!.push(res.json().task_id);
  }
  job = (await startLoggedJob()).job;
  const results = await Promise.all(Object.values(ids).flat().map((id) => stack.finished(id)));
  for (const h of results) expect(JSON.parse(h.result!)).toMatchObject({ sent: 1, failed: 0 });
  for (const r of rooms) expect(old.calls.filter((c) => c.roomId === r).flatMap((c) => c.ids)).toEqual(ids[r]);
  expect(old.calls.every((c) => c.ok)).toBe(true);
});
