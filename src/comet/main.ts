// Composition root of `pushline comet`: config → Redis → clean up the previous run's routing
// → hub → WebSocket server → gRPC server → heartbeat; on stop, the reverse order.
import type { AddressInfo } from 'node:net';
import type { Env } from '../config/schema.ts';
import { authSecret, cometGrpcTls, cometGrpcToken } from '../config/load.ts';
import { connectAtStart, createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
import { routingKeys } from '../routing/keys.ts';
import { RoutingRegistry } from '../routing/registry.ts';
import type { Logger } from '../util/log.ts';
import { cometServerCredentials } from '../contract/comet-grpc-credentials.ts';
import { chatMessage, encodePushPayload, pushPayload, roomTarget } from '../contract/push-message.ts';
import { bindGrpc, createCometGrpcServer } from './grpc-server.ts';
import { cometMetrics } from './metrics.ts';
import { probeRedis } from '../metrics/common.ts';
import { createRegistry } from '../metrics/registry.ts';
import { Hub } from './hub.ts';
import { coalesce } from '../util/coalesce.ts';
import { offlineStore } from './offline.ts';
import { createWsServer, type CometServices } from './ws-server.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
import { TaskQueue } from '../queue/task-queue.ts';
import { createBackend } from '../queue/backends/index.ts';

export interface CometHandle {
  cometId: string;
  wsPort: number;
  grpcPort: number;
  hub: Hub;
  stop(): Promise<void>;
}

export async function startComet(env: Env, log: Logger): Promise<CometHandle> {
  const secret = authSecret(env);
  const grpcOptions = { token: cometGrpcToken(env), maxMessageBytes: env.COMET_GRPC_MAX_MESSAGE_BYTES };
  const grpcCredentials = cometServerCredentials(cometGrpcTls(env));
  const target = redisTarget(env);
  const redis = createRedis(target, 'command', 'pushline-comet');
  await connectAtStart(redis);
  log.info(`Connected to Redis: ${describeTarget(target)}`);
  const keys = routingKeys(env.REDIS_KEY_PREFIX, Boolean(env.REDIS_CLUSTER_NODES));
  const registry = new RoutingRegistry(redis, keys, env.USER_ONLINE_TTL_SECONDS);

  const hub = new Hub({
    batchMs: env.COMET_BATCH_MS,
    maxBufferBytes: env.COMET_MAX_BUFFER_BYTES,
    maxFrameBytes: env.COMET_MAX_FRAME_BYTES,
    slowConsumerMs: env.COMET_SLOW_CONSUMER_MS,
    onSlowConsumer: (conn) => log.warn({ conn: conn.id, user: conn.userId }, 'closing a slow consumer'),
  });
  const metricsRegistry = createRegistry('comet');
  const metrics = cometMetrics(metricsRegistry, hub);
  const stopProbe = probeRedis(redis, metrics.redis);
  const grpcServer = createCometGrpcServer(hub, log, grpcOptions, metrics.grpc);
  const grpcPort = await bindGrpc(grpcServer, env.COMET_HOST, env.COMET_GRPC_PORT, grpcCredentials);
  const cometId = env.COMET_ID ?? `localhost:${grpcPort}`;

  // A restarted comet first removes whatever its previous run left in the routing keys.
  const stale = await registry.purgeComet(cometId);
  if (stale > 0) log.info({ stale }, `removed ${stale} connections left by a previous run of ${cometId}`);

  const queue = new TaskQueue(redis, keysFromEnv(env), queueOptionsFromEnv(env));
  // Clients' upstream messages go where the job consumes (QUEUE_BACKEND); the Redis engine is the
  // queue itself, the others load only when chosen.
  const backend = env.QUEUE_BACKEND === 'redis' ? null : await createBackend(env, queue, () => createRedis(target, 'command', 'pushline-comet-backend'), log);
  const submit = backend ?? queue;
  const offline = offlineStore(redis, keys);
  const services: CometServices = {
    async history(roomId, sinceSeq) {
      const entries = await redis.xrevrange(keys.roomHistory(roomId), '+', '-', 'COUNT', env.ROOM_HISTORY_MAX || 1);
      const found: { seq: number; body: string }[] = [];
      for (const [, fields] of entries) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        const seq = Number(f.seq);
        if (seq > sinceSeq && f.body) found.push({ seq, body: f.body });
      }
      const bySeq = new Map(found.map((m) => [m.seq, m.body])); // a retried task may have been recorded twice
      return [...bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, body]) => body);
    },
    peekOffline: (userId, count) => offline.peek(userId, count),
    ackOffline: (userId, sent) => offline.ack(userId, sent),
    async upstream(conn, content, priority) {
      const message = chatMessage({ roomId: conn.roomId, userId: conn.userId, userName: conn.userName, messages: [{ content }], priority });
      const result = await submit.enqueueOne({
        type: 'push',
        priority: priority ?? env.DEFAULT_PRIORITY,
        payload: encodePushPayload(pushPayload(roomTarget(conn.roomId), message)),
        fields: { room_id: conn.roomId, user_id: conn.userId, source: 'websocket' },
        sequenceKey: keys.roomSeq(conn.roomId),
      });
      return { id: result.id };
    },
  };
  const ws = createWsServer({
    cometId,
    metrics: metricsRegistry,
    authSecret: secret,
    hub,
    registry,
    maxFrameBytes: env.WS_MAX_FRAME_BYTES,
    maxSendFrameBytes: env.COMET_MAX_FRAME_BYTES,
    log,
    services,
    upstreamRate: { perSec: env.UPSTREAM_RATE_PER_SEC, burst: env.UPSTREAM_BURST },
    heartbeats: { refreshMs: env.WS_HEARTBEAT_REFRESH_MS, perSec: env.WS_HEARTBEAT_RATE_PER_SEC, burst: env.WS_HEARTBEAT_BURST },
  });
  await new Promise<void>((resolve) => ws.server.listen(env.COMET_WS_PORT, env.COMET_HOST, resolve));
  const wsPort = (ws.server.address() as AddressInfo).port;

  const wsUrl = env.COMET_PUBLIC_URL ?? `ws://localhost:${wsPort}`;
  const infoTtl = Math.ceil((env.COMET_DEAD_AFTER_MS * 2) / 1000);
  // The count logic picks the least-loaded comet by, kept current between heartbeats.
  services.connectionsChanged = coalesce(() => registry.heartbeatComet(cometId, { wsUrl, connections: hub.conns.size, ttlSeconds: infoTtl }));
  const beat = async () => {
    try {
      await registry.heartbeatComet(cometId, { wsUrl, connections: hub.conns.size, ttlSeconds: infoTtl });
      // Any comet may clean up after a peer that stopped heartbeating (crashed, SIGKILLed).
      for (const dead of await registry.staleComets(env.COMET_DEAD_AFTER_MS)) {
        if (dead === cometId) continue;
        const removed = await registry.purgeComet(dead);
        log.warn({ comet: dead, removed }, `comet ${dead} stopped heartbeating: removed its routing`);
      }
    } catch (err) {
      log.warn({ err: String(err) }, 'heartbeat failed');
    }
  };
  await beat();
  const heartbeat = setInterval(() => void beat(), env.COMET_HEARTBEAT_MS);
  heartbeat.unref();
  log.info({ cometId, wsPort, grpcPort }, `comet ${cometId} serving WebSocket on :${wsPort} and gRPC on :${grpcPort}`);

  return {
    cometId,
    wsPort,
    grpcPort,
    hub,
    async stop() {
      clearInterval(heartbeat);
      stopProbe();
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      await ws.closeAll();
      ws.wss.close();
      await new Promise<void>((resolve) => ws.server.close(() => resolve()));
      // Removes its routing, its comet:nodes entry and comet:info.
      await registry.purgeComet(cometId).catch(() => {});
      await backend?.close().catch(() => {});
      redis.disconnect();
      log.info(`comet ${cometId} stopped`);
    },
  };
}
