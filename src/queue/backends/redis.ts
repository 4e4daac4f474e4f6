// The default backend: this package's Redis engine. Enqueue is TaskQueue's (batched script
// calls, idempotency, room seq in the same step); consumption is one Consumer per blocking
// connection, each claiming up to `concurrency` tasks (what JobRunner runs in `pushline job`).
import type { Redis } from 'ioredis';
import type { BackendName, ConsumeOptions, Consumption, QueueBackend } from '../backend.ts';
import { Consumer, type Handler } from '../consumer.ts';
import type { EnqueueResult, NewTask, TaskQueue } from '../task-queue.ts';

export class RedisBackend implements QueueBackend {
  readonly name: BackendName = 'redis';
  readonly supportsPriority = true;
  readonly supportsIdempotency = true;

  constructor(
    readonly queue: TaskQueue,
    /** A new connection for a consumer's BZPOPMIN (a blocked connection serves nothing else). */
    private readonly blockingConnection: () => Redis,
  ) {}

  enqueueOne(task: NewTask): Promise<EnqueueResult> {
    return this.queue.enqueueOne(task);
  }

  async consume(handler: Handler, options: ConsumeOptions): Promise<Consumption> {
    const blocking = this.blockingConnection();
    await blocking.connect();
    const consumer = new Consumer({
      index: 0,
      stage: this.queue.tasks,
      concurrency: options.concurrency,
      visibilityMs: 30_000,
      handler,
      blocking,
      log: options.log,
    });
    consumer.start();
    return {
      async stop(timeoutMs) {
        await consumer.stop(timeoutMs);
        blocking.disconnect();
      },
    };
  }

  async close(): Promise<void> {}
}
