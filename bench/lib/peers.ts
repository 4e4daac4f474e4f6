// The two queues under test behind one small interface, so every phase drives both the same way.
// pushline is used exactly as `pushline job` / logic use it: TaskQueue on a 'command' connection
// (RESP2, auto-pipelining) and a JobRunner with one 'blocking' connection per consumer.
// BullMQ gets the same RESP2 protocol and otherwise its defaults.
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Agent } from 'undici';
import { createRedis, type RedisTarget } from '../../src/redis/connect.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { JobRunner, type JobRunnerOptions } from '../../src/job/runner.ts';
import { ProcessorRegistry } from '../../src/job/processor.ts';
import { silentLogger } from '../../src/util/log.ts';

/** The runner settings every bench shares: the production defaults (src/config/schema.ts), no logs. */
export function benchRunnerDefaults(dispatcher: Agent): Pick<JobRunnerOptions, 'visibilityMs' | 'shutdownTimeoutMs' | 'reaperIntervalMs' | 'taskPolicy' | 'webhook' | 'log'> {
  return {
    visibilityMs: 30_000,
    shutdownTimeoutMs: 10_000,
    reaperIntervalMs: 5000,
    taskPolicy: { maxAttempts: 3, baseMs: 1000, maxMs: 300_000 },
    webhook: { secret: 'bench', timeoutMs: 10_000, policy: { maxAttempts: 8, baseMs: 1000, maxMs: 600_000 }, concurrency: 32, dispatcher },
    log: silentLogger,
  };
}

export type PeerName = 'pushline' | 'bullmq';
export const PEER_NAMES: readonly PeerName[] = ['pushline', 'bullmq'];
export const LABEL: Record<PeerName, string> = { pushline: 'pushline', bullmq: 'BullMQ' };

/** The payload: `i` is the task's index; `t` (latency phase) the add time, hrtime ns as a string. */
export interface TaskData {
  i: number;
  t?: string;
}

export interface NewItem {
  /** pushline priority 1..5 (5 first); BullMQ gets 6 − p (1 first). */
  priority: number;
  data: TaskData;
  /** Start no earlier than this many ms from now (pushline delay_ms; BullMQ's `delay` option). */
  delayMs?: number;
}

/**
 * How to consume. pushline: `workers` consumers (JobRunner consumers) × `concurrency` each.
 * BullMQ: `workers` Worker instances × `concurrency` each; `removeOnComplete` a count to keep
 * (BullMQ default when absent: keep every completed job, as pushline keeps finished hashes).
 */
export interface WorkConfig {
  workers: number;
  concurrency: number;
  removeOnComplete?: number;
}

