// Logic's metrics: HTTP requests by route and status, request duration, queue depths read at
// scrape time, Redis latency (enqueue scripts + a periodic PING); GET /metrics (no auth, as
// DESIGN §4 says: put it behind the network, not the API credentials).
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Counter, Histogram } from 'prom-client';
import { labelledChildren, probeRedis, queueDepth, redisLatency } from '../metrics/common.ts';
import type { Registry } from '../metrics/registry.ts';
import { observeScripts } from '../queue/scripts.ts';
import type { TaskQueue } from '../queue/task-queue.ts';

export function registerLogicMetrics(app: FastifyInstance, registry: Registry, queue: TaskQueue, redis: Redis): void {
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to answer, by method and route template',
    labelNames: ['method', 'route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  queueDepth(registry, queue);
  const observe = redisLatency(registry);
  observeScripts(redis, observe);
  const stopProbe = probeRedis(redis, observe);
  app.addHook('onClose', async () => stopProbe());

  // The labelled series of each (method, route, status), looked up once: prom-client hashes the
  // label object on every inc/observe otherwise, which shows at thousands of requests/s.
  const seriesOf = labelledChildren((method, route, status) => ({ count: requests.labels({ method, route, status }), time: duration.labels({ method, route }) }));
  app.addHook('onResponse', (request, reply, done) => {
    // The route template, never the raw URL: ids in paths would make a series per task.
    const s = seriesOf(request.method, request.routeOptions.url ?? 'unmatched', String(reply.statusCode));
    s.count.inc();
    s.time.observe(reply.elapsedTime / 1000);
    done();
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
