// Every Redis key the queue uses is named here and nowhere else, together with the score
// formula, so redis-cli users, scripts and code agree on one contract (DESIGN §2).
//
// Two layouts (docs/scaling.md):
// - plain (one standalone Redis, one shard): today's exact names, `uvr_tasks`, `task:<id>`, ...
// - tagged (REDIS_CLUSTER_NODES set, or REDIS_QUEUE_SHARDS > 1): every key of one shard carries
//   the shard's hash tag, `{uvr_tasks}` (or `{uvr_tasks:2}`), so each Lua script and MULTI
//   touches a single Redis Cluster slot: both stages, the task hashes, the id counter, the
//   idempotency keys and the room seq counters of the rooms whose messages go to that shard.

export const PRIORITIES = [5, 4, 3, 2, 1] as const;

/** score = enqueue_ms × (6 − priority): lowest pops first, so priority 5 beats 1. */
export function queueScore(enqueueMs: number, priority: number): number {
  return enqueueMs * (6 - priority);
}

/**
 * The score range that holds exactly the tasks of one priority enqueued within
 * [now − ~5 years, now + 1 day]. Ranges of neighbouring priorities are separated at
 * (6 − p ± 0.5) × now, which is how per-priority counts come from ZCOUNT alone.
 */
export function priorityScoreRange(priority: number, nowMs: number): [number, number] {
  const factor = 6 - priority;
  const horizon = nowMs + 86_400_000;
  const lo = factor === 1 ? 0 : Math.floor((factor - 0.5) * horizon);
  const hi = Math.floor((factor + 0.5) * horizon) - 1;
  return [lo, hi];
}

/**
 * Task ids are zero-padded counters (enqueue.lua), so same-score ties in a ZSET pop in enqueue
 * order. With REDIS_QUEUE_SHARDS > 1 the id starts with its shard and a dash (`2-000000000017`):
 * GET and DELETE read the shard from the id instead of searching.
 */
export const TASK_ID_PATTERN = /^(?:[0-9]{1,3}-)?[0-9]{12,20}$/;

/** The most shards REDIS_QUEUE_SHARDS accepts (ids carry the shard in up to 3 digits). */
export const MAX_SHARDS = 256;

/** The keys of one stage: a ZSET queue plus its lease, retry, dead-letter and wake-up sets. */
export interface StageKeys {
  readonly queue: string;
  readonly processing: string;
  readonly delayed: string;
  readonly dead: string;
  /** Wake-up ZSET that blocked consumers BZPOPMIN; the real queue is only touched in Lua. */
  readonly marker: string;
  /**
   * Task stage only: completed, failed and canceled task ids, score = finish time (ms), trimmed
   * to the retention window: the index GET /tasks?status= walks. settle.lua and cancel.lua
   * derive it from the queue key (`<queue>:finished`), the same slot in the tagged layout.
   */
  readonly finished: string;
}

/** The complete key set of one shard (the only shard unless REDIS_QUEUE_SHARDS > 1). */
export interface QueueKeys {
  readonly prefix: string;
  /** Laid out for a Redis Cluster (KeyNames.tagged): routing keys are tagged too. */
  readonly cluster: boolean;
  /** This key set's shard: 0 … shards.length − 1. */
  readonly shard: number;
  /** Every shard's key set, in shard order; one entry when the queue is not sharded. */
  readonly shards: readonly QueueKeys[];
  /** The shard's hash tag with its braces (`{uvr_tasks}`), or null for the plain layout. */
  readonly tag: string | null;
  /** Put before the counter value to make a task id: '' unsharded, `2-` on shard 2. */
  readonly idPrefix: string;
  readonly tasks: StageKeys;
  readonly results: StageKeys;
  readonly taskSeq: string;
  /** How many tasks were ever created in this shard (the id counter no longer counts: it is lifted to the clock). */
  readonly enqueuedCount: string;
  readonly taskPrefix: string;
  readonly workers: string;
  /**
   * Delayed and scheduled tasks (delay_ms / run_at) of this shard waiting for their start: a
   * ZSET, score = due ms. claim.lua moves the due ones into the queue (docs/queue.md).
   */
  readonly scheduled: string;
  /** Recurring schedules: a HASH name → definition (JSON), one for the whole queue (shard 0's slot). */
  readonly schedules: string;
  /** Recurring schedules: a ZSET name → next run ms (shard 0's slot, beside `schedules`). */
  readonly scheduleRuns: string;
  /** The hash of any task of the queue, whatever its shard (read from the id). */
  task(id: string): string;
  /** The key set of the shard that holds task `id`. */
  ofTask(id: string): QueueKeys;
  /** The shard whose slot holds this idempotency key or room seq counter: a fixed one per name. */
  ofName(name: string): QueueKeys;
  /** An idempotency key, in this shard's slot. */
  idempotency(key: string): string;
  /**
   * A sequence counter (room:seq:<room>, as routing keys name it) in this shard's slot: the
   * name itself in the plain layout, `{uvr_tasks}:room:seq:<room>` when tagged.
   */
  sequence(name: string): string;
}

function stageKeys(name: string): StageKeys {
  return {
    queue: name,
    processing: `${name}:processing`,
    delayed: `${name}:delayed`,
    dead: `${name}:dead`,
    marker: `${name}:marker`,
    finished: `${name}:finished`,
  };
}

