// Room messages claimed together are delivered together (issue 11, goim's "Job 批量消费, 合并推送").
// Every room push task that begins in the same event-loop turn (the tasks of one claim, or of
// several claims answered in one read) joins one batch, flushed with setImmediate: there is no
// waiting window, so at low rates a batch is one message and nothing waits. Per batch:
//   - one pipelined Redis round trip reads every room's routing (SCARD + HGETALL of the comets'
//     tally) and appends the room's messages to its history (one script call per room:
//     ../routing/history.ts);
//   - per comet, ONE call carries all the batch's messages for it, each room's in seq order
//     (split only past 100 messages or the gRPC size limit), through that comet's lane
//     (./room-lanes.ts: one call in flight, retries included; later batches join the next call;
//     BroadcastRoom for one room, BroadcastRooms for several);
//   - each task's promise resolves with its own result once every comet it needed answered
//     (or failed after its retries), so settlement (Consumer.flush, batched) still follows delivery.
// So within one job process a connection gets a room's messages in claim order, which is seq order
// for messages of one priority (docs/realtime.md says what holds across processes).
import type { ChainableCommander } from 'ioredis';
import type { ProtoMsg } from '../contract/comet-proto.ts';
import type { RoutingKeys } from '../routing/keys.ts';
import type { RoutingLookup, Routes } from '../routing/lookup.ts';
import type { Logger } from '../util/log.ts';
import type { CometClients } from './comet-clients.ts';
import type { JobMetrics } from './metrics.ts';
import type { TaskContext } from './processor.ts';
import { RoomLanes } from './room-lanes.ts';
import { appendHistory, type HistoryEntry } from '../routing/history.ts';

/** One comet's part in delivering a message (kept in the task's result, `nodes`). */
export interface NodeOutcome {
  comet: string;
  connections: number;
  delivered: number;
  attempts: number;
  ok: boolean;
  error?: string;
}

export interface PushResult {
  sent: number;
  failed: number;
  comet_nodes: number;
  connections: number;
  nodes: NodeOutcome[];
}

/** A room message ready to go: its task, seq, the JSON clients get and its Proto. */
export interface RoomMessage {
  ctx: TaskContext;
  roomId: string;
  seq: number;
  json: string;
  proto: ProtoMsg;
  /**
   * A status notification (no task of its own, logged at warn only): grouped apart from the
   * room's task messages, so it never takes the place of a task's seed log lines.
   */
  notification?: boolean;
}

export interface RoomBatchOptions {
  lookup: RoutingLookup;
  keys: RoutingKeys;
  clients: CometClients;
  /** Comets known to have stopped heartbeating (cached by the caller). */
  deadComets: () => Promise<Set<string>>;
  history: { max: number; ttlSeconds: number } | null;
  nodeAttempts: number;
  nodeBackoffMs: number;
  metrics?: JobMetrics;
}

interface Waiting {
  message: RoomMessage;
  resolve: (result: PushResult) => void;
  reject: (err: unknown) => void;
}

/** The "[Consumer 2]" prefix of the seed's log lines; pino's bindings() parses JSON, so once per room group or task. */
export function consumerPrefix(log: Logger): string {
  return `[Consumer ${log.bindings().consumer ?? '?'}]`;
}

export class RoomBatcher {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private readonly lanes: RoomLanes;

  constructor(private readonly options: RoomBatchOptions) {
    const metrics = options.metrics;
    this.lanes = new RoomLanes(options.clients, options.nodeAttempts, options.nodeBackoffMs, metrics ? (n) => metrics.pushBatch('grpc_call', n) : undefined);
  }

