// The two queues under test behind one small interface, so every phase drives both the same way.
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Agent } from 'undici';
import { createRedis } from '../../src/redis/connect.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { JobRunner } from '../../src/job/runner.ts';
import { ProcessorRegistry } from '../../src/job/processor.ts';
import { silentLogger } from '../../src/util/log.ts';

export type OnTask = (data: { t?: string }) => void;

export interface Peer {
  name: string;
  add(priority: number, data: object): Promise<unknown>;
  addBulk(items: { priority: number; data: object }[]): Promise<unknown>;
  /** Start consuming; `onTask` runs inside the processor for every task. */
  work(onTask: OnTask, onDone: () => void): Promise<void>;
  stopWork(): Promise<void>;
  close(): Promise<void>;
  settings: string;
}

export interface PeerOptions {
  port: number;
  consumers: number;
  concurrency: number;
}

export async function pushlinePeer(opts: PeerOptions): Promise<Peer> {
  const target = { host: '127.0.0.1', port: opts.port, db: 0, password: '' };
  const command: Redis = createRedis(target, 'command', 'bench');
  await command.connect();
  const queue = new TaskQueue(command, queueKeys(), { retentionSeconds: 3600, idempotencyTtlSeconds: 60 });
  let runner: JobRunner | null = null;
  let dispatcher: Agent | null = null;
  return {
    name: 'pushline',
    settings: `consumers=${opts.consumers} concurrency=${opts.concurrency}/consumer`,
    add: (priority, data) => queue.enqueueOne({ type: 'bench', priority, payload: JSON.stringify(data) }),
    addBulk: (items) => queue.enqueue(items.map((i) => ({ type: 'bench', priority: i.priority, payload: JSON.stringify(i.data) }))),
    async work(onTask, onDone) {
      dispatcher = new Agent();
      runner = new JobRunner({
        queue,
        blockingConnection: (name) => createRedis(target, 'blocking', `bench-${name}`),
        registry: new ProcessorRegistry([{ type: 'bench', process: async (ctx) => void onTask(ctx.payload as { t?: string }) }]),
        consumers: opts.consumers,
        concurrency: opts.concurrency,
        visibilityMs: 30_000,
        shutdownTimeoutMs: 5000,
        reaperIntervalMs: 5000,
        taskPolicy: { maxAttempts: 3, baseMs: 1000, maxMs: 10_000 },
        webhook: { secret: 'x', timeoutMs: 1000, policy: { maxAttempts: 1, baseMs: 1, maxMs: 1 }, concurrency: 1, dispatcher },
        log: silentLogger,
        onSettled: (stage, _task, verdict) => {
          if (stage === 'tasks' && verdict.outcome === 'completed') onDone();
        },
      });
      await runner.start();
    },
    async stopWork() {
      await runner?.stop();
      await dispatcher?.close();
      runner = null;
    },
    async close() {
      command.disconnect();
    },
  };
}

export async function bullmqPeer(opts: PeerOptions): Promise<Peer> {
  const connection = { host: '127.0.0.1', port: opts.port, protocol: 2 as const, maxRetriesPerRequest: null };
  const queue = new Queue('bench', { connection });
  await queue.waitUntilReady();
  let workers: Worker[] = [];
  return {
    name: 'BullMQ',
    settings: `workers=${opts.consumers} concurrency=${opts.concurrency}/worker, default job options`,
    add: (priority, data) => queue.add('bench', data, { priority: 6 - priority }),
    addBulk: (items) => queue.addBulk(items.map((i) => ({ name: 'bench', data: i.data, opts: { priority: 6 - i.priority } }))),
    async work(onTask, onDone) {
      workers = Array.from({ length: opts.consumers }, () => {
        const w = new Worker('bench', async (job) => void onTask(job.data as { t?: string }), { connection, concurrency: opts.concurrency });
        w.on('completed', onDone);
        return w;
      });
      await Promise.all(workers.map((w) => w.waitUntilReady()));
    },
    async stopWork() {
      await Promise.all(workers.map((w) => w.close()));
      workers = [];
    },
    async close() {
      await queue.close();
    },
  };
}

export const PEERS = { pushline: pushlinePeer, bullmq: bullmqPeer } as const;
export type PeerName = keyof typeof PEERS;
