// `push`: deliver a message through the comets. ROOM: batched with the other room messages
// claimed at the same time (../room-batch.ts): one routing read per room per batch, one
// BroadcastRoom call per comet and room carrying them all. PUSH: the users' connections (read
// for all the user pushes that start together at once), one PushMsg with the keys per node. BROADCAST: every live comet. A failed node is retried with
// backoff without resending to nodes that succeeded; the result records every node's outcome.
// Log lines follow the seed docs ("Room video_123 has 4 connections", ...).
import { setTimeout as delay } from 'node:timers/promises';
import type { ChainableCommander, Redis } from 'ioredis';
import { perSlot } from '../../redis/batch.ts';
import type { RoutingKeys } from '../../routing/keys.ts';
import { RoutingLookup, type Route } from '../../routing/lookup.ts';
import { defineHistoryAppend } from '../../routing/history.ts';
import { PermanentError, type Processor, type TaskContext } from '../processor.ts';
import type { CometClients } from '../comet-clients.ts';
import type { PushDelivery } from '../task-status.ts';
import { messageBody, messageProto, pushPayloadProblem, type PushPayload } from '../../contract/push-message.ts';
import { consumerPrefix, RoomBatcher, type NodeOutcome } from '../room-batch.ts';
import { batchByTurn } from '../turn-batch.ts';
import type { Logger } from '../../util/log.ts';
import type { JobMetrics } from '../metrics.ts';

// The push contract lives in src/contract; re-exported for code that imported it from here.
export { OP_MESSAGE, type PushPayload } from '../../contract/push-message.ts';

export type { NodeOutcome } from '../room-batch.ts';

export interface PushOptions {
  redis: Redis;
  keys: RoutingKeys;
  clients: CometClients;
  /** Attempts per comet node within one task run. */
  nodeAttempts?: number;
  nodeBackoffMs?: number;
  /** A comet silent this long counts as dead: its routing is skipped. */
  deadAfterMs: number;
  history?: { max: number; ttlSeconds: number };
  offline?: { max: number; ttlSeconds: number };
  /** Logger of deliveries made outside a task (status notifications). */
  log?: Logger;
  metrics?: JobMetrics;
}

function parsePayload(payload: unknown): PushPayload {
  const problem = pushPayloadProblem(payload);
  if (problem) throw new PermanentError(problem);
  return payload as PushPayload;
}

