// `pushline migrate kafka-to-redis`: moves what is left in the old Kafka topic into the Redis
// queue. Each record becomes a task through the engine's idempotent enqueue, keyed by its
// topic/partition/offset, and its offset is committed only after Redis took the write: a crash
// replays records, a re-run finds them already there (counted as duplicates), nothing is lost.
// Records nobody can read are kept (raw, base64) in the list `migrate:kafka:rejected` before
// their offset is committed, so the drain finishes and they stay inspectable.
import type { Redis } from 'ioredis';
import { decodeTask, DecodeError, headerText, TASK_HEADER } from '../queue/backends/kafka-codec.ts';
import { processRecords, type CommittableRecord } from '../queue/backends/kafka-stream.ts';
import type { NewTask, TaskQueue } from '../queue/task-queue.ts';

export interface DrainRecord extends CommittableRecord {
  key?: Buffer | null;
  value?: Buffer | null;
  headers?: Map<unknown, unknown>;
}

export interface DrainCounts {
  read: number;
  enqueued: number;
  duplicates: number;
  rejected: number;
}

export interface DrainOptions {
  queue: TaskQueue;
  /** Room messages get a per-room seq, as if sent through /logic/send. */
  roomSeqKey: (roomId: string) => string;
  defaultPriority: number;
  /** Records written to Redis at once (the order of commits is kept whatever this is). */
  concurrency: number;
  dryRun?: boolean;
  shouldStop?: () => boolean;
  onProgress?: (counts: DrainCounts) => void;
}

export function rejectedKey(queue: TaskQueue): string {
  return `${queue.keys.prefix}migrate:kafka:rejected`;
}

/** The task a record becomes; its idempotency key makes a second drain of it a no-op. */
export function taskOfRecord(record: DrainRecord, defaultPriority: number, roomSeqKey: (roomId: string) => string): NewTask {
  const decoded = decodeTask(record.value, headerText(record.headers, TASK_HEADER));
  const key = `kafka:${record.topic}:${record.partition}:${record.offset}`;
  const priority = decoded.priority && decoded.priority >= 1 && decoded.priority <= 5 ? decoded.priority : defaultPriority;
  // What pushline itself wrote keeps its request id; the drain records where each task came from.
  const fields: Record<string, string> = { ...decoded.fields, migrated_from: key };
  delete fields.seq;
  const roomId = decoded.type === 'push' ? fields.room_id : undefined;
  return {
    type: decoded.type,
    priority,
    ...(decoded.payload !== undefined ? { payload: decoded.payload } : {}),
    ...(decoded.hookUrl ? { hookUrl: decoded.hookUrl } : {}),
    fields,
    idempotency: { key, fingerprint: key },
    ...(roomId && decoded.payload?.includes('"mode":"room"') ? { sequenceKey: roomSeqKey(roomId) } : {}),
  };
}

export async function drainRecords(stream: AsyncIterable<DrainRecord>, options: DrainOptions): Promise<DrainCounts> {
  const counts: DrainCounts = { read: 0, enqueued: 0, duplicates: 0, rejected: 0 };
  const redis: Redis = options.queue.redis;
  // The first real failure (Redis away): stop reading, leave its offset uncommitted, report it.
  let failure: unknown = null;
  await processRecords(
    stream,
    options.concurrency,
    async (record) => {
      counts.read++;
      let task: NewTask;
      try {
        task = taskOfRecord(record, options.defaultPriority, options.roomSeqKey);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        counts.rejected++;
        if (!options.dryRun) {
          const entry = { topic: record.topic, partition: record.partition, offset: String(record.offset), error: err.message, value: record.value ? record.value.toString('base64') : null };
          await redis.rpush(rejectedKey(options.queue), JSON.stringify(entry));
        }
        options.onProgress?.(counts);
        return;
      }
      if (options.dryRun) {
        counts.enqueued++;
        options.onProgress?.(counts);
        // A dry run must not move the group's offsets: nothing was written.
        throw new DryRun();
      }
      const result = await options.queue.enqueueOne(task);
      if (result.outcome === 'created') counts.enqueued++;
      else counts.duplicates++;
      options.onProgress?.(counts);
    },
    {
      shouldStop: () => failure !== null || (options.shouldStop?.() ?? false),
      onWorkError: (err) => {
        if (!(err instanceof DryRun)) failure ??= err;
      },
    },
  );
  if (failure) throw new DrainError(`stopped after ${counts.enqueued} enqueued: ${(failure as Error).message}; the record that failed and those after it were not committed: run the drain again`, counts);
  return counts;
}

export class DrainError extends Error {
  constructor(
    message: string,
    readonly counts: DrainCounts,
  ) {
    super(message);
    this.name = 'DrainError';
  }
}

/** Not an error: a dry run's way of leaving a record uncommitted. */
class DryRun extends Error {}
