// The comet's gRPC server (proto/comet.proto), called by job: one call per comet node per
// message, or per batch of a room's messages (BroadcastRoom's `protos`: one frame per socket).
// Types come from the proto file (src/contract), loaded at start-up; server reflection is on so
// grpcurl works without the proto. Every call needs the bearer token (comet-grpc-auth.ts); bad
// requests (undecodable, non-UTF-8 strings, ids outside the id rule) get INVALID_ARGUMENT
// naming the field.
import * as grpc from '@grpc/grpc-js';
import { COMET_PROTO, loadCometDefinition, type ProtoMsg } from '../contract/comet-proto.ts';
import { ReflectionService } from '@grpc/reflection';
import protobuf from 'protobufjs';
import { identifierProblem } from '../routing/ids.ts';
import { requireBearerToken } from '../contract/comet-grpc-auth.ts';
import { isUndecodable, withExplainedDecoding } from './grpc-decode.ts';
import { reflectionDefinition } from './reflection-descriptor.ts';
import type { Logger } from '../util/log.ts';
import { serverMessage, type ServerMessage } from './frames.ts';
import type { GrpcObserver } from '../metrics/common.ts';
import type { Hub } from './hub.ts';

export { COMET_PROTO, loadCometDefinition, type ProtoMsg } from '../contract/comet-proto.ts';

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function invalid(callback: grpc.sendUnaryData<never>, message: string): void {
  callback({ code: grpc.status.INVALID_ARGUMENT, details: message } as grpc.ServiceError, null);
}

/** Longer ids are refused: the comet remembers recent ids to drop redeliveries. */
const MAX_ID_CHARS = 256;

/** The message clients get, or an error text naming what is wrong with the Proto. */
function frameOf(proto: ProtoMsg | null | undefined): ServerMessage | { error: string } {
  if (!proto) return { error: 'proto is required' };
  if (!proto.body || proto.body.length === 0) return { error: 'proto.body is required' };
  if (proto.id && proto.id.length > MAX_ID_CHARS) return { error: `proto.id must be at most ${MAX_ID_CHARS} characters` };
  // job's Protos carry the id beside the body: the body is not parsed to find it.
  return serverMessage(proto.body, proto.id || undefined);
}

export interface CometGrpcOptions {
  /** COMET_GRPC_TOKEN: calls without `authorization: Bearer <token>` get UNAUTHENTICATED. */
  token: string;
  /** COMET_GRPC_MAX_MESSAGE_BYTES: larger requests get RESOURCE_EXHAUSTED from grpc-js. */
  maxMessageBytes: number;
}

