// Metrics more than one process has: Redis command latency (the seed's RecordRedisLatency),
// gRPC calls (the seed's grpc_calls_total{service,name,status}) and queue depths.
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TaskQueue } from '../queue/task-queue.ts';

const LATENCY_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export type LatencyObserver = (command: string, seconds: number) => void;

/**
 * A metric's labelled child per label values, looked up once and then kept: prom-client hashes
 * the label object on every observe(), which at thousands of tasks a second is a measurable part
 * of a job's CPU. Label values here come from a small set (types, outcomes, comets, commands).
 */
export function labelledChildren<C>(child: (...values: string[]) => C): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let found = children.get(key);
    if (found === undefined) children.set(key, (found = child(...values)));
    return found;
  };
}

/** redis_command_duration_seconds{command}: queue scripts, routing reads and a periodic PING. */
export function redisLatency(registry: Registry): LatencyObserver {
  const histogram = new Histogram({
    name: 'redis_command_duration_seconds',
    help: 'Redis command / script round trip as the client sees it, by command (enqueue, claim, settle, get_room_connections, ping, ...)',
    labelNames: ['command'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const of = labelledChildren((command) => histogram.labels({ command }));
  return (command, seconds) => of(command).observe(seconds);
}

/** PINGs every `everyMs` and observes the round trip, so latency shows even when idle. */
export function probeRedis(redis: Redis, observe: LatencyObserver, everyMs = 5000): () => void {
  const timer = setInterval(() => {
    const t = performance.now();
    redis.ping().then(
      () => observe('ping', (performance.now() - t) / 1000),
      () => {},
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export type GrpcObserver = (name: string, ok: boolean, seconds: number) => void;

/** grpc_calls_total{service="comet",name,status} and grpc_call_duration_seconds{service,name}. */
export function grpcCalls(registry: Registry, side: 'client' | 'server'): GrpcObserver {
  const calls = new Counter({
    name: 'grpc_calls_total',
    help: `gRPC calls of the Comet service (${side} side), by method and status (success|failed)`,
    labelNames: ['service', 'name', 'status'],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'grpc_call_duration_seconds',
    help: `gRPC call duration (${side} side), by method`,
    labelNames: ['service', 'name'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const callsOf = labelledChildren((name, status) => calls.labels({ service: 'comet', name, status }));
  const secondsOf = labelledChildren((name) => seconds.labels({ service: 'comet', name }));
  return (name, ok, s) => {
    callsOf(name, ok ? 'success' : 'failed').inc();
    secondsOf(name).observe(s);
  };
}

/**
 * pushline_queue_depth{stage,state} and pushline_queue_waiting{priority}, read from Redis at
 * scrape time (one pipeline), plus pushline_queue_oldest_wait_seconds.
 */
export function queueDepth(registry: Registry, queue: TaskQueue): void {
  let last: Promise<Awaited<ReturnType<TaskQueue['stats']>> | null> | null = null;
  // The three gauges share one Redis read per scrape.
  const read = () => (last ??= queue.stats().catch(() => null).finally(() => setImmediate(() => (last = null))));
  new Gauge({
    name: 'pushline_queue_depth',
    help: 'Tasks per stage (tasks, results = webhooks) and state (queued, processing, delayed, dead; scheduled = delay_ms / run_at not yet due)',
    labelNames: ['stage', 'state'],
    registers: [registry],
    async collect() {
      const stats = await read();
      if (!stats) return;
      for (const stage of ['tasks', 'results'] as const) {
        for (const [state, n] of Object.entries(stats[stage])) this.set({ stage, state }, n);
      }
      this.set({ stage: 'tasks', state: 'scheduled' }, stats.scheduled);
    },
  });
  new Gauge({
    name: 'pushline_queue_waiting',
    help: 'Queued tasks per priority (5 = highest)',
    labelNames: ['priority'],
    registers: [registry],
    async collect() {
      const stats = await read();
      if (!stats) return;
      for (const p of stats.priorities) this.set({ priority: String(p.priority) }, p.queued);
    },
  });
  new Gauge({
    name: 'pushline_queue_oldest_wait_seconds',
    help: 'Age of the oldest queued task, 0 when none waits',
    registers: [registry],
    async collect() {
      const stats = await read();
      if (stats) this.set((stats.oldestWaitingAgeMs ?? 0) / 1000);
    },
  });
}
