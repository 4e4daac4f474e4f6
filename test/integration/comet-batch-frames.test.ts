// A real `pushline comet` process, real WebSocket viewers, real gRPC: a BroadcastRoom carrying
// several messages is one batch, and each viewer gets it as one frame (a JSON array, in order)
// even with the batch window off. Job's Protos carry the message id beside the body, so the
// comet drops a redelivered message without reading its body; goim-style Protos (no id) still
// work, the comet then reads the id from the body.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerToken } from '../../src/contract/comet-grpc-auth.ts';
import { loadCometDefinition, type ProtoMsg } from '../../src/contract/comet-proto.ts';
import { messageBody, messageProto, OP_MESSAGE } from '../../src/contract/push-message.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient, serverMessages, type WsClient } from '../helpers/ws.ts';

const SECRET = 'batch-frames-secret-0123456789';
const GRPC_TOKEN = 'batch-frames-grpc-token-0123456789';
let redis: TestRedis;
let comet: Proc;
let wsPort: number;
let rpc: grpc.Client & Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>;

beforeAll(async () => {
  redis = await startTestRedis();
  wsPort = await freePort();
  const grpcPort = await freePort();
  comet = spawnPushline(['comet'], {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: uniquePrefix(), AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: GRPC_TOKEN,
    COMET_HOST: '127.0.0.1', COMET_WS_PORT: String(wsPort), COMET_GRPC_PORT: String(grpcPort),
    // No batch window: what makes one frame is the batch job sent, not messages meeting by chance.
    COMET_BATCH_MS: '0',
  });
  await waitFor(() => comet.output().includes('serving WebSocket'), 'comet started');
  const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
  rpc = new pkg.ChatRoom.Comet.Comet(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), { interceptors: [bearerToken(GRPC_TOKEN)] }) as never;
});
afterAll(async () => {
  rpc?.close();
  comet?.child.kill('SIGTERM');
  await comet?.exited;
  await redis?.close();
});

const call = <T>(method: string, req: unknown) =>
  new Promise<T>((resolve, reject) => rpc[method]!(req, (err, res) => (err ? reject(err) : resolve(res as T))));
const connect = (userId: string, roomId: string) => connectClient(wsPort, SECRET, userId, roomId);
/** Frames that carry pushed messages (a serverMessages frame or an array of them). */
const messageFrames = (c: WsClient) =>
  c.frames.filter((f) => Array.isArray(f) || (f as { type: string }).type === 'serverMessages');
/** A room message as job sends it: built by the push contract, the id beside the body. */
const jobProto = (id: string, seq: number, content: string): ProtoMsg => messageProto(id, seq, messageBody(id, seq, { content }));

describe('a batch of room messages on a comet', () => {
  it('reaches each viewer as one frame carrying every message in order, ids present', async () => {
    const viewers = await Promise.all(['v1', 'v2', 'v3'].map((u) => connect(u, 'room_batch')));
    const protos = [1, 2, 3, 4, 5].map((n) => jobProto(`9000${n}`, n, `message ${n}`));
    const reply = await call<{ delivered: number }>('BroadcastRoom', { roomId: 'room_batch', protos });
    expect(reply.delivered).toBe(3);
    for (const v of viewers) {
      await waitFor(() => serverMessages(v).length >= 5, 'five messages');
      expect(messageFrames(v)).toHaveLength(1);
      expect(Array.isArray(messageFrames(v)[0])).toBe(true);
      expect(serverMessages(v)).toEqual([1, 2, 3, 4, 5].map((n) => ({ id: `9000${n}`, seq: n, content: `message ${n}` })));
    }
    for (const v of viewers) v.ws.close();
  });

  it('drops a redelivered message by the id beside its body, without reading the body', async () => {
    const viewer = await connect('v_redeliver', 'room_redeliver');
    // The body does not carry the id: only Proto.id tells the comet which message this is.
    const first: ProtoMsg = { ver: 1, op: OP_MESSAGE, seq: 1, id: 'msg_a', body: Buffer.from('{"content":"first"}') };
    const again: ProtoMsg = { ...first, body: Buffer.from('{"content":"first, redelivered"}') };
    await call('BroadcastRoom', { roomId: 'room_redeliver', protos: [first] });
    await call('BroadcastRoom', { roomId: 'room_redeliver', protos: [again, jobProto('msg_b', 2, 'after')] });
    await waitFor(() => serverMessages(viewer).some((m) => m.id === 'msg_b'), 'the message after the redelivery');
    expect(serverMessages(viewer)).toEqual([{ content: 'first' }, { id: 'msg_b', seq: 2, content: 'after' }]);
    viewer.ws.close();
  });

  it('still takes goim-style Protos without an id: JSON bodies as they are, text as a JSON string, repeats by the body id dropped', async () => {
    const viewer = await connect('v_goim', 'room_goim');
    const goim = (body: string) => ({ ver: 1, op: 4, seq: 0, body: Buffer.from(body) });
    await call('BroadcastRoom', { roomId: 'room_goim', proto: goim('{"id":"g1","content":"from goim"}') });
    await call('BroadcastRoom', { roomId: 'room_goim', protos: [goim('{"id":"g1","content":"from goim"}'), goim('plain words')] });
    await waitFor(() => serverMessages(viewer).length >= 2, 'two messages');
    expect(serverMessages(viewer)).toEqual([{ id: 'g1', content: 'from goim' }, 'plain words']);
    viewer.ws.close();
  });

  it('refuses an id too long to remember with INVALID_ARGUMENT naming it, and keeps serving', async () => {
    const long = jobProto('x'.repeat(300), 1, 'too long an id');
    await expect(call('BroadcastRoom', { roomId: 'room_long', protos: [jobProto('ok_1', 1, 'fine'), long] })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'protos[1]: proto.id must be at most 256 characters',
    });
    const viewer = await connect('v_long', 'room_long');
    await call('BroadcastRoom', { roomId: 'room_long', protos: [jobProto('ok_2', 2, 'still served')] });
    await waitFor(() => serverMessages(viewer).length >= 1, 'a message');
    expect(serverMessages(viewer)).toEqual([{ id: 'ok_2', seq: 2, content: 'still served' }]);
    viewer.ws.close();
  });
});
