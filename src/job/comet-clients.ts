// One reused gRPC channel per comet node, created on first use and kept for the process's
// life, with a deadline on every call (a hung comet must not hold a consumer slot). Room
// messages for the same comet and room that are sent in the same event-loop turn travel in
// one BroadcastRoom call (its `protos` field): a gRPC call costs far more than a message.
// Every call carries the comets' bearer token; TLS when COMET_GRPC_TLS_* is set.
import * as grpc from '@grpc/grpc-js';
import { cometGrpcTls, cometGrpcToken, type GrpcTlsFiles } from '../config/load.ts';
import type { Env } from '../config/schema.ts';
import { bearerMetadata } from '../contract/comet-grpc-auth.ts';
import { cometChannelCredentials } from '../contract/comet-grpc-credentials.ts';
import { loadCometDefinition, type ProtoMsg } from '../contract/comet-proto.ts';
import { OP_MESSAGE } from '../contract/push-message.ts';
import type { GrpcObserver } from '../metrics/common.ts';

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
interface CometStub extends grpc.Client {
  BroadcastRoom(req: { roomId: string; protos: ProtoMsg[] }, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ delivered: number }>): void;
  PushMsg(req: { keys: string[]; proto: ProtoMsg; protoOp: number }, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ delivered: number; missing: string[] }>): void;
  Broadcast(req: { proto: ProtoMsg; protoOp: number; speed: number }, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ delivered: number }>): void;
  BroadcastRooms(req: { rooms: { roomId: string; protos: ProtoMsg[] }[] }, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ delivered: number[] }>): void;
}

interface Waiting {
  proto: ProtoMsg;
  resolve: (r: { delivered: number }) => void;
  reject: (e: unknown) => void;
}

const MAX_PROTOS_PER_CALL = 100;
/** Room for the request's own fields and framing next to the bodies of a batched call. */
const CALL_OVERHEAD_BYTES = 16 * 1024;

export interface CometClientOptions {
  /** PUSH_RPC_TIMEOUT_MS: the deadline of every call. */
  deadlineMs: number;
  /** COMET_GRPC_TOKEN: sent as `authorization: Bearer <token>`. */
  token: string;
  /** COMET_GRPC_TLS_*: null (or absent) for plaintext. */
  tls?: GrpcTlsFiles | null;
  /** COMET_GRPC_MAX_MESSAGE_BYTES: batched calls stay under it (a single larger message still goes, and fails). */
  maxMessageBytes?: number;
}

/** The client options job uses, from its environment (config errors throw ConfigError). */
export function cometClientOptions(env: Env): CometClientOptions {
  return { deadlineMs: env.PUSH_RPC_TIMEOUT_MS, token: cometGrpcToken(env), tls: cometGrpcTls(env), maxMessageBytes: env.COMET_GRPC_MAX_MESSAGE_BYTES };
}

export class CometClients {
  private readonly stubs = new Map<string, CometStub>();
  private readonly roomBatches = new Map<string, { cometId: string; roomId: string; waiting: Waiting[] }>();
  private flushScheduled = false;
  private readonly Ctor: grpc.ServiceClientConstructor;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly deadlineMs: number;
  private readonly batchBytes: number;
  /** The bearer token, copied into each call's metadata (cheaper than an interceptor per call). */
  private readonly metadata: grpc.Metadata;

  constructor(
    private readonly options: CometClientOptions,
    private readonly observe?: GrpcObserver,
  ) {
    const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
    this.Ctor = pkg.ChatRoom.Comet.Comet;
    this.credentials = cometChannelCredentials(options.tls ?? null);
    this.deadlineMs = options.deadlineMs;
    this.batchBytes = Math.max(1, (options.maxMessageBytes ?? 4 * 1024 * 1024) - CALL_OVERHEAD_BYTES);
    this.metadata = bearerMetadata(options.token);
  }

  private stub(cometId: string): CometStub {
    let stub = this.stubs.get(cometId);
    if (!stub) {
      stub = new this.Ctor(cometId, this.credentials) as unknown as CometStub;
      this.stubs.set(cometId, stub);
    }
    return stub;
  }

