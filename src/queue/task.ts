// The shapes a task takes on its way through the engine, and decoding of Redis replies.

/** The longest timeout a task (`timeout_ms`) or setting (TASK_TIMEOUT_MS, TASK_TIMEOUTS) may ask for: one day. */
export const MAX_TIMEOUT_MS = 86_400_000;

export const TASK_STATUSES = ['queued', 'processing', 'completed', 'failed', 'dead', 'canceled', 'scheduled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** A task hash as stored (`HGETALL task:{id}`): every value is a string. */
export type TaskHash = Record<string, string>;

export interface ClaimedTask {
  id: string;
  /** The stage's attempts counter at claim time; the lease is only this token's. */
  token: string;
  attempt: number;
  hash: TaskHash;
}

export type Outcome = 'completed' | 'failed' | 'dead' | 'retry' | 'release';

export interface Settlement {
  id: string;
  token: string;
  outcome: Outcome;
  /** For `retry`: wait this long in the delayed set first (0 = straight back in line). */
  delayMs?: number;
  /** Settle only if the lease has run out (the reaper's guard against a just-extended lease). */
  onlyIfExpired?: boolean;
  /** Fields written on the task hash together with the transition (result, error, ...). */
  fields?: Record<string, string>;
}

export interface Lease {
  id: string;
  token: string;
}

export function hashFromFlat(flat: unknown): TaskHash {
  const out: TaskHash = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

export function settlementArgs(items: readonly Settlement[]): (string | number)[] {
  const args: (string | number)[] = [];
  for (const item of items) {
    const fields = item.fields ? Object.entries(item.fields) : [];
    args.push(item.id, item.token, item.outcome, Math.max(0, Math.round(item.delayMs ?? 0)), item.onlyIfExpired ? 1 : 0, fields.length);
    for (const [k, v] of fields) args.push(k, v);
  }
  return args;
}
