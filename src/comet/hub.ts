// The comet's in-memory view of its sockets: by connection, room and user. Room messages are
// encoded once and written to every local socket of the room, at most one frame per room per
// COMET_BATCH_MS: the first message of a quiet room goes out at the end of the current turn
// (no added wait), later ones within the window are joined into one array frame. A socket whose send buffer passes the limit is closed with 4008
// and counted: never an unbounded queue, never a silent drop.
import type { WebSocket } from 'ws';
import { batchFrame, CLOSE, type ServerMessage } from './frames.ts';
import { RecentIds } from './recent-ids.ts';
import { TextFrame } from './text-frame.ts';

export interface Conn {
  id: string;
  userId: string;
  roomId: string;
  ws: WebSocket;
}

export interface HubOptions {
  batchMs: number;
  maxBufferBytes: number;
  onSlowConsumer?: (conn: Conn) => void;
}

interface RoomWindow {
  frames: string[];
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

  /** Queue a frame for a room; returns how many local sockets it will reach. */
  publishRoom(roomId: string, message: ServerMessage): number {
    const room = this.rooms.get(roomId);
    if (!room || room.size === 0) return 0;
    // A redelivered message (job retried) was already sent to this room: send nothing again.
    if (this.repeat(`room:${roomId}`, message)) return room.size;
    const frame = message.frame;
    if (this.options.batchMs <= 0) {
      this.write(room, frame);
      return room.size;
    }
    const window = this.pending.get(roomId);
    if (window) {
      window.frames.push(frame);
    } else {
      // A quiet room: send at the end of this turn, so messages of the same gRPC call or the same
      // read still share one frame, then open the window.
      const opened: RoomWindow = { frames: [frame] };
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
    this.write(targets, message.frame);
    return { delivered: targets.size, missing };
  }

  broadcast(message: ServerMessage): number {
    if (!this.repeat('all', message)) this.write(this.conns.values(), message.frame);
    return this.conns.size;
  }

  /** A frame for one connection (replies, history, offline messages). */
  sendTo(conn: Conn, frame: string): void {
    this.write([conn], frame);
  }

  /** Send everything still waiting in batch windows (before shutdown). */
  flushAll(): void {
    // Their timers find the window gone and do nothing.
    for (const [roomId, window] of this.pending) {
      this.pending.delete(roomId);
      this.writeRoom(roomId, window.frames);
    }
  }

  /** End of a window: write what gathered and open the next window, or close it when idle. */
  private flushRoom(roomId: string, window: RoomWindow): void {
    if (this.pending.get(roomId) !== window) return;
    if (window.frames.length === 0) {
      this.pending.delete(roomId);
      return;
    }
    const frames = window.frames;
    window.frames = [];
    setTimeout(() => this.flushRoom(roomId, window), this.options.batchMs);
    this.writeRoom(roomId, frames);
  }

  private writeRoom(roomId: string, frames: string[]): void {
    const room = this.rooms.get(roomId);
    if (room && frames.length > 0) this.write(room, batchFrame(frames));
  }

  private write(conns: Iterable<Conn>, text: string): void {
    // One frame for all sockets: encoded and framed once, not once per socket.
    const frame = new TextFrame(text);
    for (const conn of conns) {
      const ws = conn.ws;
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount + frame.length > this.options.maxBufferBytes) {
        this.slowConsumerCloses++;
        this.options.onSlowConsumer?.(conn);
        ws.close(CLOSE.slowConsumer, `slow consumer: more than ${this.options.maxBufferBytes} bytes waiting to be sent`);
        continue;
      }
      frame.writeTo(ws);
      this.framesSent++;
      this.bytesSent += frame.length;
    }
  }
}
