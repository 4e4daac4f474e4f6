// The comet's in-memory view of its sockets: by connection, room and user. Room messages are
// framed once and the same bytes written to every local socket of the room. A batch (one gRPC
// call's messages) is one frame per socket — an array frame, split at COMET_MAX_FRAME_BYTES.
// With COMET_BATCH_MS the first batch of a quiet room goes out at the end of the current turn
// (no added wait) and later ones within the window join it.
// A slow consumer is a socket whose send buffer stays above COMET_MAX_BUFFER_BYTES for
// COMET_SLOW_CONSUMER_MS (or passes the hard cap, HARD_CAP_FACTOR times the limit, at any time):
// it is closed with 4008 and counted — never an unbounded queue, never a silent drop. One big
// frame to a socket that keeps up is not a slow consumer.
import type { WebSocket } from 'ws';
import { CLOSE, serverMessagesFrame, serverMessagesFrames, type ServerMessage } from './frames.ts';
import { RecentIds } from './recent-ids.ts';
import { TextFrame } from './text-frame.ts';

export interface Conn {
  id: string;
  userId: string;
  roomId: string;
  ws: WebSocket;
  /** Since when (ms) its send buffer has been above the limit; 0 while it is not. */
  overSince: number;
}

export interface HubOptions {
  batchMs: number;
  maxBufferBytes: number;
  /** Batches are split into frames of at most this many bytes. */
  maxFrameBytes: number;
  /** How long a send buffer may stay above maxBufferBytes. */
  slowConsumerMs: number;
  onSlowConsumer?: (conn: Conn) => void;
}

/** Buffered bytes above this many times the limit close a socket at once: memory stays bounded. */
export const HARD_CAP_FACTOR = 8;

interface RoomWindow {
  /** Payloads of the messages waiting, in order. */
  payloads: Buffer[];
}

export class Hub {
  readonly conns = new Map<string, Conn>();
  readonly rooms = new Map<string, Set<Conn>>();
  /** Rooms inside their batch window, with the frames waiting for its end. */
  private readonly pending = new Map<string, RoomWindow>();
  private readonly recent = new RecentIds(100_000);
  slowConsumerCloses = 0;
  duplicatesDropped = 0;
  /** Frames and bytes written to sockets (a frame sent to n sockets counts n times). */
  framesSent = 0;
  bytesSent = 0;

  constructor(private readonly options: HubOptions) {}

  add(conn: Conn): void {
    this.conns.set(conn.id, conn);
    let room = this.rooms.get(conn.roomId);
    if (!room) this.rooms.set(conn.roomId, (room = new Set()));
    room.add(conn);
  }

  remove(conn: Conn): void {
    this.conns.delete(conn.id);
    const room = this.rooms.get(conn.roomId);
    room?.delete(conn);
    if (room && room.size === 0) this.rooms.delete(conn.roomId);
  }

  private repeat(scope: string, message: ServerMessage): boolean {
    if (message.id === undefined || this.recent.firstTime(scope, message.id)) return false;
    this.duplicatesDropped++;
    return true;
  }

  /** Queue a batch of messages (in order) for a room; returns how many local sockets it will reach. */
  publishRoom(roomId: string, messages: readonly ServerMessage[]): number {
    const room = this.rooms.get(roomId);
    if (!room || room.size === 0) return 0;
    // A redelivered message (job retried) was already sent to this room: send nothing again.
    const payloads: Buffer[] = [];
    for (const message of messages) if (!this.repeat(`room:${roomId}`, message)) payloads.push(message.payload);
    if (payloads.length === 0) return room.size;
    if (this.options.batchMs <= 0) {
      this.writeRoom(roomId, payloads);
      return room.size;
    }
    const window = this.pending.get(roomId);
    if (window) {
      window.payloads.push(...payloads);
    } else {
      // A quiet room: send at the end of this turn, so messages of the same gRPC call or the same
      // read still share one frame, then open the window.
      const opened: RoomWindow = { payloads };
      this.pending.set(roomId, opened);
      setImmediate(() => this.flushRoom(roomId, opened));
    }
    return room.size;
  }

  pushTo(connIds: readonly string[], message: ServerMessage): { delivered: number; missing: string[] } {
    const targets = new Set<Conn>();
    const missing: string[] = [];
    for (const id of connIds) {
      const conn = this.conns.get(id);
      if (!conn) missing.push(id);
      else if (!this.repeat(`conn:${id}`, message)) targets.add(conn);
    }
    return { delivered: targets.size > 0 ? this.write(targets, serverMessagesFrame([message.payload])) : 0, missing };
  }

