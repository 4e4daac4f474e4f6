// QUEUE_BACKEND=kafka: tasks travel on KAFKA_TASK_TOPIC (default `my-topic`) and are consumed by
// the group KAFKA_GROUP_ID (default `job-service-group`), the seed pipeline's names, with goim's
// PushMsg as the record value (kafka-codec.ts). Kafka keeps no priorities: a partition is
// consumed in order (said at start-up). Retries happen in place with backoff (a later record of
// the partition waits; its offset is committed only after this one's), and the final verdict
// goes to the task hash and, with a hook_url, the Redis results stage.
import { Consumer, Producer } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../util/log.ts';
import { allocateIds, BackendUnsupportedError, recordFinal, taskHashOf, type BackendName, type ConsumeOptions, type Consumption, type QueueBackend } from '../backend.ts';
import type { Handler, Verdict } from '../consumer.ts';
import type { EnqueueResult, NewTask, TaskQueue } from '../task-queue.ts';
import type { TaskHash } from '../task.ts';
import { decodeTask, DecodeError, encodeTask, headerText, TASK_HEADER } from './kafka-codec.ts';
import { processRecords } from './kafka-stream.ts';

export interface KafkaSettings {
  brokers: string[];
  topic: string;
  groupId: string;
  clientId: string;
}

export class KafkaBackend implements QueueBackend {
  readonly name: BackendName = 'kafka';
  readonly supportsPriority = false;
  readonly supportsIdempotency = false;
  private producer: Producer | null = null;
  private readonly consumers = new Set<Consumer>();

  constructor(
    private readonly tasks: TaskQueue,
    private readonly settings: KafkaSettings,
    private readonly log: Logger,
  ) {
    log.warn(`QUEUE_BACKEND=kafka: priorities are not supported; ${settings.topic} is consumed in order per partition`);
  }

  async enqueueOne(task: NewTask): Promise<EnqueueResult> {
    if (task.idempotency) throw new BackendUnsupportedError('Idempotency-Key needs QUEUE_BACKEND=redis');
    const { id, seq, nowMs } = await allocateIds(this.tasks.redis, this.tasks.keys, task.sequenceKey);
    const { value, headers } = encodeTask(taskHashOf(id, task, nowMs, seq));
    this.producer ??= new Producer({ clientId: `${this.settings.clientId}-producer`, bootstrapBrokers: this.settings.brokers });
    await this.producer.send({
      messages: [{ topic: this.settings.topic, key: Buffer.from(id), value, headers: new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }],
    });
    return { id, outcome: 'created', createdAtMs: nowMs };
  }

  async consume(handler: Handler, options: ConsumeOptions): Promise<Consumption> {
    const consumer = new Consumer({ groupId: this.settings.groupId, clientId: this.settings.clientId, bootstrapBrokers: this.settings.brokers });
    this.consumers.add(consumer);
    const stream = await consumer.consume({ topics: [this.settings.topic], autocommit: false, mode: 'committed', fallbackMode: 'earliest' });
    let stopping = false;
    const controller = new AbortController();
    const loop = processRecords(
      stream,
      options.concurrency,
      async (record) => {
        let hash: TaskHash;
        try {
          hash = await this.hashOf(record.value, headerText(record.headers, TASK_HEADER));
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          // A record nobody can read is skipped (and committed), loudly: it must not stop the partition.
          options.log.error({ topic: record.topic, partition: record.partition, offset: String(record.offset), err: err.message }, 'skipping an unreadable Kafka record');
          return;
        }
        await this.run(handler, hash, options, controller.signal);
      },
      {
        shouldStop: () => stopping,
        onCommitError: (err) => options.log.warn({ err: String(err) }, 'Kafka offset commit failed; the record may be read again'),
        onWorkError: (err, record) => options.log.error({ err: String(err), offset: String(record.offset) }, 'task not finished; its offset stays uncommitted'),
      },
    );
    return {
      stop: async (timeoutMs) => {
        stopping = true;
        const late = setTimeout(() => controller.abort(new Error('shutting down')), timeoutMs);
        await stream.close();
        await loop.catch(() => {});
        clearTimeout(late);
        await consumer.close();
        this.consumers.delete(consumer);
      },
    };
  }

  /** The task hash of a record: pushline's header, or a new id for a record goim wrote. */
  private async hashOf(value: Buffer | undefined, header: string | undefined): Promise<TaskHash> {
    const decoded = decodeTask(value, header);
    if (decoded.hash?.id) return decoded.hash;
    const { id, nowMs } = await allocateIds(this.tasks.redis, this.tasks.keys);
    return taskHashOf(id, { type: decoded.type, priority: decoded.priority ?? 3, ...(decoded.payload !== undefined ? { payload: decoded.payload } : {}), ...(decoded.hookUrl ? { hookUrl: decoded.hookUrl } : {}), fields: decoded.fields }, nowMs);
  }

  /** Attempts in place until a final verdict, which is recorded before the offset is committed. */
  private async run(handler: Handler, initial: TaskHash, options: ConsumeOptions, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const hash: TaskHash = { ...initial, status: 'processing', attempts: String(attempt), started_at: String(Date.now()) };
      let verdict: Verdict = await handler({ id: hash.id!, token: String(attempt), attempt, hash }, { signal });
      if (verdict.outcome === 'release') throw new Error('shutting down before the task finished');
      if (verdict.outcome === 'retry' && attempt >= options.maxAttempts) verdict = { outcome: 'dead', fields: verdict.fields ?? {} };
      if (verdict.outcome === 'retry') {
        await sleep(verdict.delayMs ?? options.backoffMs, undefined, { signal });
        continue;
      }
      await recordFinal(this.tasks, hash, attempt, verdict);
      return;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close().catch(() => {})));
    await this.producer?.close().catch(() => {});
  }
}
