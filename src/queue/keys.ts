// Every Redis key the queue uses is named here and nowhere else, together with the score
// formula, so redis-cli users, scripts and code agree on one contract (DESIGN §2).

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

/** Task ids are zero-padded counters (enqueue.lua), so same-score ties in a ZSET pop in enqueue order. */
export const TASK_ID_PATTERN = /^[0-9]{12,20}$/;

/** The keys of one stage: a ZSET queue plus its lease, retry, dead-letter and wake-up sets. */
export interface StageKeys {
  readonly queue: string;
  readonly processing: string;
  readonly delayed: string;
  readonly dead: string;
  /** Wake-up ZSET that blocked consumers BZPOPMIN; the real queue is only touched in Lua. */
  readonly marker: string;
}

export interface QueueKeys {
  readonly prefix: string;
  readonly tasks: StageKeys;
  readonly results: StageKeys;
  readonly taskSeq: string;
  readonly taskPrefix: string;
  readonly workers: string;
  task(id: string): string;
  idempotency(key: string): string;
}

function stageKeys(name: string): StageKeys {
  return {
    queue: name,
    processing: `${name}:processing`,
    delayed: `${name}:delayed`,
    dead: `${name}:dead`,
    marker: `${name}:marker`,
  };
}

export interface KeyNames {
  keyPrefix?: string;
  taskQueue?: string;
  resultQueue?: string;
}

export function queueKeys(names: KeyNames = {}): QueueKeys {
  const prefix = names.keyPrefix ?? '';
  const taskQueue = prefix + (names.taskQueue ?? 'uvr_tasks');
  const resultQueue = prefix + (names.resultQueue ?? 'uvr_results');
  const taskPrefix = `${prefix}task:`;
  return {
    prefix,
    tasks: stageKeys(taskQueue),
    results: stageKeys(resultQueue),
    taskSeq: `${taskQueue}:seq`,
    taskPrefix,
    workers: `${prefix}workers`,
    task: (id) => taskPrefix + id,
    idempotency: (key) => `${prefix}idempotency:${key}`,
  };
}
