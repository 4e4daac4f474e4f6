// One stage of the pipeline over its ZSETs: the task queue (uvr_tasks) and the webhook
// results queue (uvr_results) run the same claim / settle / lease / reap machinery; they
// differ only in which hash fields carry their state (`status` vs `webhook_status`, ...).
import type { Redis } from 'ioredis';
import type { StageKeys } from './keys.ts';
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
}

export interface ClaimBatch {
  nowMs: number;
  nextDueMs: number | null;
  tasks: ClaimedTask[];
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

export class Stage {
  constructor(
    readonly redis: Redis,
    readonly spec: StageSpec,
    private readonly taskPrefix: string,
    private readonly retentionSeconds: number,
  ) {}

  get keys(): StageKeys {
    return this.spec.keys;
  }

  async claim(limit: number, visibilityMs: number, promoteLimit = 1000): Promise<ClaimBatch> {
    const { queue, processing, delayed, marker } = this.spec.keys;
    const reply = (await runScript(this.redis, 'claim', [queue, processing, delayed, marker], [
      this.taskPrefix,
      this.spec.fieldPrefix,
      this.spec.scoreField,
      limit,
      visibilityMs,
      promoteLimit,
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
      [processing, queue, delayed, dead, marker, next.queue, next.marker],
      [
        this.taskPrefix,
        this.spec.fieldPrefix,
        this.spec.scoreField,
        this.retentionSeconds,
        this.spec.next ? 1 : 0,
        items.length,
        ...settlementArgs(items),
      ],
    )) as number[];
    return reply.map((v) => v === 1);
  }

  async extend(leases: readonly Lease[], visibilityMs: number): Promise<boolean[]> {
    if (leases.length === 0) return [];
    const args: (string | number)[] = [this.taskPrefix, this.spec.fieldPrefix, visibilityMs];
    for (const lease of leases) args.push(lease.id, lease.token);
    const reply = (await runScript(this.redis, 'extend', [this.spec.keys.processing], args)) as number[];
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
    const reply = await runScript(this.redis, 'revive', [dead, queue, marker], [
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
