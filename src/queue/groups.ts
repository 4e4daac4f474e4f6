// Groups (docs/queue.md, "Groups"): a task's optional `group` (a tenant, a user) gets a fair
// share against other groups of its priority, and optional per-group limits: at most N running
// at once across all workers, at most N starts in any window of M ms. The Lua side
// (lua/lib/groups.lua, claim/settle/enqueue/cancel/revive) enforces them atomically; this
// module sets the limits and reads the counts for GET /groups, `queue status` and /health.
import type { Redis } from 'ioredis';
import { groupKeys, PRIORITIES, priorityScoreRange, type QueueKeys } from './keys.ts';
import { runScript } from './scripts.ts';

export interface GroupLimits {
  /** At most this many of the group's tasks run at once (all job processes together). */
  concurrency?: number;
  /** At most `max` of the group's tasks start in any window of `per_ms` ms. */
  rate?: { max: number; per_ms: number };
}

export interface GroupInfo {
  name: string;
  /** null: the group has no limits (it still gets its fair share). */
  limits: GroupLimits | null;
  /** Tasks waiting in the group's line (not those waiting for a retry's backoff). */
  waiting: number;
  running: number;
  /** At its concurrency limit: out of line until one of its running tasks settles. */
  blocked: boolean;
}

/** The limits HASH's value: `concurrency max per_ms`, '-' for an unset one (lib/groups.lua reads it). */
export function encodeLimits(limits: GroupLimits): string {
  return [limits.concurrency ?? '-', limits.rate?.max ?? '-', limits.rate?.per_ms ?? '-'].join(' ');
}

export function decodeLimits(raw: string): GroupLimits {
  const [c, m, p] = raw.split(' ').map((v) => (v === '-' ? undefined : Number(v)));
  return { ...(c !== undefined ? { concurrency: c } : {}), ...(m !== undefined && p !== undefined ? { rate: { max: m, per_ms: p } } : {}) };
}

/** Per priority (PRIORITIES order): grouped tasks waiting, and the lowest score among them. */
export interface GroupedWaiting {
  queued: number[];
  oldestScore: (number | null)[];
  /** Group entries counted in the queue's ZCOUNT of each priority (they are not tasks). */
  entries: number[];
  /** Group entries in the delayed ZSET (groups waiting for their rate window; not tasks). */
  delayedEntries: number;
}

export class Groups {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
  ) {}

  /** A group's tasks, limits and counters all live on one shard: its name's. */
  private shardOf(name: string): QueueKeys {
    return this.keys.ofName(name);
  }

  /** Sets the limits; true when the group had limits before. */
  async setLimits(name: string, limits: GroupLimits): Promise<boolean> {
    const shard = this.shardOf(name);
    return (await runScript(this.redis, 'group-limits', [shard.tasks.queue], [shard.taskPrefix, name, encodeLimits(limits)])) === 1;
  }

  /** Removes the limits; false when the group had none. */
  async removeLimits(name: string): Promise<boolean> {
    const shard = this.shardOf(name);
    return (await runScript(this.redis, 'group-limits', [shard.tasks.queue], [shard.taskPrefix, name, ''])) === 1;
  }

  /** Every group that has limits, or tasks waiting or running, by name. */
  async list(): Promise<GroupInfo[]> {
    const perShard = await Promise.all(this.keys.shards.map((shard) => this.listShard(shard)));
    // A room task keeps its room's shard (its seq counter is there), so a group may have tasks on
    // more than one shard: one row per group, summed.
    const byName = new Map<string, GroupInfo>();
    for (const info of perShard.flat()) {
      const seen = byName.get(info.name);
      if (!seen) byName.set(info.name, info);
      else byName.set(info.name, { name: info.name, limits: seen.limits ?? info.limits, waiting: seen.waiting + info.waiting, running: seen.running + info.running, blocked: seen.blocked || info.blocked });
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async listShard(shard: QueueKeys): Promise<GroupInfo[]> {
    const g = groupKeys(shard.tasks.queue);
    const replies = (await this.redis.multi().hgetall(g.limits).smembers(g.names).hgetall(g.running).smembers(g.blocked).exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    const [limits, names, running, blocked] = replies as [Record<string, string>, string[], Record<string, string>, string[]];
    // With shards, a group's limits are read from its own shard only (PUT writes them there).
    const all = [...new Set([...Object.keys(limits), ...names])];
    if (all.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const name of all) pipeline.zcard(g.waiting(name));
    const waiting = (await pipeline.exec())!.map(([err, v]) => {
      if (err) throw err;
      return Number(v);
    });
    const blockedSet = new Set(blocked);
    return all.map((name, i) => ({
      name,
      limits: limits[name] ? decodeLimits(limits[name]) : null,
      waiting: waiting[i] ?? 0,
      running: Number(running[name] ?? 0),
      blocked: blockedSet.has(name),
    }));
  }
}

/**
 * Grouped tasks waiting on one shard, per priority: what GET /health and `queue status` add to
 * the queue's own per-priority counts (which see one entry per group instead of its tasks).
 * Costs 2 commands per active group and priority plus one per group, in one pipeline.
 */
export async function groupedWaiting(redis: Redis, shard: QueueKeys, nowMs: number): Promise<GroupedWaiting> {
  const g = groupKeys(shard.tasks.queue);
  const names = await redis.smembers(g.names);
  const out: GroupedWaiting = { queued: PRIORITIES.map(() => 0), oldestScore: PRIORITIES.map(() => null), entries: PRIORITIES.map(() => 0), delayedEntries: 0 };
  if (names.length === 0) return out;
  const ranges = PRIORITIES.map((p) => priorityScoreRange(p, nowMs));
  const pipeline = redis.pipeline();
  for (const name of names) {
    for (const [lo, hi] of ranges) {
      pipeline.zcount(g.waiting(name), lo, hi);
      pipeline.zrangebyscore(g.waiting(name), lo, hi, 'WITHSCORES', 'LIMIT', 0, 1);
    }
    pipeline.zscore(shard.tasks.queue, g.entry(name));
    pipeline.zscore(shard.tasks.delayed, g.entry(name));
  }
  const replies = (await pipeline.exec())!.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const per = ranges.length * 2 + 2;
  names.forEach((_name, n) => {
    if (replies[n * per + per - 1] !== null) out.delayedEntries++;
    ranges.forEach(([lo, hi], i) => {
      out.queued[i]! += Number(replies[n * per + i * 2]);
      const first = replies[n * per + i * 2 + 1] as string[];
      if (first.length === 2) {
        const score = Number(first[1]);
        if (out.oldestScore[i] === null || score < out.oldestScore[i]!) out.oldestScore[i] = score;
      }
      const entry = replies[n * per + per - 2] as string | null;
      if (entry !== null && Number(entry) >= lo && Number(entry) <= hi) out.entries[i]! += 1;
    });
  });
  return out;
}
