// A comet with real WebSocket clients and a real gRPC client on a real Redis: token check
// before the upgrade, routing keys written and removed, room/user/broadcast delivery with
// batching, malformed frames, bad gRPC requests.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Redis } from 'ioredis';
import { signConnectionToken } from '../../src/auth/token.ts';
import { bearerToken } from '../../src/comet/grpc-auth.ts';
import { loadCometDefinition } from '../../src/comet/grpc-server.ts';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { parseEnv } from '../../src/config/load.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient, serverMessages, type WsClient } from '../helpers/ws.ts';

const SECRET = 'comet-test-secret-0123456789';
const GRPC_TOKEN = 'comet-test-grpc-token-0123456789';
let redis: TestRedis;
let client: Redis;
let comet: CometHandle;
let prefix: string;
let rpc: grpc.Client & Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>;

beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  prefix = uniquePrefix();
  const parsed = parseEnv({
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: prefix, AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: GRPC_TOKEN,
    COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: '0', COMET_BATCH_MS: '5', COMET_HEARTBEAT_MS: '200',
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  comet = await startComet(parsed.env, silentLogger);
  const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
  rpc = new pkg.ChatRoom.Comet.Comet(`127.0.0.1:${comet.grpcPort}`, grpc.credentials.createInsecure(), { interceptors: [bearerToken(GRPC_TOKEN)] }) as never;
});
afterAll(async () => {
  rpc?.close();
  await comet?.stop();
  await redis.close();
});

const call = <T>(method: string, req: unknown) =>
  new Promise<T>((resolve, reject) => rpc[method]!(req, (err, res) => (err ? reject(err) : resolve(res as T))));

type Client = WsClient;
const connect = (userId: string, roomId: string): Promise<Client> => connectClient(comet.wsPort, SECRET, userId, roomId);
const messages = serverMessages;

describe('connecting', () => {
  it('refuses a missing, forged or expired token with 401 before the upgrade', async () => {
    const statusOf = (url: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => {});
      });
    const base = `ws://127.0.0.1:${comet.wsPort}/`;
    expect(await statusOf(base)).toBe(401);
    const forged = await signConnectionToken({ userId: 'u', roomId: 'r' }, 'another-secret-0123456789', 60);
    expect(await statusOf(`${base}?token=${forged.token}`)).toBe(401);
    const expired = await signConnectionToken({ userId: 'u', roomId: 'r' }, SECRET, 60, new Date(Date.now() - 3_600_000));
    expect(await statusOf(`${base}?token=${expired.token}`)).toBe(401);
  });

  it('writes the routing keys on open and removes them on close', async () => {
    const keys = routingKeys(prefix);
    const c = await connect('user_1', 'room_a');
    await waitFor(async () => (await client.sismember(keys.roomConnections('room_a'), c.connId)) === 1, 'room key');
    expect(await client.hgetall(keys.connectionInfo(c.connId))).toEqual({ comet_id: comet.cometId, user_id: 'user_1', room_id: 'room_a' });
    expect(await client.get(keys.userOnline('user_1'))).toBe(c.connId);
    expect(await client.ttl(keys.userOnline('user_1'))).toBeGreaterThan(0);
    expect(await client.sismember(keys.userConnections('user_1'), c.connId)).toBe(1);
    expect(await client.sismember(keys.cometConnections(comet.cometId), c.connId)).toBe(1);
    expect(await client.zscore(keys.cometNodes, comet.cometId)).not.toBeNull();
    c.ws.close();
    await waitFor(async () => (await client.exists(keys.connectionInfo(c.connId))) === 0, 'routing removed');
    expect(await client.exists(keys.roomConnections('room_a'), keys.userOnline('user_1'), keys.userConnections('user_1'))).toBe(0);
  });
});

describe('heartbeats', () => {
  it("refresh the user's online TTL and are answered", async () => {
    const keys = routingKeys(prefix);
    const c = await connect('hb_user', 'room_hb');
    await waitFor(async () => (await client.exists(keys.userOnline('hb_user'))) === 1, 'online');
    await client.expire(keys.userOnline('hb_user'), 5);
    c.ws.send('{"type":"heartbeat"}');
    await waitFor(() => c.frames.some((f) => (f as { type: string }).type === 'heartbeat'), 'heartbeat answered');
    await waitFor(async () => (await client.ttl(keys.userOnline('hb_user'))) > 100, 'TTL refreshed');
    expect(await client.get(keys.userOnline('hb_user'))).toBe(c.connId);
    c.ws.close();
  });
});