  private call<T>(cometId: string, method: string, run: (stub: CometStub, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<T>) => void): Promise<T> {
    const started = this.observe ? performance.now() : 0;
    return new Promise((resolve, reject) => {
      run(this.stub(cometId), this.metadata.clone(), { deadline: Date.now() + this.deadlineMs }, (err, res) => {
        this.observe?.(method, !err, (performance.now() - started) / 1000);
        if (err) reject(err);
        else resolve(res as T);
      });
    });
  }

  broadcastRoom(cometId: string, roomId: string, proto: ProtoMsg): Promise<{ delivered: number }> {
    return new Promise((resolve, reject) => {
      const key = `${cometId}\u0000${roomId}`;
      let batch = this.roomBatches.get(key);
      if (!batch) this.roomBatches.set(key, (batch = { cometId, roomId, waiting: [] }));
      batch.waiting.push({ proto, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushRoomBatches());
      }
    });
  }

  private flushRoomBatches(): void {
    this.flushScheduled = false;
    const batches = [...this.roomBatches.values()];
    this.roomBatches.clear();
    for (const { cometId, roomId, waiting } of batches) void this.sendInOrder(cometId, roomId, this.callSized(waiting));
  }

  /** A room's messages keep their order on the comet: a batch split in parts sends them one after another. */
  private async sendInOrder(cometId: string, roomId: string, parts: Waiting[][]): Promise<void> {
    for (const part of parts) {
      await this.call<{ delivered: number }>(cometId, 'BroadcastRoom', (s, m, o, cb) => s.BroadcastRoom({ roomId, protos: part.map((w) => w.proto) }, m, o, cb)).then(
        (reply) => part.forEach((w) => w.resolve(reply)),
        (err) => part.forEach((w) => w.reject(err)),
      );
    }
  }

  /** Consecutive runs of at most MAX_PROTOS_PER_CALL messages whose bodies fit one request. */
  private callSized(waiting: Waiting[]): Waiting[][] {
    return this.roomCallParts(waiting, (w) => w.proto);
  }

  /**
   * Splits a room's messages (in order) into consecutive runs that one BroadcastRoom call may
   * carry: at most MAX_PROTOS_PER_CALL, bodies under COMET_GRPC_MAX_MESSAGE_BYTES.
   */
  roomCallParts<T>(items: readonly T[], protoOf: (item: T) => ProtoMsg): T[][] {
    const parts: T[][] = [];
    let part: T[] = [];
    let bytes = 0;
    for (const w of items) {
      const size = protoOf(w).body?.length ?? 0;
      if (part.length > 0 && (part.length === MAX_PROTOS_PER_CALL || bytes + size > this.batchBytes)) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
      part.push(w);
      bytes += size;
    }
    if (part.length > 0) parts.push(part);
    return parts;
  }

  /** One BroadcastRoom call carrying `protos` in order (a job batch sizes it with roomCallParts). */
  broadcastRoomProtos(cometId: string, roomId: string, protos: ProtoMsg[]): Promise<{ delivered: number }> {
    return this.call<{ delivered: number }>(cometId, 'BroadcastRoom', (s, m, o, cb) => s.BroadcastRoom({ roomId, protos }, m, o, cb));
  }

  /** One BroadcastRooms call: several rooms' messages (each room's in order); `delivered` per room. */
  broadcastRooms(cometId: string, rooms: { roomId: string; protos: ProtoMsg[] }[]): Promise<{ delivered: number[] }> {
    return this.call<{ delivered: number[] }>(cometId, 'BroadcastRooms', (s, m, o, cb) => s.BroadcastRooms({ rooms }, m, o, cb));
  }

  pushMsg(cometId: string, keys: string[], proto: ProtoMsg) {
    return this.call<{ delivered: number; missing: string[] }>(cometId, 'PushMsg', (s, m, o, cb) => s.PushMsg({ keys, proto, protoOp: proto.op ?? OP_MESSAGE }, m, o, cb));
  }

  broadcast(cometId: string, proto: ProtoMsg) {
    return this.call<{ delivered: number }>(cometId, 'Broadcast', (s, m, o, cb) => s.Broadcast({ proto, protoOp: proto.op ?? OP_MESSAGE, speed: 0 }, m, o, cb));
  }

  close(): void {
    for (const stub of this.stubs.values()) stub.close();
    this.stubs.clear();
  }
}