export interface KeyNames {
  keyPrefix?: string;
  taskQueue?: string;
  resultQueue?: string;
  /** Hash-tag every key (Redis Cluster); implied when shards > 1. */
  tagged?: boolean;
  /** REDIS_QUEUE_SHARDS: complete key sets the tasks spread over (default 1). */
  shards?: number;
}

/** FNV-1a: a small stable hash, so a name maps to the same shard in every process. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const SHARDED_ID = /^([0-9]{1,3})-/;

export function queueKeys(names: KeyNames = {}): QueueKeys {
  const prefix = names.keyPrefix ?? '';
  const count = names.shards ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) throw new Error(`shards must be 1 to ${MAX_SHARDS}, got ${count}`);
  const tagged = names.tagged === true || count > 1;
  const taskQueue = prefix + (names.taskQueue ?? 'uvr_tasks');
  const resultQueue = prefix + (names.resultQueue ?? 'uvr_results');
  const shards: QueueKeys[] = [];
  const ofTask = (id: string): QueueKeys => {
    const m = count > 1 ? SHARDED_ID.exec(id) : null;
    return (m && shards[Number(m[1])]) || shards[0]!;
  };
  const ofName = (name: string): QueueKeys => shards[count > 1 ? fnv1a(name) % count : 0]!;

  for (let shard = 0; shard < count; shard++) {
    let keys: QueueKeys;
    if (!tagged) {
      const taskPrefix = `${prefix}task:`;
      keys = {
        prefix, cluster: false, shard, shards, tag: null, idPrefix: '',
        tasks: stageKeys(taskQueue),
        results: stageKeys(resultQueue),
        taskSeq: `${taskQueue}:seq`,
        enqueuedCount: `${taskQueue}:enqueued`,
        taskPrefix,
        workers: `${prefix}workers`,
        scheduled: `${taskQueue}:scheduled`,
        schedules: `${taskQueue}:schedules`,
        scheduleRuns: `${taskQueue}:schedules:next`,
        task: (id) => taskPrefix + id,
        ofTask, ofName,
        idempotency: (key) => `${prefix}idempotency:${key}`,
        sequence: (name) => name,
      };
    } else {
      // `{uvr_tasks}` / `{uvr_tasks:2}`: the tag holds the prefix too, so test prefixes spread.
      const tag = `{${taskQueue}${count > 1 ? `:${shard}` : ''}}`;
      const taskPrefix = `${tag}:task:`;
      keys = {
        prefix, cluster: names.tagged === true, shard, shards, tag, idPrefix: count > 1 ? `${shard}-` : '',
        tasks: stageKeys(tag),
        results: stageKeys(`${tag}:${names.resultQueue ?? 'uvr_results'}`),
        taskSeq: `${tag}:seq`,
        enqueuedCount: `${tag}:enqueued`,
        taskPrefix,
        workers: `${prefix}workers`,
        scheduled: `${tag}:scheduled`,
        // Schedules are few and global: they live in the first shard's slot, whatever shard this is.
        schedules: `{${taskQueue}${count > 1 ? ':0' : ''}}:schedules`,
        scheduleRuns: `{${taskQueue}${count > 1 ? ':0' : ''}}:schedules:next`,
        task: (id) => ofTask(id).taskPrefix + id,
        ofTask, ofName,
        idempotency: (key) => `${tag}:idempotency:${key}`,
        // The routing name carries the key prefix already; inside the tag it is not repeated.
        sequence: (name) => `${tag}:${name.startsWith(prefix) ? name.slice(prefix.length) : name}`,
      };
    }
    shards.push(keys);
  }
  return shards[0]!;
}

/**
 * QUEUE_BACKEND=bullmq: the prefix of BullMQ's own keys (`bull:<queue>:*` beside the engine's).
 * On a Redis Cluster BullMQ's scripts need the whole queue in one slot, which BullMQ documents as
 * a hash-tagged prefix: `{bull}:<queue>:*`.
 */
export function bullmqPrefix(keys: QueueKeys): string {
  return keys.tag === null ? `${keys.prefix}bull` : `{${keys.prefix}bull}`;
}

/**
 * The keys of groups (docs/queue.md, "Groups") on one shard, all named after its task queue key
 * (`uvr_tasks` plain, `{uvr_tasks}` tagged) so they share its hash slot; lib/groups.lua builds
 * the same names from the queue key it is given.
 */
export interface GroupKeys {
  /** ZSET: the group's waiting tasks, scored like the queue. */
  waiting(name: string): string;
  /** The queue (and delayed ZSET) member that stands for a group: not a task id (those are digits). */
  entry(name: string): string;
  /** HASH: group → its limits, `concurrency max per_ms` ('-' = unset). */
  readonly limits: string;
  /** HASH: group → how many of its tasks are leased now. */
  readonly running: string;
  /** SET: groups at their concurrency limit, out of line until one of their tasks settles. */
  readonly blocked: string;
  /** SET: groups that have tasks waiting or running (what stats and GET /groups walk). */
  readonly names: string;
  /** ZSET: the group's starts in its current rate window (member id:ms, score ms). */
  starts(name: string): string;
}

export function groupKeys(taskQueue: string): GroupKeys {
  return {
    waiting: (name) => `${taskQueue}:group:${name}`,
    entry: (name) => `group:${name}`,
    limits: `${taskQueue}:group_limits`,
    running: `${taskQueue}:group_running`,
    blocked: `${taskQueue}:group_blocked`,
    names: `${taskQueue}:group_names`,
    starts: (name) => `${taskQueue}:group_starts:${name}`,
  };
}
