// The browser side of logic: the demo chat page at `/` (with the client library served as
// /client.js, compiled from src/client/index.ts once at start-up), its dev-only helpers under
// /demo/api, and the live queue dashboard at /dashboard with its JSON under /dashboard/api
// (API auth). Pages are plain HTML/JS files in ./public: no build step, nothing from a CDN.
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { signConnectionToken } from '../../auth/token.ts';
import type { TaskQueue } from '../../queue/task-queue.ts';
import { Groups } from '../../queue/groups.ts';
import { reviveDeadTask, type BackendName } from '../../queue/backend.ts';
import type { RoutingRegistry } from '../../routing/registry.ts';
import type { RoutingKeys } from '../../routing/keys.ts';
import { workerInfoKey } from '../../job/worker-registry.ts';
import { scheduleView, ScheduleStore } from '../../schedule/store.ts';
import { perSlot } from '../../redis/batch.ts';
import { ApiError } from '../errors.ts';
import { displayName, identifier, taskParamsSchema } from '../schemas.ts';

export interface WebRoutesOptions {
  queue: TaskQueue;
  registry: RoutingRegistry;
  keys: RoutingKeys;
  /** PUSHLINE_DEV: the demo may sign tokens without API credentials. */
  devMode: boolean;
  authSecret: string | null;
  cometAliveMs: number;
  /** QUEUE_BACKEND: the dead-letter retry works with the Redis engine only (501 otherwise). */
  backendName: BackendName;
}

