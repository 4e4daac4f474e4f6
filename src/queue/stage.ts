// One stage of the pipeline over its ZSETs: the task queue (uvr_tasks) and the webhook
// results queue (uvr_results) run the same claim / settle / lease / reap machinery; they
// differ only in which hash fields carry their state (`status` vs `webhook_status`, ...).
// A sharded queue (REDIS_QUEUE_SHARDS > 1) has one StageShard per shard behind one Stage.
import type { Redis } from 'ioredis';
import { PRIORITIES, priorityScoreRange, type StageKeys } from './keys.ts';
import { runScript } from './scripts.ts';
import { hashFromFlat, settlementArgs, type ClaimedTask, type Lease, type Settlement } from './task.ts';

export interface StageSpec {
  name: 'tasks' | 'results';
  keys: StageKeys;
  /** '' for the task stage, 'webhook_' for the results stage. */
  fieldPrefix: string;
  /** The ms field that, × (6 − priority), is the stage's score: created_at or finished_at. */
  scoreField: string;
  /** Where finished tasks that have a hook_url go next. */
  next?: StageKeys;
  /** The task stage's scheduled ZSET (delay_ms / run_at): claim moves due tasks into the queue. */
  scheduled?: string;
}

export interface ClaimBatch {
  nowMs: number;
  nextDueMs: number | null;
  tasks: ClaimedTask[];
  /** Another shard had work waiting when this claim was chosen: claim again before waiting. */
  more?: boolean;
}

export interface ExpiredLease extends Lease {
  attempts: number;
  maxAttempts: number | null;
}

export interface StageDepths {
  queued: number;
  processing: number;
  delayed: number;
  dead: number;
}

/** One shard of a stage: its key set, in one Redis Cluster slot. */
export class StageShard {
  constructor(
    readonly redis: Redis,
    readonly spec: StageSpec,
    private readonly taskPrefix: string,
    private readonly retentionSeconds: number,
    /** Completed `push` tasks (settle.lua ARGV[7], which applies it to the task stage only); -1 = as retentionSeconds. */
    private readonly pushRetentionSeconds = -1,
  ) {}

  get keys(): StageKeys {
    return this.spec.keys;
  }

