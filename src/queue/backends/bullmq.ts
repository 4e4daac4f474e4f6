// QUEUE_BACKEND=bullmq: tasks are BullMQ jobs on the queue named REDIS_TASK_QUEUE (BullMQ's keys,
// `bull:<name>:*`, beside the engine's), priority p as BullMQ priority 6 − p (BullMQ: lower runs
// first; pushline: 5 is highest). The job's data is the task hash the engine would have stored,
// under the engine's id, so processors, logs and GET /tasks/:id see the same task either way.
// BullMQ retries with its own backoff; the final verdict is written to the task hash and the
// webhook goes through the Redis results stage.
import { Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { allocateIds, recordFinal, taskHashOf, type BackendName, type ConsumeOptions, type Consumption, type QueueBackend } from '../backend.ts';
import type { Handler } from '../consumer.ts';
import { bullmqPrefix } from '../keys.ts';
import { BackendUnsupportedError } from '../backend.ts';
import type { EnqueueResult, NewTask, TaskQueue } from '../task-queue.ts';
import type { TaskHash } from '../task.ts';

/** How long a worker's close may take after its processors were told to stop. */
const CLOSE_GRACE_MS = 5000;

interface JobData {
  hash: TaskHash;
}

/** pushline priority 1..5 (5 highest) → BullMQ priority (1 highest). */
export function bullmqPriority(priority: number): number {
  return 6 - priority;
}

export class BullmqBackend implements QueueBackend {
  readonly name: BackendName = 'bullmq';
  readonly supportsPriority = true;
  readonly supportsIdempotency = false;
  private readonly queue: Queue<JobData>;
  /** Each running worker with the connection made for it, so a close that hangs can cut it. */
  private readonly workers = new Map<Worker<JobData>, Redis>();

  constructor(
    private readonly tasks: TaskQueue,
    /** Opens a connection (BullMQ needs maxRetriesPerRequest: null, which `createRedis(…, 'command')` gives). */
    private readonly connection: () => Redis,
    private readonly options: { queueName: string; maxAttempts: number; backoffMs: number; lockDurationMs?: number },
  ) {
    this.queue = new Queue<JobData>(options.queueName, { connection: connection(), prefix: bullmqPrefix(tasks.keys) });
  }

  async enqueueOne(task: NewTask): Promise<EnqueueResult> {
    if (task.idempotency) throw new BackendUnsupportedError('Idempotency-Key needs QUEUE_BACKEND=redis');
    const { id, seq, nowMs } = await allocateIds(this.tasks.redis, this.tasks.keys, task.sequenceKey);
    const hash = taskHashOf(id, task, nowMs, seq);
    await this.queue.add(task.type, { hash }, {
      jobId: id,
      priority: bullmqPriority(task.priority),
      attempts: task.maxAttempts ?? this.options.maxAttempts,
      backoff: { type: 'exponential', delay: this.options.backoffMs },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 86_400 },
    });
    return { id, outcome: 'created', createdAtMs: nowMs };
  }

  async consume(handler: Handler, options: ConsumeOptions): Promise<Consumption> {
    const tasks = this.tasks;
    // Running jobs' abort controllers: stop() tells their processors to give the task back.
    const running = new Set<AbortController>();
    const connection = this.connection();
    const worker = new Worker<JobData>(
      this.options.queueName,
      async (job: Job<JobData>, token, signal) => {
        const attempt = job.attemptsMade + 1;
        const hash: TaskHash = { ...job.data.hash, status: 'processing', attempts: String(attempt), started_at: String(Date.now()) };
        const controller = new AbortController();
        signal?.addEventListener('abort', () => controller.abort(signal.reason));
        running.add(controller);
        const verdict = await handler({ id: hash.id!, token: String(attempt), attempt, hash }, { signal: controller.signal }).finally(() => running.delete(controller));
        // Retries are BullMQ's: a plain error lets it try again with its backoff.
        if (verdict.outcome === 'release' && token) {
          // Handed back at shutdown: back in line without spending an attempt, as the engine does.
          await job.moveToWait(token);
          throw new WaitingError();
        }
        if (verdict.outcome === 'retry' || verdict.outcome === 'release') {
          const error = verdict.fields?.error ?? 'retry';
          if (attempt < (job.opts.attempts ?? 1)) throw new Error(error);
          // BullMQ's last attempt: it will not try again, so this is the end of the task.
          await recordFinal(tasks, hash, attempt, { outcome: 'dead', fields: { error } });
          throw new UnrecoverableError(error);
        }
        await recordFinal(tasks, hash, attempt, verdict);
        if (verdict.outcome === 'completed') return verdict.fields?.result ?? 'null';
        throw new UnrecoverableError(verdict.fields?.error ?? verdict.outcome);
      },
      {
        connection,
        prefix: bullmqPrefix(tasks.keys),
        concurrency: options.concurrency,
        autorun: true,
        // A worker that died holding a job: BullMQ hands the job on once its lock expires.
        ...(this.options.lockDurationMs ? { lockDuration: this.options.lockDurationMs, stalledInterval: this.options.lockDurationMs } : {}),
      },
    );
    worker.on('error', (err) => options.log.warn({ err: String(err) }, 'BullMQ worker error'));
    this.workers.set(worker, connection);
    await worker.waitUntilReady();
    return {
      stop: async (timeoutMs) => {
        // BullMQ waits for running jobs; past the deadline they are left to its stalled-job
        // check, which hands them to another worker.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
        const closed = worker.close();
        if ((await Promise.race([closed, late])) === 'late') {
          // Past the deadline: processors are told to stop; what they give back is retried.
          for (const c of running) c.abort(new Error('shutting down'));
          await this.closeWithin(worker, closed, CLOSE_GRACE_MS, options.log);
        }
        clearTimeout(timer);
      },
    };
  }

  /**
   * Waits for BullMQ's worker.close() at most `graceMs`. On a Redis Cluster it was seen (about 1
   * run in 10 of the contract's hand-back case) never to resolve after a job was moved back to
   * wait: past the grace the worker's connection is cut and the worker left behind. Nothing is
   * lost by that: a handed-back job is in wait already, and any other job's lock expires and
   * BullMQ's stalled-job check hands it to another worker.
   */
  private async closeWithin(worker: Worker<JobData>, closing: Promise<void>, graceMs: number, log?: ConsumeOptions['log']): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const outcome = await Promise.race([closing.then(() => 'closed' as const, () => 'closed' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      log?.warn({ graceMs }, 'BullMQ worker did not close in time; disconnecting it');
      this.workers.get(worker)?.disconnect();
    }
    this.workers.delete(worker);
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((w) => this.closeWithin(w, w.close(), CLOSE_GRACE_MS)));
    await this.queue.close();
  }
}