  broadcast(message: ServerMessage): number {
    if (this.repeat('all', message)) return this.conns.size;
    return this.write(this.conns.values(), serverMessagesFrame([message.payload]));
  }

  /** A frame for one connection (replies). */
  sendTo(conn: Conn, frame: string): void {
    this.write([conn], frame);
  }

  /**
   * A frame for one connection, resolved once it was handed to the kernel (true) or could not
   * be written (false: closed). History and offline messages go one bounded frame at a time.
   */
  sendFlushed(conn: Conn, text: string): Promise<boolean> {
    return new Promise((resolve) => {
      const frame = new TextFrame(text);
      if (!this.admit(conn, Date.now())) return resolve(false);
      this.count(frame);
      frame.writeTo(conn.ws, (err) => resolve(!err));
    });
  }

  /** Closes the socket if its buffer has stayed above the limit too long (the ping sweep asks). */
  closeIfSlow(conn: Conn, now = Date.now()): boolean {
    return conn.ws.readyState === conn.ws.OPEN && !this.admit(conn, now);
  }

  /** Send everything still waiting in batch windows (before shutdown). */
  flushAll(): void {
    // Their timers find the window gone and do nothing.
    for (const [roomId, window] of this.pending) {
      this.pending.delete(roomId);
      this.writeRoom(roomId, window.payloads);
    }
  }

  /** End of a window: write what gathered and open the next window, or close it when idle. */
  private flushRoom(roomId: string, window: RoomWindow): void {
    if (this.pending.get(roomId) !== window) return;
    if (window.payloads.length === 0) {
      this.pending.delete(roomId);
      return;
    }
    const payloads = window.payloads;
    window.payloads = [];
    setTimeout(() => this.flushRoom(roomId, window), this.options.batchMs);
    this.writeRoom(roomId, payloads);
  }

  private writeRoom(roomId: string, payloads: readonly Buffer[]): void {
    const room = this.rooms.get(roomId);
    if (!room || payloads.length === 0) return;
    // Split at the byte bound: a big batch is several frames, never one that fills a buffer.
    for (const frame of serverMessagesFrames(payloads, this.options.maxFrameBytes)) this.write(room, frame);
  }

  /** Writes one frame to every open socket given; returns how many it was written to. */
  private write(conns: Iterable<Conn>, text: string | Buffer): number {
    // One frame for all sockets: encoded and framed once, not once per socket.
    const frame = new TextFrame(text);
    let now = 0;
    let written = 0;
    for (const conn of conns) {
      const ws = conn.ws;
      if (ws.readyState !== ws.OPEN) continue;
      // The clock is read only when some buffer is over the limit: the hot path stays lean.
      if (ws.bufferedAmount > this.options.maxBufferBytes || conn.overSince !== 0) {
        if (!this.admit(conn, (now ||= Date.now()))) continue;
      }
      frame.writeTo(ws);
      this.count(frame);
      written++;
    }
    return written;
  }

  /**
   * Whether a frame may be added to the socket's buffer; closes the socket (4008, counted) if it
   * is a slow consumer: buffered bytes above the limit for the whole window, or above the hard
   * cap. What is already buffered decides, so a single large frame to a socket that keeps up
   * always goes out.
   */
  private admit(conn: Conn, now: number): boolean {
    const ws = conn.ws;
    if (ws.readyState !== ws.OPEN) return false;
    const buffered = ws.bufferedAmount;
    const limit = this.options.maxBufferBytes;
    if (buffered <= limit) {
      conn.overSince = 0;
      return true;
    }
    if (conn.overSince === 0) conn.overSince = now;
    const overFor = now - conn.overSince;
    if (buffered <= limit * HARD_CAP_FACTOR && overFor < this.options.slowConsumerMs) return true;
    this.slowConsumerCloses++;
    this.options.onSlowConsumer?.(conn);
    const why = buffered > limit * HARD_CAP_FACTOR ? `more than ${limit * HARD_CAP_FACTOR} bytes` : `more than ${limit} bytes for ${overFor} ms`;
    ws.close(CLOSE.slowConsumer, `slow consumer: ${why} waiting to be sent`);
    // Out of the rooms now, not when the close handshake ends: no later frame is queued for it
    // and no `delivered` count includes it.
    this.remove(conn);
    return false;
  }

  private count(frame: TextFrame): void {
    this.framesSent++;
    this.bytesSent += frame.length;
  }
}