  /** The head score of the queue, the earliest retry and the node's clock, in one round trip. */
  async head(): Promise<{ headScore: number | null; dueMs: number | null; nowMs: number }> {
    const { queue, delayed } = this.spec.keys;
    const multi = this.redis.multi().zrange(queue, '0', '0', 'WITHSCORES').zrange(delayed, '0', '0', 'WITHSCORES').time();
    // The earliest scheduled start counts as a due retry does: the claim that promotes it must come.
    if (this.spec.scheduled) multi.zrange(this.spec.scheduled, '0', '0', 'WITHSCORES');
    const replies = (await multi.exec())!.map(([err, v]) => {
      if (err) throw err;
      return v as string[];
    });
    const [q, d, t, s] = replies as [string[], string[], string[], string[] | undefined];
    const starts = [d, s ?? []].filter((z) => z.length === 2).map((z) => Number(z[1]));
    return {
      headScore: q.length === 2 ? Number(q[1]) : null,
      dueMs: starts.length > 0 ? Math.min(...starts) : null,
      nowMs: Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000),
    };
  }

  async claim(limit: number, visibilityMs: number, promoteLimit = 1000, maxScore = '+inf'): Promise<ClaimBatch> {
    const { queue, processing, delayed, marker } = this.spec.keys;
    const claimKeys = [queue, processing, delayed, marker, ...(this.spec.scheduled ? [this.spec.scheduled] : [])];
    const reply = (await runScript(this.redis, 'claim', claimKeys, [
      this.taskPrefix,
      this.spec.fieldPrefix,
      this.spec.scoreField,
      limit,
      visibilityMs,
      promoteLimit,
      maxScore,
    ])) as unknown[];
    const fp = this.spec.fieldPrefix;
    const nowStr = String(reply[0]);
    const tasks: ClaimedTask[] = [];
    for (let i = 3; i + 1 < reply.length; i += 2) {
      const token = String(reply[i]);
      const hash = hashFromFlat(reply[i + 1]);
      // The script returns the hash as it was; apply what the claim changed.
      hash[`${fp}attempts`] = token;
      hash[`${fp}status`] = 'processing';
      hash[`${fp}started_at`] = nowStr;
      tasks.push({ id: hash.id ?? '', token, attempt: Number(token), hash });
    }
    return {
      nowMs: Number(reply[0]),
      nextDueMs: reply[1] === '' ? null : Number(reply[1]),
      tasks,
    };
  }

  async settle(items: readonly Settlement[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const { processing, queue, delayed, dead, marker } = this.spec.keys;
    const next = this.spec.next ?? this.spec.keys;
    const reply = (await runScript(
      this.redis,
      'settle',
      [processing, queue, delayed, dead, marker, next.queue, next.marker, ...items.map((item) => this.taskPrefix + item.id)],
      [
        this.taskPrefix,
        this.spec.fieldPrefix,
        this.spec.scoreField,
        this.retentionSeconds,
        this.spec.next ? 1 : 0,
        items.length,
        this.pushRetentionSeconds,
        ...settlementArgs(items),
      ],
    )) as number[];
    return reply.map((v) => v === 1);
  }

  async extend(leases: readonly Lease[], visibilityMs: number): Promise<boolean[]> {
    if (leases.length === 0) return [];
    const args: (string | number)[] = [this.taskPrefix, this.spec.fieldPrefix, visibilityMs];
    for (const lease of leases) args.push(lease.id, lease.token);
    const hashes = leases.map((lease) => this.taskPrefix + lease.id);
    const reply = (await runScript(this.redis, 'extend', [this.spec.keys.processing, ...hashes], args)) as number[];
    return reply.map((v) => v === 1);
  }

  async expired(limit: number): Promise<ExpiredLease[]> {
    const reply = (await runScript(this.redis, 'expired', [this.spec.keys.processing], [
      this.taskPrefix,
      this.spec.fieldPrefix,
      limit,
    ])) as string[];
    const out: ExpiredLease[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      const token = reply[i + 1] ?? '';
      out.push({
        id: reply[i] ?? '',
        token,
        attempts: Number(token || 0),
        maxAttempts: reply[i + 2] ? Number(reply[i + 2]) : null,
      });
    }
    return out;
  }

  /** Move a dead-lettered task back into line with a fresh attempt budget. */
  async revive(id: string): Promise<boolean> {
    const { dead, queue, marker } = this.spec.keys;
    const reply = await runScript(this.redis, 'revive', [dead, queue, marker, this.taskPrefix + id], [
      this.taskPrefix,
      this.spec.fieldPrefix,
      this.spec.scoreField,
      id,
    ]);
    return reply === 1;
  }

  /** Drop a dead-lettered task for good (its hash too); false when it is not dead here. */
  async discardDead(id: string): Promise<boolean> {
    if ((await this.redis.zrem(this.spec.keys.dead, id)) !== 1) return false;
    await this.redis.del(this.taskPrefix + id);
    return true;
  }

  /** The newest dead-lettered ids with when they died (ms), newest first. */
  async deadList(count: number): Promise<{ id: string; diedAtMs: number }[]> {
    const flat = await this.redis.zrevrange(this.spec.keys.dead, 0, count - 1, 'WITHSCORES');
    const out: { id: string; diedAtMs: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i]!, diedAtMs: Number(flat[i + 1]) });
    return out;
  }

  async depths(): Promise<StageDepths> {
    const { queue, processing, delayed, dead } = this.spec.keys;
    const [q, p, d, x] = (await this.redis
      .multi()
      .zcard(queue)
      .zcard(processing)
      .zcard(delayed)
      .zcard(dead)
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return Number(v);
    });
    return { queued: q ?? 0, processing: p ?? 0, delayed: d ?? 0, dead: x ?? 0 };
  }
}

/** The highest score of the priority band `score` falls in (keys.ts: priorityScoreRange). */
function priorityBandEnd(score: number, nowMs: number): number {
  for (const priority of PRIORITIES) {
    const [lo, hi] = priorityScoreRange(priority, nowMs);
    if (score >= lo && score <= hi) return hi;
  }
  return score;
}

export interface ShardSpec {
  spec: StageSpec;
  taskPrefix: string;
}

/**
 * A stage over all its shards. A claim reads every shard's head (one round trip, in parallel),
 * then claims from the shard whose head has the lowest score, and only tasks of the priority of
 * the best other head or higher: a task is never claimed ahead of a higher-priority task that
 * was at the head of another shard one round trip earlier. Within a priority each shard is FIFO
 * and the shard with the oldest head goes first, so across shards FIFO holds up to one claim
 * batch. (Capping at the other head's exact score would keep strict FIFO too, but it cut batches
 * to ~11 tasks and doubled Redis CPU per task: docs/scaling.md.)
 */
export class Stage {
  readonly shards: StageShard[];

  constructor(
    readonly redis: Redis,
    shards: readonly ShardSpec[],
    retentionSeconds: number,
    /** The shard of a task, read from its id. */
    private readonly shardOf: (id: string) => number = () => 0,
    /** Completed `push` tasks: TaskQueue's pushRetentionSeconds (unset = as retentionSeconds). */
    pushRetentionSeconds?: number,
  ) {
    this.shards = shards.map((s) => new StageShard(redis, s.spec, s.taskPrefix, retentionSeconds, pushRetentionSeconds));
  }

