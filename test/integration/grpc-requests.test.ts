// Bad gRPC requests get INVALID_ARGUMENT naming the problem, never INTERNAL and never a
// delivery: bytes that are not a message, strings that are not UTF-8, ids outside the id rule
// (src/routing/ids.ts) and requests over COMET_GRPC_MAX_MESSAGE_BYTES (RESOURCE_EXHAUSTED).
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMET_PROTO } from '../../src/comet/grpc-server.ts';
import { CometClients } from '../../src/job/comet-clients.ts';
import { STACK_GRPC_TOKEN, startPushStack, type PushStack } from '../helpers/stack.ts';
import { serverMessages } from '../helpers/ws.ts';
import { waitFor } from '../helpers/wait.ts';

const root = protobuf.loadSync(COMET_PROTO);
const BroadcastRoomReq = root.lookupType('ChatRoom.Comet.BroadcastRoomReq');
const PushMsgReq = root.lookupType('ChatRoom.Comet.PushMsgReq');
const Proto = root.lookupType('ChatRoom.Comet.Proto');

const proto = (content: string) => ({ ver: 1, op: 4, seq: 0, body: Buffer.from(JSON.stringify({ content })) });
const encode = (type: protobuf.Type, value: object) => Buffer.from(type.encode(type.fromObject(value)).finish());
/** A length-delimited field with exactly these bytes: how a string with invalid UTF-8 travels. */
const rawField = (field: number, bytes: Uint8Array) => Buffer.from(protobuf.Writer.create().uint32((field << 3) | 2).bytes(bytes).finish());
const rawMessage = (field: number, message: Buffer) => rawField(field, message);

describe('gRPC request validation', () => {
  let stack: PushStack;
  let client: grpc.Client;
  beforeAll(async () => {
    stack = await startPushStack(1, { env: { COMET_GRPC_MAX_MESSAGE_BYTES: String(256 * 1024) } });
    client = new grpc.Client(stack.comets[0]!.cometId, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await stack?.close();
  });

  /** Sends raw request bytes, the way any gRPC client in any language could. */
  function send(method: string, bytes: Buffer): Promise<Buffer> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${STACK_GRPC_TOKEN}`);
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(`/ChatRoom.Comet.Comet/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, md, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  }
  const invalid = (details: string | RegExp) => ({ code: grpc.status.INVALID_ARGUMENT, details: typeof details === 'string' ? details : expect.stringMatching(details) });

  it('answers bytes that are not a request message with INVALID_ARGUMENT, not INTERNAL', async () => {
    await expect(send('BroadcastRoom', Buffer.from([0xff, 0xff, 0xff, 0xff]))).rejects.toMatchObject(invalid(/not a valid BroadcastRoomReq message/));
    // A field whose length runs past the end of the request.
    await expect(send('PushMsg', Buffer.from([0x0a, 0x50, 0x61]))).rejects.toMatchObject(invalid(/not a valid PushMsgReq message/));
  });

  it('refuses strings that are not UTF-8, naming the field', async () => {
    const body = encode(Proto, proto('x'));
    await expect(send('BroadcastRoom', Buffer.concat([rawField(1, Buffer.from([0x72, 0x6f, 0xff, 0x6d])), rawMessage(2, body)]))).rejects.toMatchObject(
      invalid('roomId is not valid UTF-8'),
    );
    // A truncated 3-byte sequence (U+FFFD after decoding would be the same length).
    const keys = Buffer.concat([rawField(1, Buffer.from('c_ok')), rawField(1, Buffer.from([0x63, 0xe2, 0x82])), rawMessage(2, body)]);
    await expect(send('PushMsg', keys)).rejects.toMatchObject(invalid('keys[1] is not valid UTF-8'));
  });

  it('bounds roomId and connection ids by the id rule', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'ids_viewer', 'room_ids');
    const huge = 'r'.repeat(128 * 1024);
    await expect(send('BroadcastRoom', encode(BroadcastRoomReq, { roomId: huge, proto: proto('x') }))).rejects.toMatchObject(invalid('roomId must be at most 128 characters'));
    await expect(send('BroadcastRoom', encode(BroadcastRoomReq, { roomId: 'room ids', proto: proto('x') }))).rejects.toMatchObject(invalid(/^roomId may only contain/));
    await expect(send('PushMsg', encode(PushMsgReq, { keys: [viewer.connId, 'bad\nkey'], proto: proto('x') }))).rejects.toMatchObject(invalid(/^keys\[1\] may only contain/));
    // A valid request on the same channel still goes through.
    await send('BroadcastRoom', encode(BroadcastRoomReq, { roomId: 'room_ids', proto: proto('fine') }));
    await waitFor(() => serverMessages(viewer).length === 1, 'the valid message');
    expect(serverMessages(viewer)).toEqual([{ content: 'fine' }]);
    viewer.ws.close();
  });

  it('refuses a request over COMET_GRPC_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED', async () => {
    const big = encode(BroadcastRoomReq, { roomId: 'room_big', proto: { ver: 1, op: 4, seq: 0, body: Buffer.alloc(300 * 1024, 0x61) } });
    await expect(send('BroadcastRoom', big)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });

  it("job splits a room batch that would exceed the comets' limit into calls that fit", async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'batch_viewer', 'room_batch');
    const clients = new CometClients({ deadlineMs: 5000, token: STACK_GRPC_TOKEN, maxMessageBytes: 256 * 1024 });
    const filler = 'b'.repeat(60 * 1024);
    // Sent in one event-loop turn: one batch of 300 KB, more than one call may carry.
    const sent = Array.from({ length: 5 }, (_, i) => clients.broadcastRoom(stack.comets[0]!.cometId, 'room_batch', proto(`${i}${filler}`)));
    expect(await Promise.all(sent)).toHaveLength(5);
    await waitFor(() => serverMessages(viewer).length === 5, 'all five messages');
    expect(serverMessages(viewer).map((m) => String(m.content).charAt(0))).toEqual(['0', '1', '2', '3', '4']);
    clients.close();
    viewer.ws.close();
  });
});
