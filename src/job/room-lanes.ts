// One lane per (comet, room) in a job process: at most one BroadcastRoom call of a room is in
// flight to a comet, and whatever arrives meanwhile (later batches of the same room) waits and
// goes in the next call, in arrival order. That keeps a room's order on each connection within
// this process (a retried call is never overtaken by a later one) and makes batches bigger
// exactly when a comet is slow, without any waiting window when it is not. A failed call is
// retried with backoff to this comet only; other comets have lanes of their own and are never
// sent the same message again.
import { setTimeout as delay } from 'node:timers/promises';
import type { ProtoMsg } from '../comet/proto.ts';
import type { CometClients } from './comet-clients.ts';
import type { TaskContext } from './processor.ts';

export interface LaneMessage {
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

/** How the call that carried a message went (shared by every message of the call). */
export interface CallOutcome {
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
  /** Lanes with a call in flight → the messages waiting for the next call. */
  private readonly waiting = new Map<string, Queued[]>();

  constructor(
    private readonly clients: CometClients,
    private readonly attempts: number,
    private readonly backoffMs: number,
  ) {}

  /** Resolves with the outcome of the call that carried the message (never rejects). */
  send(cometId: string, roomId: string, message: LaneMessage): Promise<CallOutcome> {
    return new Promise((resolve) => {
      const key = `${cometId}\u0000${roomId}`;
      const queued = this.waiting.get(key);
      if (queued) {
        queued.push({ message, resolve });
        return;
      }
      this.waiting.set(key, [{ message, resolve }]);
      // After this turn, so every message of the batch (and of other batches of this turn) joins.
      setImmediate(() => void this.pump(key, cometId, roomId));
    });
  }

  private async pump(key: string, cometId: string, roomId: string): Promise<void> {
    for (;;) {
      const queued = this.waiting.get(key)!;
      if (queued.length === 0) {
        this.waiting.delete(key);
        return;
      }
      this.waiting.set(key, []);
      for (const part of this.clients.roomCallParts(queued, (q) => q.message.proto)) {
        const outcome = await this.call(cometId, roomId, part.map((q) => q.message));
        for (const q of part) q.resolve(outcome);
      }
    }
  }

  private async call(cometId: string, roomId: string, messages: LaneMessage[]): Promise<CallOutcome> {
    const first = messages[0]!;
    const log = first.ctx.log;
    const seedLines = messages.length === 1 && first.single;
    const count = messages.length > 1 ? ` (${messages.length} messages)` : '';
    const outcome: CallOutcome = { delivered: 0, attempts: 0, ok: false };
    for (let i = 1; i <= this.attempts; i++) {
      outcome.attempts = i;
      if (seedLines) log.info(`${first.prefix} Broadcasting to Comet ${cometId} for ${first.connections} connections`);
      else if (log.isLevelEnabled('debug')) log.debug(`${first.prefix} Broadcasting to Comet ${cometId}${count}`);
      try {
        outcome.delivered = (await this.clients.broadcastRoomProtos(cometId, roomId, messages.map((m) => m.proto))).delivered;
        outcome.ok = true;
        delete outcome.error;
        if (seedLines) log.info(`${first.prefix} Successfully sent to ${cometId}`);
        else if (log.isLevelEnabled('debug')) log.debug(`${first.prefix} Successfully sent to ${cometId}${count}`);
        return outcome;
      } catch (err) {
        outcome.error = (err as Error).message;
        log.warn(`${first.prefix} RPC failed to ${cometId}${count}: ${outcome.error}`);
        // Every task of the call lost its lease or is shutting down: nobody waits for a retry.
        if (messages.every((m) => m.ctx.signal.aborted)) break;
        if (i < this.attempts) await delay(this.backoffMs * 2 ** (i - 1));
      }
    }
    log.warn(`${first.prefix} Failed to send to ${cometId}${count}`);
    return outcome;
  }
}
