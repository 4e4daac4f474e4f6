// GET /health: Redis status (ping latency, version, the ROLE of the node logic talks to) and
// queue depths per state and priority. 503 when Redis does not answer, when that node is no
// writable master (a replica, or a master the sentinels demoted), or when it has fewer replicas
// than REDIS_WAIT_REPLICAS needs to confirm a task: load balancers and compose health checks
// then send no traffic to a logic that cannot accept tasks.
import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { TaskQueue } from '../../queue/task-queue.ts';

export interface HealthRoutesOptions {
  queue: TaskQueue;
  redis: Redis;
  /** QUEUE_BACKEND: with bullmq or kafka the depths below are the Redis engine's (webhooks, dead letters), not where new tasks wait. */
  backend: string;
}

/** A short, stable reason for a failed Redis check. */
export function redisDownReason(err: Error): string {
  const text = err.message;
  if (/timed? ?out/i.test(text)) return 'Redis did not answer in time';
  if (/writeable|closed|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|connect/i.test(text)) return 'not connected to Redis';
  if (/NOAUTH|WRONGPASS|NOPERM/.test(text)) return 'Redis refused the credentials';
  if (/LOADING/.test(text)) return 'Redis is loading its data';
  if (/READONLY/.test(text)) return 'Redis is a read-only replica: no writable master';
  return 'Redis answered with an error';
}

export interface RoleView {
  /** ROLE's first word, with `slave` called replica; null when ROLE is not allowed (ACL). */
  role: 'master' | 'replica' | 'sentinel' | null;
  /** A master's replicas that are connected now. */
  replicas?: number;
}

export async function readRole(redis: Redis): Promise<RoleView> {
  let reply: unknown[];
  try {
    reply = (await redis.call('ROLE')) as unknown[];
  } catch (err) {
    // A managed Redis may refuse ROLE (NOPERM / unknown command): health then cannot tell.
    if (/NOPERM|unknown command/i.test((err as Error).message)) return { role: null };
    throw err;
  }
  const first = String(reply[0]);
  if (first === 'master') return { role: 'master', replicas: Array.isArray(reply[2]) ? reply[2].length : 0 };
  return { role: first === 'slave' ? 'replica' : first === 'sentinel' ? 'sentinel' : null };
}

/** Why this node cannot take tasks, or null when it can. */
function notWritable(role: RoleView, waitReplicas: number): string | null {
  if (role.role === 'replica' || role.role === 'sentinel') return `Redis is a ${role.role}, not a writable master`;
  if (role.role === 'master' && waitReplicas > 0 && (role.replicas ?? 0) < waitReplicas) {
    return `${role.replicas} of the ${waitReplicas} replicas REDIS_WAIT_REPLICAS needs are connected: tasks cannot be confirmed`;
  }
  return null;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { queue, redis, backend }) => {
  let version: string | null = null;

  app.get('/health', { schema: { security: [], description: 'Redis status (ROLE included) and queue depths per state and priority; 503 when Redis is down, is no writable master, or has fewer replicas than REDIS_WAIT_REPLICAS. No auth.' } }, async (_request, reply) => {
    try {
      const started = performance.now();
      await redis.ping();
      const pingMs = Math.round((performance.now() - started) * 1000) / 1000;
      if (!version) {
        const info = await redis.info('server');
        version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
      }
      const role = await readRole(redis);
      const waitReplicas = queue.options.replication?.options.replicas ?? 0;
      const redisView = { status: 'up', version, ping_ms: pingMs, role: role.role, ...(role.replicas !== undefined ? { replicas: role.replicas } : {}) };
      const refused = notWritable(role, waitReplicas);
      if (refused) return reply.code(503).send({ status: 'unavailable', backend, redis: { ...redisView, reason: refused } });
      const stats = await queue.stats();
      return {
        status: 'ok',
        backend,
        redis: redisView,
        queues: {
          [queue.keys.tasks.queue]: stats.tasks,
          [queue.keys.results.queue]: stats.results,
        },
        priorities: Object.fromEntries(stats.priorities.map((p) => [String(p.priority), p.queued])),
        // delay_ms / run_at tasks not yet due (uvr_tasks:scheduled); they are not in the counts above.
        scheduled: stats.scheduled,
        oldest_waiting_age_ms: stats.oldestWaitingAgeMs,
      };
    } catch (err) {
      // The raw client error (hosts, ports, ioredis internals) goes to the log, not to whoever
      // polls /health: they get a status and a short reason.
      app.log.debug({ err: String(err) }, 'health check: Redis not available');
      return reply.code(503).send({ status: 'unavailable', backend, redis: { status: 'down', reason: redisDownReason(err as Error) } });
    }
  });
};
