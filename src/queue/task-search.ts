// Task search (GET /tasks, issue 13 item 6): finds tasks by status, then type / group / priority,
// without KEYS or SCAN. Every status has an index the engine keeps anyway (the queue ZSET, the
// lease ZSET, ...) or one kept for this (the finished ZSET, written by settle.lua and cancel.lua);
// a search walks that index from a cursor in search.lua, filtering on the task hashes, and stops
// after `limit` matches or a fixed number of entries examined, returning the cursor to go on.
import type { Redis } from 'ioredis';
import { groupKeys, type QueueKeys } from './keys.ts';
import { runScript } from './scripts.ts';
import type { TaskQueue } from './task-queue.ts';

export interface StatusIndex {
  /**
   * The ZSETs of one shard that hold every task of this status (and maybe others: `hashStatus`
   * tells them apart), walked one after another in this order. Usually one; a status spread over
   * several sets (one per group, say) lists them all, in a stable order.
   */
  keys(keys: QueueKeys, redis: Redis, query: Pick<SearchQuery, 'group'>): string[] | Promise<string[]>;
  /** Walk order: 'asc' = lowest score first. */
  order: 'asc' | 'desc';
  /** The hash `status` a task in the index must have to count ('' = any). */
  hashStatus: string;
  /** What the order is, for the docs and the OpenAPI description. */
  orderedBy: string;
}

/**
 * Status → index: the one table a new status (scheduled, a group's own set, ...) is added to.
 * `retrying` is a queued task waiting out its backoff (status `queued` with `retry_at`).
 */
export const STATUS_INDEXES = {
  // A grouped task waits in its group's own ZSET (docs/queue.md, "Groups"): the queue, then each
  // group's set in name order (only the asked-for group's with ?group=).
  queued: { keys: queuedSets, order: 'asc', hashStatus: 'queued', orderedBy: 'pop order (priority, then age) in the queue, then per group in group name order' },
  scheduled: { keys: (k) => [k.scheduled], order: 'asc', hashStatus: 'scheduled', orderedBy: 'start time (run_at), soonest first' },
  retrying: { keys: (k) => [k.tasks.delayed], order: 'asc', hashStatus: 'queued', orderedBy: 'when the retry is due, soonest first' },
  processing: { keys: (k) => [k.tasks.processing], order: 'asc', hashStatus: 'processing', orderedBy: 'lease deadline, soonest first' },
  completed: { keys: (k) => [k.tasks.finished], order: 'desc', hashStatus: 'completed', orderedBy: 'finish time, newest first' },
  failed: { keys: (k) => [k.tasks.finished], order: 'desc', hashStatus: 'failed', orderedBy: 'finish time, newest first' },
  canceled: { keys: (k) => [k.tasks.finished], order: 'desc', hashStatus: 'canceled', orderedBy: 'cancel time, newest first' },
  dead: { keys: (k) => [k.tasks.dead], order: 'desc', hashStatus: 'dead', orderedBy: 'when it died, newest first' },
} satisfies Record<string, StatusIndex>;

async function queuedSets(k: QueueKeys, redis: Redis, query: Pick<SearchQuery, 'group'>): Promise<string[]> {
  const g = groupKeys(k.tasks.queue);
  const names = query.group !== undefined ? [query.group] : (await redis.smembers(g.names)).sort();
  return [k.tasks.queue, ...names.map((name) => g.waiting(name))];
}

export type SearchStatus = keyof typeof STATUS_INDEXES;
export const SEARCH_STATUSES = Object.keys(STATUS_INDEXES) as SearchStatus[];

/** The most tasks one page returns. */
export const SEARCH_MAX_LIMIT = 100;
/** Index entries one request examines at most (all shards together): bounds the work of a page whose filters match little. */
export const SEARCH_SCAN_BUDGET = 1000;
/**
 * Entries one search.lua call examines at most: a script holds Redis while it runs (measured
 * ~8 µs per entry examined on a busy 2-core machine), so a request's budget is spent over several
 * short calls rather than one long one.
 */
export const SEARCH_CALL_BUDGET = 200;

export interface SearchQuery {
  status: SearchStatus;
  type?: string;
  group?: string;
  priority?: number;
  limit: number;
  cursor?: string;
}

/** One task as the search shows it: the summary fields, no payload or result. */
export interface TaskSummary {
  task_id: string;
  type: string;
  status: string;
  priority: number;
  group: string | null;
  attempts: number;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  retry_at: string | null;
  error: string | null;
  timed_out: boolean;
}

export interface SearchPage {
  tasks: TaskSummary[];
  /** Pass as `cursor` for the next page; null when the index has been walked to its end. */
  next_cursor: string | null;
  /** Index entries examined for this page (at most SEARCH_SCAN_BUDGET). */
  scanned: number;
}

/** Where a walk stands: the shard, its index ZSET, and the last entry examined there (none = its start). */
interface Cursor {
  shard: number;
  key?: string;
  score?: string;
  id?: string;
}

export class BadCursorError extends Error {
  override readonly name = 'BadCursorError';
}

/** A cursor carries its status and filters, so it cannot be replayed against another query by mistake. */
function queryTag(q: SearchQuery): string {
  return [q.status, q.type ?? '', q.group ?? '', q.priority ?? ''].join('|');
}

