// QueueBackend: what logic submits tasks to and what job consumes them from. The Redis engine
// (this package's own queue) is the default; BullMQ and Kafka sit behind the same interface for
// teams on their way over (docs/backends.md). Whatever the backend, a task's final state lands
// in its Redis hash (`task:{id}`, so GET /tasks/:id answers) and its webhook goes through the
// Redis results stage, with the same retries and signature.
import { runScript } from './scripts.ts';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { Handler, Verdict } from './consumer.ts';
import type { EnqueueResult, NewTask, TaskQueue } from './task-queue.ts';
import type { QueueKeys } from './keys.ts';
import type { TaskHash } from './task.ts';

export const BACKEND_NAMES = ['redis', 'bullmq', 'kafka'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface ConsumeOptions {
  /** Tasks run at once by this consumer. */
  concurrency: number;
  /** Attempts before a failing task is dead-lettered (the handler's verdicts decide; backends that retry themselves are told). */
  maxAttempts: number;
  backoffMs: number;
  log: Logger;
}

export interface Consumption {
  /** Stop taking tasks, wait up to `timeoutMs` for running ones, hand the rest back. */
  stop(timeoutMs: number): Promise<void>;
}

export interface QueueBackend {
  readonly name: BackendName;
  /** False for Kafka: a topic is consumed in order, priorities are ignored (said at start-up). */
  readonly supportsPriority: boolean;
  /** Idempotency-Key, cancel and the per-priority view are the Redis engine's alone. */
  readonly supportsIdempotency: boolean;
  enqueueOne(task: NewTask): Promise<EnqueueResult>;
  consume(handler: Handler, options: ConsumeOptions): Promise<Consumption>;
  close(): Promise<void>;
}

/** An operation the configured backend cannot do; logic answers 501 with this message. */
export class BackendUnsupportedError extends Error {
  override readonly name = 'BackendUnsupportedError';
}

/**
 * Retry of a dead-lettered task (the dashboard's and `pushline queue retry`). Tasks that die under
 * any backend land in the engine's dead set, but only the Redis engine's consumers read the queue
 * a revived task goes back to: with another backend it would sit there for ever, so it is
 * refused. Returns false when the id is not dead-lettered.
 */
export async function reviveDeadTask(queue: TaskQueue, backend: BackendName, id: string): Promise<boolean> {
  if (backend !== 'redis') {
    throw new BackendUnsupportedError(
      `retrying a dead-lettered task needs QUEUE_BACKEND=redis: with ${backend} nothing consumes the engine's queue, so task ${id} would never run (submit it again instead)`,
    );
  }
  return queue.tasks.revive(id);
}

/** The hash a task would have in the Redis engine, as carried by the other backends' messages. */
export function taskHashOf(id: string, task: NewTask, createdAtMs: number, seq?: number): TaskHash {
  const hash: TaskHash = {
    id,
    type: task.type,
    priority: String(task.priority),
    status: 'queued',
    attempts: '0',
    created_at: String(createdAtMs),
    ...task.fields,
  };
  if (task.payload !== undefined) hash.payload = task.payload;
  if (task.hookUrl) hash.hook_url = task.hookUrl;
  if (task.maxAttempts !== undefined) hash.max_attempts = String(task.maxAttempts);
  if (seq !== undefined) hash.seq = String(seq);
  return hash;
}

/**
 * Ids for tasks of the other backends: the Redis engine's counter and format, so ids never clash
 * and GET /tasks/:id takes them; a room message's seq from its counter, like enqueue.lua does.
 * Both counters are the ones the engine would use for this task (`sequenceName` is the routing
 * name, room:seq:<room>): the room's fixed shard, whose slot holds its id counter and its seq
 * counter, so the script stays in one Redis Cluster slot and the id names that shard. Numbered by
 * allocate-id.lua, which lifts the counter as enqueue.lua does: no id repeats after a failover.
 */
export async function allocateIds(redis: Redis, keys: QueueKeys, sequenceName?: string): Promise<{ id: string; seq?: number; nowMs: number }> {
  const shard = sequenceName ? keys.ofName(sequenceName) : keys;
  const counters = [shard.taskSeq, shard.enqueuedCount, ...(sequenceName ? [shard.sequence(sequenceName)] : [])];
  const [id, nowMs, seq] = (await runScript(redis, 'allocate-id', counters, [shard.idPrefix])) as [string, number, number?];
  return { id, nowMs: Number(nowMs), ...(sequenceName ? { seq: Number(seq) } : {}) };
}

/**
 * A final verdict reached outside the Redis engine: written to the task hash (retention as the
 * engine does) and, with a hook_url, handed to the results stage for its webhook.
 * Returns false for a verdict that is not final (retry, release).
 */
export async function recordFinal(queue: TaskQueue, hash: TaskHash, attempt: number, verdict: Verdict): Promise<boolean> {
  if (verdict.outcome !== 'completed' && verdict.outcome !== 'failed' && verdict.outcome !== 'dead') return false;
  await queue.recordFinished(hash, attempt, verdict.outcome, verdict.fields ?? {});
  return true;
}
