// Consuming a Kafka stream with bounded concurrency and at-least-once commits: a record's offset
// is committed only after its work is done AND every earlier record of its partition is done too
// (a Kafka commit covers everything before it). A crash between work and commit replays the
// record, so the work must be idempotent or tolerate a repeat (the drain tool dedupes by offset).

/** The parts of a consumed record this loop needs (@platformatic/kafka's Message has them). */
export interface CommittableRecord {
  topic: string;
  partition: number;
  offset: bigint;
  commit(): void | Promise<void>;
}

interface Pending {
  record: CommittableRecord;
  done: boolean;
}

/** Tracks in-flight records per partition and commits the longest finished prefix. */
export class OrderedCommits {
  private readonly partitions = new Map<string, Pending[]>();
  committed = 0;

  constructor(private readonly onCommitError: (err: unknown) => void = () => {}) {}

  track(record: CommittableRecord): Pending {
    const key = `${record.topic}\u0000${record.partition}`;
    let list = this.partitions.get(key);
    if (!list) this.partitions.set(key, (list = []));
    const pending = { record, done: false };
    list.push(pending);
    return pending;
  }

  async finish(pending: Pending): Promise<void> {
    pending.done = true;
    const key = `${pending.record.topic}\u0000${pending.record.partition}`;
    const list = this.partitions.get(key)!;
    let last: Pending | undefined;
    while (list.length > 0 && list[0]!.done) last = list.shift();
    if (!last) return;
    try {
      await last.record.commit();
      this.committed++;
    } catch (err) {
      this.onCommitError(err);
    }
  }
}

/**
 * Runs `work` for each record of `stream` with at most `concurrency` at once, committing in
 * order. Resolves when the stream ends (or `shouldStop()` turns true) and all work has settled.
 */
export async function processRecords<R extends CommittableRecord>(
  stream: AsyncIterable<R>,
  concurrency: number,
  work: (record: R) => Promise<void>,
  options: { shouldStop?: () => boolean; onCommitError?: (err: unknown) => void; onWorkError?: (err: unknown, record: R) => void } = {},
): Promise<OrderedCommits> {
  const commits = new OrderedCommits(options.onCommitError);
  const running = new Set<Promise<void>>();
  for await (const record of stream) {
    const pending = commits.track(record);
    // Work that fails is not committed, and neither is anything after it in its partition:
    // the group's next consumer starts from it again.
    const task: Promise<void> = work(record)
      .then(
        () => commits.finish(pending),
        (err: unknown) => options.onWorkError?.(err, record),
      )
      .finally(() => running.delete(task));
    running.add(task);
    if (running.size >= concurrency) await Promise.race(running);
    if (options.shouldStop?.()) break;
  }
  await Promise.allSettled(running);
  return commits;
}
