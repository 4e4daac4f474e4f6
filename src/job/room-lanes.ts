// One lane per comet in a job process: at most one room call is in flight to a comet, and
// whatever arrives meanwhile (later batches, any room) waits and goes in the next call, in
// arrival order. That keeps each room's order on every connection within this process (a retried
// call is never overtaken by a later one) and makes calls bigger exactly when a comet is slow,
// without any waiting window when it is not. A call holding one room is a BroadcastRoom (what goim
// callers use); several rooms go in one BroadcastRooms (a comet too old for it gets one
// BroadcastRoom per room). A failed call is retried with backoff to this comet only; other comets
// have lanes of their own and are never sent the same message again.
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { ProtoMsg } from '../contract/comet-proto.ts';
import type { CometClients } from './comet-clients.ts';
import type { TaskContext } from './processor.ts';

export interface LaneMessage {
  roomId: string;
  proto: ProtoMsg;
  /** Its task: the log to write to, and the signal that says nobody waits for it any more. */
  ctx: TaskContext;
  /** The room's connections on this comet (for the seed's "Broadcasting to Comet … for N connections"). */
  connections: number;
  /** "[Consumer 2]" of the seed's lines. */
  prefix: string;
  /** The only message of its room in its batch: its call's lines are logged at info. */
  single: boolean;
}

/** How the call that carried a message went. */
export interface CallOutcome {
  /** Which call (the same number for every message it carried). */
  call: number;
  /** The comet's answer for the message's room. */
  delivered: number;
  attempts: number;
  ok: boolean;
  error?: string;
}

interface Queued {
  message: LaneMessage;
  resolve: (outcome: CallOutcome) => void;
}

export class RoomLanes {
  /** Comets with a call in flight → the messages waiting for the next call. */
  private readonly waiting = new Map<string, Queued[]>();
  /** Comets that answered BroadcastRooms with UNIMPLEMENTED (an older comet): one call per room. */
  private readonly oneRoomPerCall = new Set<string>();
  private calls = 0;

  constructor(
    private readonly clients: CometClients,
    private readonly attempts: number,
    private readonly backoffMs: number,
    /** Told how many messages each call carries (the batch-size metric). */
    private readonly onCall?: (messages: number) => void,
  ) {}

  /**
   * A room's messages of one batch, in order: resolves with each one's call outcome once every
   * call that carried them answered (one promise for the list, not one per message; never rejects).
   */
  sendAll(cometId: string, messages: readonly LaneMessage[]): Promise<CallOutcome[]> {
    return new Promise((resolve) => {
      const outcomes: CallOutcome[] = new Array(messages.length);
      let left = messages.length;
      messages.forEach((message, i) =>
        this.enqueue(cometId, {
          message,
          resolve: (outcome) => {
            outcomes[i] = outcome;
            if (--left === 0) resolve(outcomes);
          },
        }),
      );
    });
  }

  private enqueue(cometId: string, item: Queued): void {
    const queued = this.waiting.get(cometId);
    if (queued) {
      queued.push(item);
      return;
    }
    this.waiting.set(cometId, [item]);
    // After this turn, so every message of the batch (and of other batches of this turn) joins.
    setImmediate(() => void this.pump(cometId));
  }

  private async pump(cometId: string): Promise<void> {
    for (;;) {
      const queued = this.waiting.get(cometId)!;
      if (queued.length === 0) {
        this.waiting.delete(cometId);
        return;
      }
      this.waiting.set(cometId, []);
      for (const part of this.clients.roomCallParts(queued, (q) => q.message.proto)) await this.call(cometId, part);
    }
  }

  private async call(cometId: string, part: Queued[]): Promise<void> {
    const messages = part.map((q) => q.message);
    const rooms = new Map<string, ProtoMsg[]>();
    for (const m of messages) {
      const protos = rooms.get(m.roomId);
      if (protos) protos.push(m.proto);
      else rooms.set(m.roomId, [m.proto]);
    }
    const first = messages[0]!;
    const log = first.ctx.log;
    const seedLines = messages.length === 1 && first.single;
    const what = messages.length > 1 ? ` (${messages.length} messages${rooms.size > 1 ? `, ${rooms.size} rooms` : ''})` : '';
    const call = ++this.calls;
    this.onCall?.(messages.length);
    let delivered = new Map<string, number>();
    let outcome: Omit<CallOutcome, 'delivered'> = { call, attempts: 0, ok: false };
    for (let i = 1; i <= this.attempts; i++) {
      outcome.attempts = i;
      if (seedLines) log.info(`${first.prefix} Broadcasting to Comet ${cometId} for ${first.connections} connections`);
      else if (log.isLevelEnabled('debug')) log.debug(`${first.prefix} Broadcasting to Comet ${cometId}${what}`);
      try {
        delivered = await this.deliver(cometId, rooms);
        outcome = { call, attempts: i, ok: true };
        if (seedLines) log.info(`${first.prefix} Successfully sent to ${cometId}`);
        else if (log.isLevelEnabled('debug')) log.debug(`${first.prefix} Successfully sent to ${cometId}${what}`);
        break;
      } catch (err) {
        outcome.error = (err as Error).message;
        log.warn(`${first.prefix} RPC failed to ${cometId}${what}: ${outcome.error}`);
        // Every task of the call lost its lease or is shutting down: nobody waits for a retry.
        if (messages.every((m) => m.ctx.signal.aborted)) break;
        if (i < this.attempts) await delay(this.backoffMs * 2 ** (i - 1));
      }
    }
    if (!outcome.ok) log.warn(`${first.prefix} Failed to send to ${cometId}${what}`);
    for (const q of part) q.resolve({ ...outcome, delivered: delivered.get(q.message.roomId) ?? 0 });
  }

  /** The rooms' messages to the comet in one call (BroadcastRoom for one room); what it delivered per room. */
  private async deliver(cometId: string, rooms: Map<string, ProtoMsg[]>): Promise<Map<string, number>> {
    const entries = [...rooms];
    if (entries.length > 1 && !this.oneRoomPerCall.has(cometId)) {
      try {
        const reply = await this.clients.broadcastRooms(cometId, entries.map(([roomId, protos]) => ({ roomId, protos })));
        return new Map(entries.map(([roomId], i) => [roomId, reply.delivered[i] ?? 0]));
      } catch (err) {
        if ((err as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) throw err;
        this.oneRoomPerCall.add(cometId);
      }
    }
    const delivered = new Map<string, number>();
    for (const [roomId, protos] of entries) delivered.set(roomId, (await this.clients.broadcastRoomProtos(cometId, roomId, protos)).delivered);
    return delivered;
  }
}