export function createCometGrpcServer(hub: Hub, log: Logger, options: CometGrpcOptions, observe?: GrpcObserver): grpc.Server {
  const definition = loadCometDefinition();
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } };
  };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    interceptors: [requireBearerToken(options.token, (method, why) => log.warn({ method }, `refused an unauthenticated gRPC call: ${why}`))],
  });

  const BroadcastRoom: Unary<{ roomId: string; proto: ProtoMsg | null; protos: ProtoMsg[] }, { delivered: number }> = (call, callback) => {
    const { roomId, proto, protos } = call.request;
    if (!roomId) return invalid(callback, 'roomId is required');
    const badRoom = identifierProblem(roomId, 'roomId');
    if (badRoom) return invalid(callback, badRoom);
    const all = [...(proto ? [proto] : []), ...(protos ?? [])];
    if (all.length === 0) return invalid(callback, 'proto is required');
    const messages: ServerMessage[] = [];
    for (const [i, p] of all.entries()) {
      const message = frameOf(p);
      if ('error' in message) return invalid(callback, all.length > 1 ? `protos[${i}]: ${message.error}` : message.error);
      messages.push(message);
    }
    // The whole call is one batch: one frame per socket (split only at COMET_MAX_FRAME_BYTES).
    callback(null, { delivered: hub.publishRoom(roomId, messages) });
  };

  const PushMsg: Unary<{ keys: string[]; proto: ProtoMsg | null }, { delivered: number; missing: string[] }> = (call, callback) => {
    const { keys, proto } = call.request;
    if (!keys || keys.length === 0) return invalid(callback, 'keys must list at least one connection id');
    for (const [i, key] of keys.entries()) {
      const badKey = identifierProblem(key, `keys[${i}]`);
      if (badKey) return invalid(callback, badKey);
    }
    const message = frameOf(proto);
    if ('error' in message) return invalid(callback, message.error);
    callback(null, hub.pushTo(keys, message));
  };

  const Broadcast: Unary<{ proto: ProtoMsg | null; speed: number }, { delivered: number }> = (call, callback) => {
    const message = frameOf(call.request.proto);
    if ('error' in message) return invalid(callback, message.error);
    callback(null, { delivered: hub.broadcast(message) });
  };

  // Several rooms in one call (job batches): every room is checked before any is delivered,
  // errors name the room's place (rooms[1].roomId, rooms[1].protos[0]: …).
  const BroadcastRooms: Unary<{ rooms: { roomId: string; protos: ProtoMsg[] }[] }, { delivered: number[] }> = (call, callback) => {
    const rooms = call.request.rooms ?? [];
    if (rooms.length === 0) return invalid(callback, 'rooms must list at least one room');
    const checked: { roomId: string; messages: ServerMessage[] }[] = [];
    for (const [r, { roomId, protos }] of rooms.entries()) {
      if (!roomId) return invalid(callback, `rooms[${r}].roomId is required`);
      const badRoom = identifierProblem(roomId, `rooms[${r}].roomId`);
      if (badRoom) return invalid(callback, badRoom);
      if (!protos || protos.length === 0) return invalid(callback, `rooms[${r}].protos must list at least one proto`);
      const messages: ServerMessage[] = [];
      for (const [i, p] of protos.entries()) {
        const message = frameOf(p);
        if ('error' in message) return invalid(callback, `rooms[${r}].protos[${i}]: ${message.error}`);
        messages.push(message);
      }
      checked.push({ roomId, messages });
    }
    // Each room's messages go out as one batch: one frame per socket (split at the byte bound).
    const delivered = checked.map(({ roomId, messages }) => hub.publishRoom(roomId, messages));
    callback(null, { delivered });
  };

  const Rooms: Unary<Record<string, never>, { rooms: Record<string, boolean> }> = (_call, callback) => {
    callback(null, { rooms: Object.fromEntries([...hub.rooms.keys()].map((r) => [r, true])) });
  };

  // A request the deserializer could not make sense of never reaches the handlers.
  const decoded = <Req, Res>(handler: Unary<Req, Res>): Unary<Req, Res> => (call, callback) =>
    isUndecodable(call.request) ? invalid(callback, call.request.undecodable) : handler(call, callback);
  // Every call is counted (grpc_calls_total) with its outcome; the handlers answer synchronously.
  const timed = <Req, Res>(name: string, unguarded: Unary<Req, Res>): Unary<Req, Res> => {
    const handler = decoded(unguarded);
    return observe
      ? (call, callback) => {
          const started = performance.now();
          handler(call, (err, res) => {
            observe(name, !err, (performance.now() - started) / 1000);
            callback(err, res);
          });
        }
      : handler;
  };
  const service = withExplainedDecoding(pkg.ChatRoom.Comet.Comet.service, protobuf.loadSync(COMET_PROTO));
  server.addService(service, {
    BroadcastRoom: timed('BroadcastRoom', BroadcastRoom),
    PushMsg: timed('PushMsg', PushMsg),
    Broadcast: timed('Broadcast', Broadcast),
    Rooms: timed('Rooms', Rooms),
    BroadcastRooms: timed('BroadcastRooms', BroadcastRooms),
  });
  new ReflectionService(reflectionDefinition(definition)).addToServer(server);
  log.debug('gRPC service ChatRoom.Comet.Comet registered with reflection');
  return server;
}

export function bindGrpc(server: grpc.Server, host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}
