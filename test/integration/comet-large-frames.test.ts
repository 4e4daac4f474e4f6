// Large frames to healthy clients, history and offline messages in bounded chunks, and a real
// stalled client, against a comet with real WebSockets, real gRPC and a real Redis. A slow
// consumer is a socket whose buffered bytes stay high, not one that was sent a large frame.
import * as grpc from '@grpc/grpc-js';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { signConnectionToken } from '../../src/auth/token.ts';
import { loadCometDefinition } from '../../src/comet/grpc-server.ts';
import { bearerToken } from '../../src/comet/grpc-auth.ts';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { parseEnv } from '../../src/config/load.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient, serverMessages, type WsClient } from '../helpers/ws.ts';

const SECRET = 'large-frames-secret-0123456789';
const MiB = 1024 * 1024;
let redis: TestRedis;
let client: Redis;
let comet: CometHandle;
let prefix: string;
let maxFrameBytes: number;
const GRPC_TOKEN = 'large-frames-grpc-token-0123456789';
let rpc: grpc.Client & Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>;

beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  prefix = uniquePrefix();
  // The defaults for buffers and frames: what the reports ran with.
  const parsed = parseEnv({
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: prefix, AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: GRPC_TOKEN,
    COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: '0', COMET_HEARTBEAT_MS: '200',
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  maxFrameBytes = parsed.env.COMET_MAX_FRAME_BYTES;
  comet = await startComet(parsed.env, silentLogger);
  const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
  rpc = new pkg.ChatRoom.Comet.Comet(`127.0.0.1:${comet.grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * MiB,
    interceptors: [bearerToken(GRPC_TOKEN)],
  }) as never;
});
afterAll(async () => {
  rpc?.close();
  await comet?.stop();
  await redis.close();
});

const call = <T>(method: string, req: unknown) =>
  new Promise<T>((resolve, reject) => rpc[method]!(req, (err, res) => (err ? reject(err) : resolve(res as T))));
const connect = (userId: string, roomId: string): Promise<WsClient> => connectClient(comet.wsPort, SECRET, userId, roomId);
const isOpen = (c: WsClient) => c.ws.readyState === c.ws.OPEN;
/** Sizes of every frame a client receives (bytes of the text). */
function frameSizes(c: WsClient): number[] {
  const sizes: number[] = [];
  c.ws.on('message', (data: Buffer) => sizes.push(data.length));
  return sizes;
}
const proto = (body: object) => ({ ver: 1, op: 4, seq: 0, body: Buffer.from(JSON.stringify(body)) });

describe('large room frames to healthy clients', () => {
  it('delivers a BroadcastRoom of 3 protos of ~400 KB to every client, none closed, delivered counts them', async () => {
    const clients = await Promise.all(['a', 'b', 'c'].map((u) => connect(`big_${u}`, 'room_big')));
    const protos = [1, 2, 3].map((n) => proto({ id: `big${n}`, seq: n, text: 'x'.repeat(400_000) }));
    const reply = await call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_big', protos });
    expect(reply.delivered).toBe(3);
    for (const c of clients) {
      await waitFor(() => serverMessages(c).length === 3 || !isOpen(c), 'three big messages');
      expect(isOpen(c)).toBe(true);
      expect(serverMessages(c).map((m) => m.seq)).toEqual([1, 2, 3]);
    }
    expect(comet.hub.slowConsumerCloses).toBe(0);
    for (const c of clients) c.ws.close();
  });

  it('delivers 12 calls of 100 messages × 4,000 chars to 4 idle viewers, in seq order, in frames within the bound', async () => {
    const viewers = await Promise.all([1, 2, 3, 4].map((n) => connect(`viewer_${n}`, 'room_many')));
    const sizes = frameSizes(viewers[0]!);
    const text = 'y'.repeat(4000);
    // Sent back to back, as job does under load: their batches pile up on the sockets.
    await Promise.all(
      Array.from({ length: 12 }, (_, k) =>
        call('BroadcastRoom', { roomId: 'room_many', protos: Array.from({ length: 100 }, (_, i) => proto({ id: `m${k}_${i}`, seq: k * 100 + i + 1, text })) }),
      ),
    );
    for (const v of viewers) {
      await waitFor(() => serverMessages(v).length === 1200 || !isOpen(v), 'all 1200 messages');
      expect(isOpen(v)).toBe(true);
      const seqs = serverMessages(v).map((m) => m.seq as number);
      expect(new Set(seqs).size).toBe(1200);
    }
    // Each call's messages stay in order within the stream every viewer sees.
    const seqs = serverMessages(viewers[0]!).map((m) => m.seq as number);
    for (let k = 0; k < 12; k++) {
      const ofCall = seqs.filter((s) => s > k * 100 && s <= (k + 1) * 100);
      expect(ofCall).toEqual([...ofCall].sort((x, y) => x - y));
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxFrameBytes);
    expect(comet.hub.slowConsumerCloses).toBe(0);
    for (const v of viewers) v.ws.close();
  });

  it('still delivers a single message larger than the buffer limit', async () => {
    const c = await connect('huge', 'room_huge');
    const reply = await call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_huge', proto: proto({ id: 'huge1', seq: 1, text: 'z'.repeat(3 * MiB) }) });
    expect(reply.delivered).toBe(1);
    await waitFor(() => serverMessages(c).length === 1 || !isOpen(c), 'the huge message');
    expect(isOpen(c)).toBe(true);
    c.ws.close();
  });
});

describe('history over the byte bound', () => {
  it('answers 1.2 MB of history in several frames within the bound, in seq order, the last one marked complete', async () => {
    const keys = routingKeys(prefix);
    const key = keys.roomHistory('room_hist');
    for (let seq = 1; seq <= 300; seq++) {
      await client.xadd(key, '*', 'seq', String(seq), 'id', `h${seq}`, 'body', JSON.stringify({ id: `h${seq}`, seq, text: 'h'.repeat(4000) }));
    }
    const c = await connect('asker', 'room_hist');
    const sizes = frameSizes(c);
    c.ws.send(JSON.stringify({ type: 'history', payload: { sinceSeq: 0 } }));
    type History = { type: string; payload: { roomId: string; sinceSeq: number; messages: { seq: number }[]; complete: boolean } };
    const answers = () => c.frames.filter((f) => (f as History).type === 'history') as History[];
    await waitFor(() => answers().some((f) => f.payload.complete) || !isOpen(c), 'the complete history');
    expect(isOpen(c)).toBe(true);
    expect(answers().length).toBeGreaterThan(1);
    expect(answers().map((f) => f.payload.complete)).toEqual([...answers().slice(1).map(() => false), true]);
    expect(answers().flatMap((f) => f.payload.messages.map((m) => m.seq))).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(answers().every((f) => f.payload.roomId === 'room_hist' && f.payload.sinceSeq === 0)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxFrameBytes);

    // Nothing newer: one frame, empty and complete.
    c.frames.length = 0;
    c.ws.send(JSON.stringify({ type: 'history', payload: { sinceSeq: 300 } }));
    await waitFor(() => answers().length === 1, 'empty history');
    expect(answers()[0]!.payload).toMatchObject({ messages: [], complete: true });
    c.ws.close();
  });
});

describe('offline messages', () => {
  // What job writes for an offline user: LPUSH (newest first), capped with LTRIM.
  async function storeOffline(userId: string, count: number, chars: number): Promise<string> {
    const key = routingKeys(prefix).userOffline(userId);
    for (let n = 1; n <= count; n++) await client.lpush(key, JSON.stringify({ id: `o${n}`, n, text: 'o'.repeat(chars) }));
    return key;
  }
  const ns = (c: WsClient) => serverMessages(c).map((m) => m.n as number);

  it('delivers 100 messages of 11,000 chars on connect, oldest first, and removes them only once written', async () => {
    const key = await storeOffline('off_user', 100, 11_000);
    const c = await connect('off_user', 'room_off');
    const sizes = frameSizes(c);
    await waitFor(() => serverMessages(c).length === 100 || !isOpen(c), 'all offline messages');
    expect(isOpen(c)).toBe(true);
    expect(ns(c)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await waitFor(async () => (await client.llen(key)) === 0, 'offline list emptied');
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxFrameBytes);
    c.ws.close();
  });

  it('loses nothing when two connections of the user open at once (duplicates allowed: messages carry ids)', async () => {
    const key = await storeOffline('twice', 100, 11_000);
    const [a, b] = await Promise.all([connect('twice', 'room_off'), connect('twice', 'room_off')]);
    await waitFor(async () => (await client.llen(key)) === 0, 'offline list emptied');
    await waitFor(() => new Set([...ns(a!), ...ns(b!)]).size === 100, 'every message reached one of them');
    a!.ws.close();
    b!.ws.close();
  });

  it('keeps what was not written for the next connection when the first one stops reading and goes away', async () => {
    // 20 MB: more than the kernel buffers of a loopback connection hold.
    const key = await storeOffline('leaver', 200, 100_000);
    const gone = await stalledClient('leaver', 'room_off');
    await waitFor(async () => (await client.llen(key)) < 200, 'the first chunks written');
    gone.destroy();
    const next = await connect('leaver', 'room_off');
    await waitFor(async () => (await client.llen(key)) === 0, 'offline list emptied');
    await waitFor(() => ns(next).at(-1) === 200, 'the rest on the next connection');
    // What left Redis before is exactly what was written to the first socket: the oldest ones.
    const got = ns(next);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => 200 - got.length + 1 + i));
    next.ws.close();
  });
});

/** A raw TCP client that completes the WebSocket handshake and then never reads. */
async function stalledClient(userId: string, roomId: string): Promise<Socket> {
  const { token } = await signConnectionToken({ userId, roomId }, SECRET, 60);
  const socket = tcpConnect(comet.wsPort, '127.0.0.1');
  socket.on('error', () => {});
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
    socket.write(`GET /?token=${token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  });
  return socket;
}

/** Close code of the first close frame in what a raw client received (server frames are unmasked). */
function closeCodeIn(data: Buffer): number | null {
  let at = data.indexOf('\r\n\r\n') + 4;
  while (at + 2 <= data.length) {
    const opcode = data[at]! & 0x0f;
    let len = data[at + 1]! & 0x7f;
    let start = at + 2;
    if (len === 126) (len = data.readUInt16BE(at + 2)), (start = at + 4);
    else if (len === 127) (len = Number(data.readBigUInt64BE(at + 2))), (start = at + 10);
    if (opcode === 8) return start + 2 <= data.length ? data.readUInt16BE(start) : null;
    at = start + len;
  }
  return null;
}

describe('a real stalled client', () => {
  it('is closed with 4008 and counted, while a healthy client in the room gets everything', async () => {
    const before = comet.hub.slowConsumerCloses;
    const stalled = await stalledClient('stalled', 'room_stall');
    const healthy = await connect('healthy', 'room_stall');
    await waitFor(() => comet.hub.rooms.get('room_stall')?.size === 2, 'both in the room');
    const text = 's'.repeat(200_000);
    let sent = 0;
    // Keep the room busy until the comet gives up on the stalled socket (kernel buffers first).
    await waitFor(async () => {
      await call('BroadcastRoom', { roomId: 'room_stall', proto: proto({ id: `s${++sent}`, seq: sent, text }) });
      return comet.hub.slowConsumerCloses > before;
    }, 'the stalled client closed as a slow consumer', 60_000, 1);
    expect(comet.hub.slowConsumerCloses).toBe(before + 1);
    await waitFor(() => serverMessages(healthy).length === sent || !isOpen(healthy), 'the healthy client got everything');
    expect(isOpen(healthy)).toBe(true);
    // Reading now, the stalled client finds the 4008 close frame behind what was buffered.
    const received: Buffer[] = [];
    stalled.on('data', (d: Buffer) => received.push(d));
    stalled.resume();
    await waitFor(() => closeCodeIn(Buffer.concat(received)) !== null, 'close frame', 60_000);
    expect(closeCodeIn(Buffer.concat(received))).toBe(4008);
    stalled.destroy();
    healthy.ws.close();
  });
});
