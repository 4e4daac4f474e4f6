// The job's moving parts in one place: task consumers (one blocking connection each), the
// webhook consumer of the results stage, and the reaper; started and stopped in order.
import type { Redis } from 'ioredis';
import type { Dispatcher } from 'undici';
import type { Logger } from '../util/log.ts';
import { Consumer, type ConsumerOptions, type Verdict } from '../queue/consumer.ts';
import type { ClaimedTask } from '../queue/task.ts';
import type { TaskQueue } from '../queue/task-queue.ts';
import type { ProcessorRegistry } from './processor.ts';
import { Reaper } from './reaper.ts';
import { createTaskHandler, type RetryPolicy } from './task-handler.ts';
import { createWebhookHandler } from './webhook-handler.ts';
import type { TimeoutPolicy } from './timeouts.ts';
import { settledEvent, type TaskNotifier } from './task-status.ts';
import type { JobMetrics } from './metrics.ts';
import type { Consumption, QueueBackend } from '../queue/backend.ts';

export interface JobRunnerOptions {
  queue: TaskQueue;
  /** Opens a new dedicated connection for a consumer's BZPOPMIN. */
  blockingConnection: (name: string) => Redis;
  registry: ProcessorRegistry;
  consumers: number;
  concurrency: number;
  visibilityMs: number;
  shutdownTimeoutMs: number;
  reaperIntervalMs: number;
  taskPolicy: RetryPolicy;
  /** TASK_TIMEOUT_MS / TASK_TIMEOUTS (a task's own timeout_ms wins). */
  taskTimeouts?: TimeoutPolicy;
  webhook: {
    secret: string;
    timeoutMs: number;
    policy: RetryPolicy;
    concurrency: number;
    dispatcher: Dispatcher;
  };
  log: Logger;
  /** Tells tasks' users/rooms about status changes (tasks submitted with user_id/room_id). */
  notifier?: TaskNotifier;
  metrics?: JobMetrics;
  /** QUEUE_BACKEND other than redis: tasks come from it; webhooks and the reaper stay on Redis. */
  backend?: QueueBackend;
  onSettled?: (stage: 'tasks' | 'results', task: ClaimedTask, verdict: Verdict, applied: boolean) => void;
}

export class JobRunner {
  private readonly consumers: Consumer[] = [];
  private readonly blocking: Redis[] = [];
  private reaper: Reaper | null = null;
  private external: Consumption | null = null;

  constructor(private readonly options: JobRunnerOptions) {}

  async start(): Promise<void> {
    const o = this.options;
    const external = o.backend && o.backend.name !== 'redis' ? o.backend : null;
    if (external) await this.startExternal(external);
    const engineConsumers = external ? 0 : o.consumers;
    for (let i = 0; i < engineConsumers; i++) {
      const log = o.log.child({ consumer: i });
      // One handler per consumer, so every task log line says which consumer ran it.
      const taskHandler = createTaskHandler(o.registry, o.taskPolicy, log, { ...(o.notifier ? { notifier: o.notifier } : {}), ...(o.metrics ? { metrics: o.metrics } : {}), ...(o.taskTimeouts ? { timeouts: o.taskTimeouts } : {}) });
      this.consumers.push(
        await this.startConsumer(`consumer-${i}`, {
          index: i,
          stage: o.queue.tasks,
          concurrency: o.concurrency,
          visibilityMs: o.visibilityMs,
          handler: taskHandler,
          log,
          onSettled: (t, v, a) => this.taskSettled(t, v, a),
        }),
      );
      log.info(`Consumer ${i} started successfully`);
    }
    o.log.info(
      { queue: o.queue.keys.tasks.queue, concurrency: o.concurrency, types: o.registry.types() },
      `Started ${engineConsumers} consumers on ${o.queue.keys.tasks.queue}`,
    );

    const webhookLog = o.log.child({ stage: 'webhooks' });
    this.consumers.push(
      await this.startConsumer('webhooks', {
        index: o.consumers,
        stage: o.queue.results,
        concurrency: o.webhook.concurrency,
        visibilityMs: Math.max(o.visibilityMs, o.webhook.timeoutMs * 3),
        handler: createWebhookHandler({ ...o.webhook, log: webhookLog }),
        log: webhookLog,
        onSettled: (t, v, a) => {
          if (a) o.metrics?.webhook(v.outcome);
          o.onSettled?.('results', t, v, a);
        },
      }),
    );
    webhookLog.info(`Webhook sender started on ${o.queue.keys.results.queue}`);

    this.reaper = new Reaper(
      [
        { stage: o.queue.tasks, maxAttempts: o.taskPolicy.maxAttempts },
        { stage: o.queue.results, maxAttempts: o.webhook.policy.maxAttempts },
      ],
      o.reaperIntervalMs,
      o.log.child({ part: 'reaper' }),
    );
    this.reaper.start();
  }

  /** After the verdict is saved (so GET /tasks/:id agrees with the notification). */
  private taskSettled(task: ClaimedTask, verdict: Verdict, applied: boolean): void {
    const { notifier, onSettled, metrics } = this.options;
    if (applied) metrics?.settled(task.hash.type ?? '', verdict.outcome);
    if (applied && notifier?.wants(task.hash)) {
      const event = settledEvent(task.attempt, verdict);
      if (event) notifier.notify(task.id, task.hash, event);
    }
    onSettled?.('tasks', task, verdict, applied);
  }

  /** Tasks from BullMQ or Kafka, through the same handler (processors, logs, notifications, metrics). */
  private async startExternal(backend: QueueBackend): Promise<void> {
    const o = this.options;
    const log = o.log.child({ consumer: backend.name });
    const handler = createTaskHandler(o.registry, o.taskPolicy, log, { ...(o.notifier ? { notifier: o.notifier } : {}), ...(o.metrics ? { metrics: o.metrics } : {}), ...(o.taskTimeouts ? { timeouts: o.taskTimeouts } : {}) });
    this.external = await backend.consume(
      async (task, control) => {
        const verdict = await handler(task, control);
        this.taskSettled(task, verdict, true);
        return verdict;
      },
      { concurrency: o.consumers * o.concurrency, maxAttempts: o.taskPolicy.maxAttempts, backoffMs: o.taskPolicy.baseMs, log },
    );
    log.info(`Consuming tasks from ${backend.name} (concurrency ${o.consumers * o.concurrency})`);
  }

  private async startConsumer(name: string, options: Omit<ConsumerOptions, 'blocking'>): Promise<Consumer> {
    const blocking = this.options.blockingConnection(name);
    this.blocking.push(blocking);
    await blocking.connect();
    const consumer = new Consumer({ ...options, blocking });
    consumer.start();
    return consumer;
  }

  get inflight(): number {
    return this.consumers.reduce((n, c) => n + c.inflight, 0);
  }

  /** Stop claiming, let running tasks finish (bounded), hand back the rest. */
  async stop(): Promise<void> {
    const o = this.options;
    o.log.info({ inflight: this.inflight, timeoutMs: o.shutdownTimeoutMs }, 'stopping: no new tasks, finishing in-flight ones');
    await Promise.all([...this.consumers.map((c) => c.stop(o.shutdownTimeoutMs)), this.external?.stop(o.shutdownTimeoutMs)]);
    await this.reaper?.stop();
    for (const b of this.blocking) b.disconnect();
    o.log.info('job stopped');
  }
}