export function createPushProcessor(options: PushOptions): Processor & { deliver: PushDelivery } {
  const lookup = new RoutingLookup(options.redis, options.keys);
  defineHistoryAppend(options.redis);
  const attempts = options.nodeAttempts ?? 3;
  const backoff = options.nodeBackoffMs ?? 100;

  // Comets known to have stopped heartbeating, re-read at most once a second: routes to them
  // are skipped. Only the dead are cached, so a comet that just started is never skipped.
  let dead = { readAt: 0, ids: new Set<string>() };
  async function deadComets(): Promise<Set<string>> {
    if (Date.now() - dead.readAt > 1000) {
      dead = { readAt: Date.now(), ids: new Set(await lookup.comets('stale', options.deadAfterMs)) };
    }
    return dead.ids;
  }
  // User pushes that start together read their routing together (two round trips per batch).
  const usersRoutes = batchByTurn(async (lists: string[][]) => {
    const readStarted = performance.now();
    const found = await lookup.usersMany(lists);
    options.metrics?.redis('get_user_connections', (performance.now() - readStarted) / 1000);
    return found;
  });
  const rooms = new RoomBatcher({
    lookup,
    keys: options.keys,
    clients: options.clients,
    deadComets,
    history: options.history && options.history.max > 0 ? options.history : null,
    nodeAttempts: attempts,
    nodeBackoffMs: backoff,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });

  async function send(ctx: TaskContext, prefix: string, route: Route, run: () => Promise<{ delivered: number }>): Promise<NodeOutcome> {
    const outcome: NodeOutcome = { comet: route.cometId, connections: route.count, delivered: 0, attempts: 0, ok: false };
    for (let i = 1; i <= attempts; i++) {
      outcome.attempts = i;
      ctx.log.info(`${prefix} Broadcasting to Comet ${route.cometId} for ${route.count} connections`);
      try {
        outcome.delivered = (await run()).delivered;
        outcome.ok = true;
        delete outcome.error;
        ctx.log.info(`${prefix} Successfully sent to ${route.cometId}`);
        return outcome;
      } catch (err) {
        outcome.error = (err as Error).message;
        ctx.log.warn(`${prefix} RPC failed to ${route.cometId}: ${outcome.error}`);
        if (i < attempts) await delay(backoff * 2 ** (i - 1), undefined, { signal: ctx.signal }).catch(() => {});
      }
    }
    ctx.log.warn(`${prefix} Failed to send to ${route.cometId}`);
    return outcome;
  }

  const never = new AbortController().signal;
  const processor = {
    type: 'push',
    // Its lines say what happened to each message (or batch): `task … completed` goes to debug.
    logsOwnOutcome: true,
    /** A push outside any task (a status notification): same routing, same per-node retries. */
    async deliver(payload: PushPayload, messageId: string) {
      const log = options.log;
      if (!log) throw new Error('createPushProcessor: deliver() needs options.log');
      return run({ id: messageId, type: 'push', priority: 5, attempt: 1, payload, hash: {}, signal: never, log, progress() {} }, true);
    },
    process: (ctx: TaskContext) => run(ctx, false),
  };
  return processor;

  /** One push; room messages join the current batch (notification: a status message, not a task). */
  async function run(ctx: TaskContext, notification: boolean) {
    const push = parsePayload(ctx.payload);
    const seq = Number(ctx.hash.seq ?? 0);
    // Built once by the push contract (which drops a caller's id/seq: DESIGN §4); the same text
    // goes to history, offline lists and comets.
    const json = messageBody(ctx.id, seq, push.message);
    const proto = messageProto(ctx.id, seq, json);
    if (push.mode === 'room') return rooms.deliver({ ctx, roomId: push.roomId!, seq, json, proto, notification });
    const prefix = consumerPrefix(ctx.log);
    let routes: Route[];
    let total: number;
    if (push.mode === 'broadcast') {
      const comets = await lookup.comets('alive', options.deadAfterMs);
      routes = comets.map((cometId) => ({ cometId, count: 0, connIds: [], userIds: [] }));
      total = 0;
    } else {
      const found = await usersRoutes(push.userIds!);
      if (options.offline && options.offline.max > 0) {
        const online = new Set(found.byComet.flatMap((r) => r.userIds));
        const offline = push.userIds!.filter((u) => !online.has(u));
        if (offline.length > 0) {
          const max = options.offline.max;
          const ttl = options.offline.ttlSeconds;
          // One pipeline per slot: on a cluster each user's keys are a slot of their own.
          await perSlot(
            options.redis,
            offline.map((user) => {
              const key = options.keys.userOffline(user);
              return { key, add: (p: ChainableCommander) => p.lpush(key, json).ltrim(key, 0, max - 1).expire(key, ttl) };
            }),
          );
          ctx.log.info(`Stored for ${offline.length} offline users: ${offline.join(',')}`);
        }
      }
      const gone = await deadComets();
      // Routing of a comet that stopped heartbeating is skipped (its connections are gone).
      routes = found.byComet.filter((r) => !gone.has(r.cometId));
      total = found.total;
      ctx.log.info(`Users ${push.userIds!.join(',')} have ${total} connections`);
      ctx.log.info(`Grouped ${routes.reduce((n, r) => n + r.count, 0)} connections into ${routes.length} comet nodes`);
    }
    const outcomes = await Promise.all(
      routes.map((route) =>
        send(ctx, prefix, route, () =>
          push.mode === 'users' ? options.clients.pushMsg(route.cometId, route.connIds, proto) : options.clients.broadcast(route.cometId, proto),
        ),
      ),
    );
    if (options.metrics) for (const o of outcomes) options.metrics.dispatched(o.comet, o.ok);
    const sent = outcomes.filter((o) => o.ok).reduce((n, o) => n + (push.mode === 'broadcast' ? o.delivered : o.connections), 0);
    const failed = outcomes.filter((o) => !o.ok).reduce((n, o) => n + o.connections, 0);
    ctx.log.info(`${prefix} Message distributed: sent=${sent}, failed=${failed}, comet_nodes=${outcomes.length}`);
    return { sent, failed, comet_nodes: outcomes.length, connections: total, nodes: outcomes };
  }
}
