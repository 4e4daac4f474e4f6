// The job's metrics: task wait and processing time, outcomes, webhook outcomes, and the push
// dispatch counters of the seed docs (job_dispatch_success/failed per comet, active_comet_nodes,
// room_connection_count), plus the shared Redis latency and gRPC call metrics.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { grpcCalls, labelledChildren, redisLatency, type GrpcObserver, type LatencyObserver } from '../metrics/common.ts';

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface JobMetrics {
  /** A task began its first attempt `waitSeconds` after it was enqueued. */
  waited(type: string, priority: string, waitSeconds: number): void;
  processed(type: string, outcome: string, seconds: number): void;
  /** A verdict was saved (tasks stage). */
  settled(type: string, outcome: string): void;
  webhook(outcome: string): void;
  dispatched(comet: string, ok: boolean): void;
  roomConnections(count: number): void;
  /**
   * How many room messages went together: `routing` = one batch's routing read (messages claimed
   * in one turn), `grpc_call` = one call to one comet. How well batching amortises its per-batch
   * and per-call costs (docs/bench-results.md, issue 11).
   */
  pushBatch(stage: 'routing' | 'grpc_call', messages: number): void;
  redis: LatencyObserver;
  grpc: GrpcObserver;
}

export function jobMetrics(registry: Registry, aliveComets: () => Promise<number>): JobMetrics {
  const wait = new Histogram({
    name: 'pushline_task_wait_seconds',
    help: 'Time from enqueue to the start of the first attempt, by type and priority',
    labelNames: ['type', 'priority'],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const processing = new Histogram({
    name: 'pushline_task_processing_seconds',
    help: "Time a processor ran, by type and the attempt's outcome",
    labelNames: ['type', 'outcome'],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const tasks = new Counter({
    name: 'pushline_tasks_total',
    help: 'Task verdicts saved, by type and outcome (completed, failed, retry, dead, release)',
    labelNames: ['type', 'outcome'],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: 'pushline_webhooks_total',
    help: 'Webhook delivery verdicts saved, by outcome (completed = delivered, retry, failed, dead)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const success = new Counter({ name: 'job_dispatch_success_total', help: 'Push deliveries a comet node accepted', labelNames: ['comet'], registers: [registry] });
  const failed = new Counter({ name: 'job_dispatch_failed_total', help: 'Push deliveries to a comet node that failed after its retries', labelNames: ['comet'], registers: [registry] });
  const rooms = new Histogram({
    name: 'room_connection_count',
    help: 'Connections of a room at dispatch time',
    buckets: [0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000],
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'pushline_push_batch_messages',
    help: 'Room messages handled together: per routing read of a batch (stage="routing") and per gRPC call to a comet (stage="grpc_call")',
    labelNames: ['stage'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  new Gauge({
    name: 'active_comet_nodes',
    help: 'Comet nodes heartbeating in comet:nodes (read at scrape time)',
    registers: [registry],
    async collect() {
      this.set(await aliveComets().catch(() => 0));
    },
  });
  // Per task several observations: each labelled child is looked up once (labelledChildren).
  const waitOf = labelledChildren((type, priority) => wait.labels({ type, priority }));
  const processingOf = labelledChildren((type, outcome) => processing.labels({ type, outcome }));
  const tasksOf = labelledChildren((type, outcome) => tasks.labels({ type, outcome }));
  const successOf = labelledChildren((comet) => success.labels({ comet }));
  const failedOf = labelledChildren((comet) => failed.labels({ comet }));
  const batchesOf = labelledChildren((stage) => batches.labels({ stage }));
  return {
    waited: (type, priority, s) => waitOf(type, priority).observe(Math.max(0, s)),
    processed: (type, outcome, s) => processingOf(type, outcome).observe(s),
    settled: (type, outcome) => tasksOf(type, outcome).inc(),
    webhook: (outcome) => webhooks.inc({ outcome }),
    dispatched: (comet, ok) => (ok ? successOf : failedOf)(comet).inc(),
    roomConnections: (n) => rooms.observe(n),
    pushBatch: (stage, n) => batchesOf(stage).observe(n),
    redis: redisLatency(registry),
    grpc: grpcCalls(registry, 'client'),
  };
}