  /** The first shard's spec; every shard has the same but for its keys. */
  get spec(): StageSpec {
    return this.shards[0]!.spec;
  }

  get keys(): StageKeys {
    return this.spec.keys;
  }

  /** The wake-up key consumer `index` blocks on: consumers spread over the shards' markers. */
  wakeKey(index: number): string {
    return this.shards[index % this.shards.length]!.keys.marker;
  }

  async claim(limit: number, visibilityMs: number, promoteLimit = 1000): Promise<ClaimBatch> {
    if (this.shards.length === 1) return this.shards[0]!.claim(limit, visibilityMs, promoteLimit);
    const heads = await Promise.all(this.shards.map((s) => s.head()));
    // A shard with a retry due goes first: only its claim promotes it (back to its old score).
    const rank = heads.map((h) => (h.dueMs !== null && h.dueMs <= h.nowMs ? -Infinity : (h.headScore ?? Infinity)));
    let chosen = 0;
    rank.forEach((r, i) => (r < rank[chosen]! ? (chosen = i) : undefined));
    const untilDue = heads.reduce<number | null>((min, h) => (h.dueMs === null ? min : Math.min(min ?? Infinity, h.dueMs - h.nowMs)), null);
    const others = heads.filter((h, i) => i !== chosen && h.headScore !== null).map((h) => h.headScore!);
    if (rank[chosen] === Infinity) {
      const nowMs = heads[0]!.nowMs;
      return { nowMs, nextDueMs: untilDue === null ? null : nowMs + untilDue, tasks: [] };
    }
    const cap = others.length > 0 ? String(priorityBandEnd(Math.min(...others), heads[chosen]!.nowMs)) : '+inf';
    const batch = await this.shards[chosen]!.claim(limit, visibilityMs, promoteLimit, cap);
    const nextDue = untilDue === null ? batch.nextDueMs : Math.min(batch.nextDueMs ?? Infinity, batch.nowMs + Math.max(0, untilDue));
    return { ...batch, nextDueMs: nextDue, more: others.length > 0 };
  }

  private byShard<T extends { id: string }>(items: readonly T[]): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    items.forEach((item, i) => {
      const shard = this.shards.length === 1 ? 0 : this.shardOf(item.id);
      const list = groups.get(shard) ?? [];
      list.push(i);
      groups.set(shard, list);
    });
    return groups;
  }

  /** Runs `fn` once per shard on that shard's items (in parallel), answers in item order. */
  private async perShard<T extends { id: string }, R>(items: readonly T[], fn: (shard: StageShard, items: T[]) => Promise<R[]>): Promise<R[]> {
    if (this.shards.length === 1) return fn(this.shards[0]!, [...items]);
    const out: R[] = new Array(items.length);
    await Promise.all(
      [...this.byShard(items)].map(async ([shard, indexes]) => {
        const replies = await fn(this.shards[shard]!, indexes.map((i) => items[i]!));
        indexes.forEach((itemIndex, j) => (out[itemIndex] = replies[j]!));
      }),
    );
    return out;
  }

  settle(items: readonly Settlement[]): Promise<boolean[]> {
    return this.perShard(items, (shard, part) => shard.settle(part));
  }

  extend(leases: readonly Lease[], visibilityMs: number): Promise<boolean[]> {
    return this.perShard(leases, (shard, part) => shard.extend(part, visibilityMs));
  }

  async expired(limit: number): Promise<ExpiredLease[]> {
    return (await Promise.all(this.shards.map((s) => s.expired(limit)))).flat();
  }

  private shardOfId(id: string): StageShard {
    return this.shards[this.shards.length === 1 ? 0 : this.shardOf(id)] ?? this.shards[0]!;
  }

  revive(id: string): Promise<boolean> {
    return this.shardOfId(id).revive(id);
  }

  discardDead(id: string): Promise<boolean> {
    return this.shardOfId(id).discardDead(id);
  }

  async deadList(count: number): Promise<{ id: string; diedAtMs: number }[]> {
    const all = (await Promise.all(this.shards.map((s) => s.deadList(count)))).flat();
    return all.sort((a, b) => b.diedAtMs - a.diedAtMs).slice(0, count);
  }

  async depths(): Promise<StageDepths> {
    const all = await Promise.all(this.shards.map((s) => s.depths()));
    return all.reduce((sum, d) => ({
      queued: sum.queued + d.queued,
      processing: sum.processing + d.processing,
      delayed: sum.delayed + d.delayed,
      dead: sum.dead + d.dead,
    }));
  }

  /** Per-shard depths, for `pushline queue status` and the bench. */
  shardDepths(): Promise<StageDepths[]> {
    return Promise.all(this.shards.map((s) => s.depths()));
  }
}