const PUBLIC = new URL('./public/', import.meta.url);
const asset = (name: string) => readFileSync(new URL(name, PUBLIC), 'utf8');
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** The client library as browser JS: compiled by `npm run build` in dist/; from src/ (tsx, tests) esbuild strips the types. */
async function clientModule(): Promise<string> {
  const built = new URL('../../client/index.js', import.meta.url);
  if (existsSync(built)) return readFileSync(built, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
  const source = readFileSync(new URL('../../client/index.ts', import.meta.url), 'utf8');
  const { transform } = await import('esbuild'); // a dev dependency: the package ships the compiled file
  return (await transform(source, { loader: 'ts', format: 'esm', target: 'es2020' })).code;
}

const demoToken = z.strictObject({ userId: identifier('userId'), roomId: identifier('roomId'), userName: displayName('userName').optional() });
const roomQuery = z.object({ roomId: identifier('roomId') });

export const webRoutes: FastifyPluginAsyncZod<WebRoutesOptions> = async (app, options) => {
  const { queue, registry } = options;
  const files = new Map<string, string>();
  for (const name of ['demo.html', 'demo.js', 'dashboard.html', 'dashboard.js', 'style.css']) files.set(name, asset(name));
  files.set('client.js', await clientModule());
  const send = (name: string) => async (_req: unknown, reply: { type(t: string): unknown; header(k: string, v: string): unknown }) => {
    reply.type(TYPES[name.split('.').pop()!]!);
    reply.header('cache-control', 'no-cache');
    return files.get(name)!;
  };
  const hidden = { schema: { hide: true } };

  app.get('/', hidden, send('demo.html'));
  app.get('/demo.js', hidden, send('demo.js'));
  app.get('/client.js', hidden, send('client.js'));
  app.get('/style.css', hidden, send('style.css'));
  app.get('/dashboard', { ...hidden, onRequest: app.apiAuth }, send('dashboard.html'));
  app.get('/dashboard.js', hidden, send('dashboard.js'));

  // --- demo helpers: dev mode only (in production tokens come from POST /logic/token, with API credentials) ---
  const devOnly = () => {
    if (!options.devMode) throw new ApiError('not_found', 'the demo helpers exist only with PUSHLINE_DEV=true; get a token from POST /logic/token');
    if (!options.authSecret) throw new ApiError('service_unavailable', 'AUTH_SECRET is not configured');
  };
  app.get('/demo/api/mode', hidden, async () => ({ dev: options.devMode }));
  app.post('/demo/api/token', { schema: { hide: true, body: demoToken } }, async (req) => {
    devOnly();
    const comet = (await registry.liveComets(options.cometAliveMs)).find((c) => c.wsUrl);
    if (!comet) throw new ApiError('service_unavailable', 'no comet node is alive to connect to');
    const { token, expiresAt } = await signConnectionToken(req.body, options.authSecret!, 3600);
    return { token, expiresAt: expiresAt.toISOString(), comet: comet.wsUrl };
  });
  app.get('/demo/api/online', { schema: { hide: true, querystring: roomQuery } }, async (req) => {
    devOnly();
    const connIds = await queue.redis.smembers(options.keys.roomConnections(req.query.roomId));
    // Each connection's info hash has its own slot on a Redis Cluster: one batch per slot.
    const rows = (await perSlot(queue.redis, connIds.map((id) => {
      const key = options.keys.connectionInfo(id);
      return { key, add: (p) => p.hmget(key, 'user_id', 'comet_id') };
    }))).map(([v]) => v as (string | null)[]);
    const users = new Map<string, Set<string>>();
    for (const [user, comet] of rows) if (user) users.set(user, (users.get(user) ?? new Set()).add(comet ?? '?'));
    return { roomId: req.query.roomId, users: [...users].map(([userId, comets]) => ({ userId, comets: [...comets] })).sort((a, b) => a.userId.localeCompare(b.userId)) };
  });

  // --- dashboard data (API auth) ---
  app.get('/dashboard/api/overview', { onRequest: app.apiAuth, schema: { hide: true } }, async () => {
    const [stats, comets, dead, webhookDead, workers, enqueuedTotal] = await Promise.all([
      queue.stats(),
      registry.liveComets(options.cometAliveMs),
      queue.tasks.deadList(50),
      queue.results.deadList(50),
      queue.redis.zrangebyscore(queue.keys.workers, Date.now() - 15_000, '+inf', 'WITHSCORES'),
      // Every shard counts the ids it handed out: the total is their sum.
      perSlot(queue.redis, queue.keys.shards.map((shard) => ({ key: shard.enqueuedCount, add: (p) => p.get(shard.enqueuedCount) }))),
    ]);
    // Task hashes of different shards, and worker hashes, live in different slots on a cluster.
    const hashes = async (ids: string[], fields: string[]) =>
      (await perSlot(queue.redis, ids.map((id) => ({ key: queue.keys.task(id), add: (p) => p.hmget(queue.keys.task(id), ...fields) })))).map(([v]) => v as (string | null)[]);
    const deadRows = await hashes(dead.map((d) => d.id), ['type', 'priority', 'attempts', 'error']);
    const hookRows = await hashes(webhookDead.map((d) => d.id), ['hook_url', 'webhook_attempts', 'webhook_error', 'status']);
    const workerIds: { id: string; seenMs: number }[] = [];
    for (let i = 0; i + 1 < workers.length; i += 2) workerIds.push({ id: workers[i]!, seenMs: Number(workers[i + 1]) });
    const workerRows = (await perSlot(queue.redis, workerIds.map((w) => {
      const key = workerInfoKey(queue.keys.prefix, w.id);
      return { key, add: (p) => p.hgetall(key) };
    }))).map(([v]) => v as Record<string, string>);
    const cometBeats = await registry.cometHeartbeats(comets.map((c) => c.cometId));
    // Groups (src/queue/groups.ts): limits and counts; the first 50 by name.
    const groups = options.backendName === 'redis' ? (await new Groups(queue.redis, queue.keys).list()).slice(0, 50) : [];
    // Recurring schedules are few (one HASH, one ZSET); the first 50 by name.
    const schedules = (await new ScheduleStore(queue.redis, queue.keys).list()).slice(0, 50).map(scheduleView);
    return {
      schedules,
      now: stats.nowMs,
      enqueued_total: enqueuedTotal.reduce((sum, [count]) => sum + Number(count ?? 0), 0),
      queues: { tasks: stats.tasks, results: stats.results },
      priorities: stats.priorities.map((p) => ({ priority: p.priority, queued: p.queued })),
      oldest_waiting_age_ms: stats.oldestWaitingAgeMs,
      scheduled: stats.scheduled,
      comets: comets.map((c, i) => ({ id: c.cometId, ws_url: c.wsUrl, connections: c.connections, heartbeat_age_ms: cometBeats[i] === null ? null : stats.nowMs - cometBeats[i]! })),
      workers: workerIds.map((w, i) => ({ id: w.id, seen_age_ms: stats.nowMs - w.seenMs, ...workerRows[i] })),
      dead: dead.map((d, i) => ({ id: d.id, died_at: d.diedAtMs, type: deadRows[i]?.[0], priority: Number(deadRows[i]?.[1] ?? 0), attempts: Number(deadRows[i]?.[2] ?? 0), error: deadRows[i]?.[3] })),
      groups,
      webhook_failures: webhookDead.map((d, i) => ({ id: d.id, failed_at: d.diedAtMs, hook_url: hookRows[i]?.[0], attempts: Number(hookRows[i]?.[1] ?? 0), error: hookRows[i]?.[2], task_status: hookRows[i]?.[3] })),
    };
  });
  app.post('/dashboard/api/dead/:id/retry', { onRequest: app.apiAuth, schema: { hide: true, params: taskParamsSchema } }, async (req) => {
    if (!(await reviveDeadTask(queue, options.backendName, req.params.id))) throw new ApiError('not_found', `task ${req.params.id} is not in the dead-letter set`);
    return { task_id: req.params.id, status: 'queued' };
  });
  app.delete('/dashboard/api/dead/:id', { onRequest: app.apiAuth, schema: { hide: true, params: taskParamsSchema } }, async (req) => {
    if (!(await queue.tasks.discardDead(req.params.id))) throw new ApiError('not_found', `task ${req.params.id} is not in the dead-letter set`);
    return { task_id: req.params.id, status: 'deleted' };
  });
};