describe('delivery over gRPC', () => {
  it('BroadcastRoom reaches every socket of the room, batching a burst into array frames', async () => {
    const a = await connect('ua', 'room_b');
    const b = await connect('ub', 'room_b');
    const other = await connect('uc', 'room_c');
    const replies = await Promise.all(
      [1, 2, 3].map((n) => call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_b', proto: { ver: 1, op: 4, seq: n, body: Buffer.from(JSON.stringify({ n })) } })),
    );
    expect(replies.map((r) => r.delivered)).toEqual([2, 2, 2]);
    await waitFor(() => messages(a).length === 3 && messages(b).length === 3, 'three messages each');
    expect(messages(a)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(a.frames.some(Array.isArray)).toBe(true);
    expect(messages(other)).toEqual([]);
    for (const c of [a, b, other]) c.ws.close();
  });

  it('PushMsg reaches the listed connections and reports the missing ones; Broadcast reaches all', async () => {
    const a = await connect('u1', 'r1');
    const b = await connect('u2', 'r2');
    const push = await call<{ delivered: number; missing: string[] }>('PushMsg', { keys: [a.connId, 'gone'], proto: { op: 4, body: Buffer.from('{"to":"u1"}') } });
    expect(push).toEqual({ delivered: 1, missing: ['gone'] });
    const all = await call<{ delivered: number }>('Broadcast', { proto: { op: 4, body: Buffer.from('plain text') } });
    expect(all.delivered).toBeGreaterThanOrEqual(2);
    await waitFor(() => messages(b).length === 1 && messages(a).length === 2, 'pushed and broadcast');
    expect(messages(a)).toEqual([{ to: 'u1' }, 'plain text']);
    const rooms = await call<{ rooms: Record<string, boolean> }>('Rooms', {});
    expect(rooms.rooms).toMatchObject({ r1: true, r2: true });
    a.ws.close();
    b.ws.close();
  });

  it('BroadcastRoom with several protos (job batching) delivers them all, in order', async () => {
    const c = await connect('batch_user', 'room_batch');
    const protos = [1, 2, 3].map((n) => ({ ver: 1, op: 4, seq: n, body: Buffer.from(JSON.stringify({ id: `b${n}`, n })) }));
    const reply = await call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_batch', protos });
    expect(reply.delivered).toBe(1);
    await waitFor(() => messages(c).length === 3, 'three messages');
    expect(messages(c)).toEqual([{ id: 'b1', n: 1 }, { id: 'b2', n: 2 }, { id: 'b3', n: 3 }]);
    await expect(call('BroadcastRoom', { roomId: 'room_batch', protos: [protos[0], { op: 4 }] })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'protos[1]: proto.body is required',
    });
    c.ws.close();
  });

  it('answers INVALID_ARGUMENT naming the field for bad requests', async () => {
    await expect(call('BroadcastRoom', { roomId: '', proto: { body: Buffer.from('x') } })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'roomId is required' });
    await expect(call('BroadcastRoom', { roomId: 'r' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'proto is required' });
    await expect(call('PushMsg', { keys: [], proto: { body: Buffer.from('x') } })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });
});

describe('bad frames from clients', () => {
  it('get error frames, then a 4002 close, while the comet keeps serving everyone else', async () => {
    const bad = await connect('bad', 'room_d');
    const good = await connect('good', 'room_d');
    const closed = new Promise<number>((resolve) => bad.ws.on('close', (code) => resolve(code)));
    bad.ws.send('not json');
    bad.ws.send('{"no":"type"}');
    bad.ws.send('{"type":"teleport"}');
    await waitFor(() => bad.frames.filter((f) => (f as { type: string }).type === 'error').length === 3, 'three error frames');
    expect(bad.frames.filter((f) => (f as { type: string }).type === 'error').map((f) => (f as { payload: { code: string } }).payload.code)).toEqual(['invalid_json', 'invalid_frame', 'unknown_type']);
    bad.ws.send('x');
    bad.ws.send('y');
    expect(await closed).toBe(4002);
    good.ws.send('{"type":"heartbeat"}');
    await waitFor(() => good.frames.some((f) => (f as { type: string }).type === 'heartbeat'), 'heartbeat answered');
    const r = await call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_d', proto: { body: Buffer.from('{"still":"here"}') } });
    expect(r.delivered).toBe(1);
    await waitFor(() => messages(good).length === 1, 'delivered to the good client');
    good.ws.close();
  });

  it('closes a connection that sends a frame over the size limit with 1009', async () => {
    const c = await connect('big', 'room_e');
    const closed = new Promise<number>((resolve) => c.ws.on('close', (code) => resolve(code)));
    c.ws.send('x'.repeat(70 * 1024));
    expect(await closed).toBe(1009);
  });
});