/** "4x64" → 4 × 64; "2x200+keep1000" → also removeOnComplete: { count: 1000 } (BullMQ only). */
export function parseWorkConfig(text: string): WorkConfig {
  const m = /^(\d+)x(\d+)(?:\+keep(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`bad worker config "${text}": expected WORKERSxCONCURRENCY[+keepN], e.g. 4x64 or 2x200+keep1000`);
  const cfg: WorkConfig = { workers: Number(m[1]), concurrency: Number(m[2]) };
  if (m[3] !== undefined) cfg.removeOnComplete = Number(m[3]);
  if (cfg.workers < 1 || cfg.concurrency < 1) throw new Error(`bad worker config "${text}"`);
  return cfg;
}

export function describeConfig(peer: PeerName, cfg: WorkConfig): string {
  if (peer === 'pushline') return `${cfg.workers} consumers × concurrency ${cfg.concurrency}`;
  const roc = cfg.removeOnComplete === undefined ? 'removeOnComplete default (keep all)' : `removeOnComplete {count:${cfg.removeOnComplete}}`;
  return `${cfg.workers} Worker${cfg.workers > 1 ? 's' : ''} × concurrency ${cfg.concurrency}, ${roc}`;
}

export interface Working {
  stop(): Promise<void>;
}

export interface Peer {
  readonly name: PeerName;
  add(item: NewItem): Promise<unknown>;
  addBulk(items: readonly NewItem[]): Promise<unknown>;
  /** Tasks waiting to be started. */
  waiting(): Promise<number>;
  /** Tasks not finished: waiting, running or waiting for a retry. */
  unfinished(): Promise<number>;
  /**
   * Start consuming. `onTask` runs inside the processor (which then returns null);
   * `onCompleted` once per task whose completion is stored in Redis.
   */
  work(cfg: WorkConfig, onTask: (data: TaskData) => void, onCompleted: () => void): Promise<Working>;
  /** Keys worth a MEMORY USAGE after enqueueing (one task's data, the waiting index, ...). */
  memoryKeys(admin: Redis): Promise<{ label: string; key: string }[]>;
  close(): Promise<void>;
}

export interface PeerOptions {
  port: number;
  /** BullMQ only: turn ioredis auto-pipelining on for its connections (off by default). */
  autoPipelining?: boolean;
}

const PAYLOAD_TYPE = 'bench';

export async function openPeer(name: PeerName, opts: PeerOptions): Promise<Peer> {
  return name === 'pushline' ? pushlinePeer(opts) : bullmqPeer(opts);
}

async function pushlinePeer(opts: PeerOptions): Promise<Peer> {
  const target: RedisTarget = { host: '127.0.0.1', port: opts.port, db: 0, password: '' };
  const command: Redis = createRedis(target, 'command', 'bench');
  await command.connect();
  const keys = queueKeys();
  // Production defaults (src/config/schema.ts): retention 7 days, idempotency TTL 1 day.
  const queue = new TaskQueue(command, keys, { retentionSeconds: 7 * 86_400, idempotencyTtlSeconds: 86_400 });
  const toTask = (item: NewItem) => ({
    type: PAYLOAD_TYPE,
    priority: item.priority,
    payload: JSON.stringify(item.data),
    ...(item.delayMs ? { start: { delayMs: item.delayMs } } : {}),
  });
  return {
    name: 'pushline',
    add: (item) => queue.enqueueOne(toTask(item)),
    addBulk: (items) => queue.enqueue(items.map(toTask)),
    waiting: () => command.zcard(keys.tasks.queue),
    async unfinished() {
      const d = await queue.tasks.depths();
      return d.queued + d.processing + d.delayed + (await queue.scheduledCount());
    },
    async work(cfg, onTask, onCompleted) {
      const dispatcher = new Agent();
      const runner = new JobRunner({
        queue,
        blockingConnection: (n) => createRedis(target, 'blocking', `bench-${n}`),
        registry: new ProcessorRegistry([
          {
            type: PAYLOAD_TYPE,
            async process(ctx) {
              onTask(ctx.payload as TaskData);
              return null;
            },
          },
        ]),
        consumers: cfg.workers,
        concurrency: cfg.concurrency,
        ...benchRunnerDefaults(dispatcher),
        onSettled: (stage, _task, verdict, applied) => {
          if (stage === 'tasks' && applied && verdict.outcome === 'completed') onCompleted();
        },
      });
      await runner.start();
      return {
        async stop() {
          await runner.stop();
          await dispatcher.close();
        },
      };
    },
    async memoryKeys(admin) {
      const [first] = await admin.zrange(keys.tasks.queue, '0', '0');
      return [
        ...(first ? [{ label: 'one task hash', key: keys.task(first) }] : []),
        { label: 'queue ZSET', key: keys.tasks.queue },
      ];
    },
    async close() {
      await command.quit().catch(() => command.disconnect());
    },
  };
}

async function bullmqPeer(opts: PeerOptions): Promise<Peer> {
  // RESP2 like pushline's connections (ioredis 6 defaults to RESP3); maxRetriesPerRequest: null
  // is what BullMQ requires for workers. Everything else is BullMQ/ioredis defaults.
  const connection = {
    host: '127.0.0.1',
    port: opts.port,
    protocol: 2 as const,
    maxRetriesPerRequest: null,
    ...(opts.autoPipelining ? { enableAutoPipelining: true } : {}),
  };
  const queue = new Queue<TaskData>(PAYLOAD_TYPE, { connection });
  queue.on('error', (err) => console.error(`[bench] BullMQ queue error: ${String(err)}`));
  await queue.waitUntilReady();
  const toJob = (item: NewItem) => ({ name: PAYLOAD_TYPE, data: item.data, opts: { priority: 6 - item.priority, ...(item.delayMs ? { delay: item.delayMs } : {}) } });
  return {
    name: 'bullmq',
    add: (item) => queue.add(PAYLOAD_TYPE, item.data, { priority: 6 - item.priority }),
    addBulk: (items) => queue.addBulk(items.map(toJob)),
    async waiting() {
      const c = await queue.getJobCounts('wait', 'prioritized');
      return (c.wait ?? 0) + (c.prioritized ?? 0);
    },
    async unfinished() {
      const c = await queue.getJobCounts('wait', 'prioritized', 'active', 'delayed');
      return (c.wait ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0) + (c.delayed ?? 0);
    },
    async work(cfg, onTask, onCompleted) {
      const workers: Worker<TaskData>[] = [];
      for (let k = 0; k < cfg.workers; k++) {
        const worker = new Worker<TaskData>(
          PAYLOAD_TYPE,
          async (job) => {
            onTask(job.data);
            return null;
          },
          {
            connection,
            concurrency: cfg.concurrency,
            ...(cfg.removeOnComplete !== undefined ? { removeOnComplete: { count: cfg.removeOnComplete } } : {}),
          },
        );
        worker.on('completed', () => onCompleted());
        worker.on('error', (err) => console.error(`[bench] BullMQ worker error: ${String(err)}`));
        workers.push(worker);
      }
      await Promise.all(workers.map((w) => w.waitUntilReady()));
      return {
        async stop() {
          await Promise.all(workers.map((w) => w.close()));
        },
      };
    },
    async memoryKeys(admin) {
      const prefix = `bull:${PAYLOAD_TYPE}:`;
      const first = await admin.zrange(`${prefix}prioritized`, '0', '0');
      return [
        ...(first[0] ? [{ label: 'one job hash', key: prefix + first[0] }] : []),
        { label: 'prioritized ZSET', key: `${prefix}prioritized` },
        { label: 'events stream', key: `${prefix}events` },
      ];
    },
    async close() {
      await queue.close();
    },
  };
}