export function encodeCursor(q: SearchQuery, c: Cursor): string {
  return Buffer.from(JSON.stringify({ q: queryTag(q), sh: c.shard, k: c.key ?? null, s: c.score ?? null, i: c.id ?? null })).toString('base64url');
}

export function decodeCursor(q: SearchQuery, text: string, shards: number): Cursor {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new BadCursorError('cursor is not one this API returned');
  }
  const c = raw as { q?: unknown; sh?: unknown; k?: unknown; s?: unknown; i?: unknown } | null;
  if (!c || typeof c !== 'object' || typeof c.sh !== 'number' || !Number.isInteger(c.sh) || c.sh < 0 || c.sh >= shards) {
    throw new BadCursorError('cursor is not one this API returned');
  }
  if (c.q !== queryTag(q)) throw new BadCursorError('cursor belongs to a search with other status or filters: repeat that search, or start again without cursor');
  const score = typeof c.s === 'string' && /^-?[0-9.e+]+$/i.test(c.s) ? c.s : undefined;
  const id = typeof c.i === 'string' && c.i.length <= 64 ? c.i : undefined;
  const key = typeof c.k === 'string' && c.k.length <= 512 ? c.k : undefined;
  if ((score === undefined) !== (id === undefined) || (score !== undefined && key === undefined)) throw new BadCursorError('cursor is not one this API returned');
  return { shard: c.sh, ...(key !== undefined ? { key } : {}), ...(score !== undefined ? { score, id: id! } : {}) };
}

/** search.lua returns the four it filters on first, then the rest it is asked for. */
const SUMMARY_FIELDS = ['status', 'type', 'group', 'priority', 'attempts', 'created_at', 'started_at', 'finished_at', 'retry_at', 'error', 'timed_out'] as const;

function iso(ms: string): string | null {
  const n = Number(ms);
  return ms !== '' && Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : null;
}

function summary(id: string, v: Record<(typeof SUMMARY_FIELDS)[number], string>): TaskSummary {
  return {
    task_id: id,
    type: v.type,
    status: v.status,
    priority: Number(v.priority) || 0,
    group: v.group || null,
    attempts: Number(v.attempts) || 0,
    created_at: iso(v.created_at),
    started_at: iso(v.started_at),
    finished_at: iso(v.finished_at),
    retry_at: iso(v.retry_at),
    error: v.error || null,
    timed_out: v.timed_out === '1',
  };
}

/**
 * One page of tasks. Each shard's index sets are walked one after another (each in the index's
 * order); the cursor says which shard, which set and where in it.
 */
export async function searchTasks(queue: TaskQueue, q: SearchQuery): Promise<SearchPage> {
  const index: StatusIndex = STATUS_INDEXES[q.status];
  const shards = queue.keys.shards;
  const at = q.cursor ? decodeCursor(q, q.cursor, shards.length) : { shard: 0 };
  const tasks: TaskSummary[] = [];
  let scanned = 0;
  let shard = at.shard;
  let keys = await index.keys(shards[shard]!, queue.redis, q);
  let part = 0;
  let from: { score: string; id: string } | null = null;
  if (at.key !== undefined) {
    part = keys.indexOf(at.key);
    if (part >= 0) {
      if (at.score !== undefined) from = { score: at.score, id: at.id! };
    } else {
      // A set of a status spread over several (a group's, listed in name order) emptied and went
      // away between pages: go on with the next set after it.
      part = keys.findIndex((key, i) => i > 0 && key > at.key!);
      if (part < 0) part = keys.length;
    }
  }
  for (;;) {
    const shardKeys = shards[shard]!;
    const key = keys[part];
    let walked = true;
    if (key !== undefined) {
      const reply = (await runScript(queue.redis, 'search', [key], [
        shardKeys.taskPrefix,
        index.order,
        from?.score ?? '',
        from?.id ?? '',
        q.limit - tasks.length,
        Math.min(SEARCH_CALL_BUDGET, SEARCH_SCAN_BUDGET - scanned),
        index.hashStatus,
        q.type ?? '',
        q.group ?? '',
        q.priority === undefined ? '' : String(q.priority),
        ...SUMMARY_FIELDS.slice(4),
      ])) as string[];
      scanned += Number(reply[2]);
      const width = 2 + SUMMARY_FIELDS.length;
      for (let i = 3; i + width - 1 < reply.length; i += width) {
        const values = reply.slice(i + 2, i + width).map(String);
        tasks.push(summary(String(reply[i]), Object.fromEntries(SUMMARY_FIELDS.map((f, j) => [f, values[j] ?? ''])) as Record<(typeof SUMMARY_FIELDS)[number], string>));
      }
      const nextScore = String(reply[0] ?? '');
      if (nextScore !== '') {
        walked = false;
        from = { score: nextScore, id: String(reply[1]) };
      }
    }
    let next: Cursor;
    if (!walked) next = { shard, key: key!, score: from!.score, id: from!.id };
    else if (part + 1 < keys.length) {
      part++;
      from = null;
      next = { shard, key: keys[part]! };
    } else if (shard + 1 < shards.length) {
      shard++;
      keys = await index.keys(shards[shard]!, queue.redis, q);
      part = 0;
      from = null;
      next = { shard };
    } else {
      return { tasks, next_cursor: null, scanned };
    }
    if (tasks.length >= q.limit || scanned >= SEARCH_SCAN_BUDGET) return { tasks, next_cursor: encodeCursor(q, next), scanned };
  }
}
