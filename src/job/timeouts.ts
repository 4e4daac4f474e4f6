// Task timeouts (issue 13 item 3): a run longer than its timeout is aborted through its signal
// and counts as a failure (retried or dead-lettered like any other error). The handler does not
// wait for a processor that ignores the signal: it answers at the deadline, so the slot is free
// again and the processor's late result has nowhere to go (the verdict was already given).

export interface TimeoutPolicy {
  /** TASK_TIMEOUT_MS: for every type without its own; 0 = no timeout. */
  defaultMs: number;
  /** TASK_TIMEOUTS: per task type, over the default (0 = none for that type). */
  byType: Readonly<Record<string, number>>;
}

export const NO_TIMEOUTS: TimeoutPolicy = { defaultMs: 0, byType: {} };

/** The hash field /generate stores a task's own `timeout_ms` in. */
export const TIMEOUT_FIELD = 'timeout_ms';
/** Set to '1' on the hash when the task's last attempt ran out of time. */
export const TIMED_OUT_FIELD = 'timed_out';

// The limit is part of the task contract logic validates against too, so it lives with the task shapes.
import { MAX_TIMEOUT_MS } from '../queue/task.ts';
export { MAX_TIMEOUT_MS };

/** A task's own timeout_ms when set, else its type's, else the default; 0 = none. */
export function timeoutOf(hash: Readonly<Record<string, string>>, policy: TimeoutPolicy): number {
  const own = Number(hash[TIMEOUT_FIELD]);
  if (Number.isInteger(own) && own > 0) return own;
  const type = hash.type ?? '';
  return Object.hasOwn(policy.byType, type) ? policy.byType[type]! : policy.defaultMs;
}

/**
 * Parses TASK_TIMEOUTS: `type=ms` pairs separated by commas (`audio=600000,push=10000`).
 * Returns the map or the problem, for the config schema to report.
 */
export function parseTypeTimeouts(text: string): { ok: true; value: Record<string, number> } | { ok: false; message: string } {
  const value: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z][A-Za-z0-9_.-]{0,63})=(\d{1,9})$/.exec(part);
    if (!m) return { ok: false, message: `"${part}" must be type=milliseconds (e.g. audio=600000,push=10000)` };
    const ms = Number(m[2]);
    if (ms > MAX_TIMEOUT_MS) return { ok: false, message: `${m[1]}: at most ${MAX_TIMEOUT_MS} ms` };
    if (Object.hasOwn(value, m[1]!)) return { ok: false, message: `${m[1]} is given twice` };
    value[m[1]!] = ms;
  }
  return { ok: true, value };
}

/** The run outlasted its timeout: the error text says so and by how much it was allowed. */
export class TaskTimeoutError extends Error {
  override readonly name = 'TaskTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms (timeout_ms)`);
  }
}

/**
 * Runs `work` with a signal that aborts when `parent()` does or when `timeoutMs` passes. At the
 * deadline this rejects with TaskTimeoutError at once, whether or not the work stops; whatever
 * the work does afterwards (resolve or reject) is ignored.
 */
export function runWithTimeout<T>(timeoutMs: number, parent: () => AbortSignal, work: (signal: () => AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  let combined: AbortSignal | null = null;
  // Built on first use only, like the consumer's own signal: most processors never look.
  const signal = () => (combined ??= AbortSignal.any([parent(), deadline.signal]));
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TaskTimeoutError(timeoutMs);
      deadline.abort(err);
      reject(err);
    }, timeoutMs);
  });
  const running = Promise.resolve().then(() => work(signal));
  // A late rejection of abandoned work must not become an unhandled rejection (that ends the process).
  running.catch(() => {});
  return Promise.race([running, expired]).finally(() => clearTimeout(timer));
}