  /** Resolves once every comet holding the room's connections acknowledged the message (or failed for good). */
  deliver(message: RoomMessage): Promise<PushResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.waiting;
    this.waiting = [];
    this.run(batch).catch((err: unknown) => {
      // The routing read failed (Redis away): every task of the batch retries as it would alone.
      for (const w of batch) w.reject(err);
    });
  }

  private async run(batch: Waiting[]): Promise<void> {
    const { lookup, keys, history, metrics } = this.options;
    metrics?.pushBatch('routing', batch.length);
    const rooms = new Map<string, Waiting[]>();
    for (const w of batch) {
      const key = w.message.notification ? `${w.message.roomId}\u0000notification` : w.message.roomId;
      const list = rooms.get(key);
      if (list) list.push(w);
      else rooms.set(key, [w]);
    }
    // Seq order is delivery order; a batch mixing priorities of one room is put back in seq order.
    for (const list of rooms.values()) list.sort((a, b) => a.message.seq - b.message.seq);
    const groups = [...rooms.values()].map((list) => [list[0]!.message.roomId, list] as const);
    const readStarted = performance.now();
    const [found, gone] = await Promise.all([
      lookup.rooms(
        groups.map(([roomId, list]) => ({
          roomId,
          // Recorded before delivery, in the routing read's round trip, so a client that misses a
          // message can recover it by seq. Messages without a seq (status notifications) are not kept.
          alongside: (p: ChainableCommander) => {
            if (!history) return;
            const entries: HistoryEntry[] = [];
            for (const { message: m } of list) if (m.seq) entries.push({ seq: m.seq, id: m.ctx.id, body: m.json });
            if (entries.length > 0) appendHistory(p, keys.roomHistory(roomId), history, entries);
          },
        })),
      ),
      this.options.deadComets(),
    ]);
    metrics?.redis('get_room_connections', (performance.now() - readStarted) / 1000);
    await Promise.all(groups.map(([roomId, list], i) => this.deliverRoom(roomId, list, found[i]!.routes, gone)));
  }

  private async deliverRoom(roomId: string, list: Waiting[], found: Routes, gone: Set<string>): Promise<void> {
    const { metrics } = this.options;
    metrics?.roomConnections(found.total);
    // Routing of a comet that stopped heartbeating is skipped (its connections are gone).
    const routes = found.byComet.filter((r) => !gone.has(r.cometId));
    const grouped = routes.reduce((n, r) => n + r.count, 0);
    const log = list[0]!.message.ctx.log;
    const prefix = consumerPrefix(log);
    // One message: the seed's lines at info, as before batching. Several: one summary line at info
    // and the per-message lines at debug.
    const single = list.length === 1;
    const perMessage = single || log.isLevelEnabled('debug');
    if (perMessage) {
      const say = single ? (line: string) => log.info(line) : (line: string) => log.debug(line);
      say(`Room ${roomId} has ${found.total} connections`);
      say(`Grouped ${grouped} connections into ${routes.length} comet nodes`);
    }
    // Per comet, each message's call (a lane may carry it with messages of other batches).
    const perComet = await Promise.all(
      routes.map((route) =>
        this.lanes.sendAll(
          route.cometId,
          list.map((w) => ({ roomId, proto: w.message.proto, ctx: w.message.ctx, connections: route.count, prefix, single })),
        ),
      ),
    );
    const calls = new Set(perComet.flat().map((o) => o.call)).size;
    let sentAll = 0;
    let failedAll = 0;
    list.forEach((w, i) => {
      const nodes: NodeOutcome[] = routes.map((route, c) => {
        const call = perComet[c]![i]!;
        metrics?.dispatched(route.cometId, call.ok);
        return { comet: route.cometId, connections: route.count, delivered: call.delivered, attempts: call.attempts, ok: call.ok, ...(call.error ? { error: call.error } : {}) };
      });
      let sent = 0;
      let failed = 0;
      for (const o of nodes) {
        if (o.ok) sent += o.connections;
        else failed += o.connections;
      }
      sentAll += sent;
      failedAll += failed;
      if (perMessage) {
        const line = `${prefix} Message distributed: sent=${sent}, failed=${failed}, comet_nodes=${nodes.length}`;
        if (single) log.info(line);
        else w.message.ctx.log.debug(line);
      }
      w.resolve({ sent, failed, comet_nodes: nodes.length, connections: found.total, nodes });
    });
    if (!single) {
      const first = list[0]!.message.seq;
      const last = list[list.length - 1]!.message.seq;
      log.info(
        `${prefix} Room ${roomId}: ${list.length} messages${first ? ` (seq ${first}..${last})` : ''} to ${found.total} connections on ${routes.length} comet nodes in ${calls} gRPC calls: sent=${sentAll}, failed=${failedAll}`,
      );
    }
  }
}
