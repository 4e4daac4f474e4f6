// GET /health: Redis status (ping latency, version) and queue depths per state and priority.
// 503 when Redis does not answer, so load balancers and compose health checks can use it.
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
  return 'Redis answered with an error';
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { queue, redis, backend }) => {
  let version: string | null = null;

  app.get('/health', { schema: { security: [], description: 'Redis status and queue depths per state and priority; 503 when Redis is down. No auth.' } }, async (_request, reply) => {
    try {
      const started = performance.now();
      await redis.ping();
      const pingMs = Math.round((performance.now() - started) * 1000) / 1000;
      if (!version) {
        const info = await redis.info('server');
        version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
      }
      const stats = await queue.stats();
      return {
        status: 'ok',
        backend,
        redis: { status: 'up', version, ping_ms: pingMs },
        queues: {
          [queue.keys.tasks.queue]: stats.tasks,
          [queue.keys.results.queue]: stats.results,
        },
        priorities: Object.fromEntries(stats.priorities.map((p) => [String(p.priority), p.queued])),
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
