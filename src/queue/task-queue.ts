// The queue as the rest of the system sees it: enqueue, look up, cancel, inspect. Workers use
// its two stages (tasks, results) through Consumer; logic and the CLI use the rest.
import type { Redis } from 'ioredis';
import { groupKeys, PRIORITIES, priorityScoreRange, type QueueKeys } from './keys.ts';
import type { ReplicationWait } from './replication-wait.ts';
import { runScript } from './scripts.ts';
import { Stage, type StageDepths } from './stage.ts';
import { groupedWaiting } from './groups.ts';
import type { TaskHash, TaskStatus } from './task.ts';

export interface NewTask {
  type: string;
  priority: number;
  /** Stored as given: the caller serialises (JSON) so the hash holds what the API received. */
  payload?: string;
  hookUrl?: string;
  maxAttempts?: number;
  /** Extra hash fields (user_id, room_id, request_id, audio, ...). */
  fields?: Record<string, string>;
  idempotency?: { key: string; fingerprint: string };
  /** A counter key (e.g. room:seq:{room}) whose next value becomes the task's `seq` field. */
  sequenceKey?: string;
  /** Fair share and limits with other tasks of this group (src/queue/groups.ts). */
  group?: string;
  /**
   * A later start (delay_ms / run_at): the task waits in the scheduled set until then. `delayMs`
   * counts from Redis's clock at enqueue; a start already past queues the task now.
   */
  start?: { runAtMs: number } | { delayMs: number };
}

export type EnqueueOutcome = 'created' | 'existing' | 'conflict';

export interface EnqueueResult {
  id: string;
  outcome: EnqueueOutcome;
  createdAtMs: number;
}

export interface QueueOptions {
  retentionSeconds: number;
  /**
   * Delivered (completed) `push` tasks: their hash expires after this instead; 0 = deleted at
   * delivery. Unset: they follow retentionSeconds like any task.
   */
  pushRetentionSeconds?: number;
  idempotencyTtlSeconds: number;
  /** REDIS_WAIT_REPLICAS > 0 (logic): enqueues are confirmed by WAIT on their own connection. */
  replication?: ReplicationWait;
}

export interface PriorityDepth {
  priority: number;
  queued: number;
  oldestEnqueuedMs: number | null;
}

export interface QueueStats {
  nowMs: number;
  tasks: StageDepths;
  results: StageDepths;
  priorities: PriorityDepth[];
  /** Tasks waiting for their delay_ms / run_at start (all shards' scheduled sets). */
  scheduled: number;
  /** Age of the oldest waiting task, whatever its priority (null when nothing waits). */
  oldestWaitingAgeMs: number | null;
}

export interface WaitingTask {
  id: string;
  score: number;
  priority: number | null;
  type: string | null;
  createdAtMs: number | null;
  /** Set when the task waits in a group (shown at its group's place in line). */
  group?: string;
}

/** Concurrent single enqueues: how many script calls may be under way, and how many tasks one may carry. */
const MAX_ENQUEUES_IN_FLIGHT = 2;
const MAX_ENQUEUE_BATCH = 500;

const OUTCOMES: Record<string, EnqueueOutcome> = { '1': 'created', '0': 'existing', '-1': 'conflict' };

export class TaskQueue {
  readonly tasks: Stage;
  readonly results: Stage;

  constructor(
    readonly redis: Redis,
    readonly keys: QueueKeys,
    readonly options: QueueOptions,
  ) {
    const shardOf = (id: string) => keys.ofTask(id).shard;
    this.tasks = new Stage(
      redis,
      keys.shards.map((k) => ({
        spec: { name: 'tasks', keys: k.tasks, fieldPrefix: '', scoreField: 'created_at', next: k.results, scheduled: k.scheduled },
        taskPrefix: k.taskPrefix,
      })),
      options.retentionSeconds,
      shardOf,
      options.pushRetentionSeconds,
    );
    this.results = new Stage(
      redis,
      keys.shards.map((k) => ({
        spec: { name: 'results', keys: k.results, fieldPrefix: 'webhook_', scoreField: 'finished_at' },
        taskPrefix: k.taskPrefix,
      })),
      options.retentionSeconds,
      shardOf,
    );
  }

  private roundRobin = 0;

  /**
   * The shard a new task goes to. A room message goes to its room's fixed shard (the room's seq
   * counter lives there, and the room's messages keep their order); a task with an
   * Idempotency-Key to that key's fixed shard (a retry finds it); any other in turn.
   */
  private shardFor(task: NewTask): QueueKeys {
    const shards = this.keys.shards;
    if (shards.length === 1) return this.keys;
    if (task.sequenceKey) return this.keys.ofName(task.sequenceKey);
    // All of a group's tasks on one shard: its limits are counted there, atomically.
    if (task.group) return this.keys.ofName(task.group);
    if (task.idempotency) return this.keys.ofName(task.idempotency.key);
    return shards[this.roundRobin++ % shards.length]!;
  }

  /**
   * Enqueue many tasks: one atomic script call (one round trip) per shard they go to; the
   * shards' calls run in parallel.
   */
  async enqueue(tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
    if (tasks.length === 0) return [];
    if (this.keys.shards.length === 1) return this.enqueueOnShard(this.keys, tasks);
    const groups = new Map<QueueKeys, number[]>();
    tasks.forEach((task, i) => {
      const shard = this.shardFor(task);
      groups.set(shard, [...(groups.get(shard) ?? []), i]);
    });
    const out: EnqueueResult[] = new Array(tasks.length);
    await Promise.all(
      [...groups].map(async ([shard, indexes]) => {
        const results = await this.enqueueOnShard(shard, indexes.map((i) => tasks[i]!));
        indexes.forEach((taskIndex, j) => (out[taskIndex] = results[j]!));
      }),
    );
    return out;
  }

  private async enqueueOnShard(keys: QueueKeys, tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
    const idemKeys: string[] = []; // idempotency and sequence keys, in the script's order
    const args: (string | number)[] = [keys.taskPrefix, this.options.idempotencyTtlSeconds, tasks.length, keys.idPrefix];
    // Straight into one flat array (no per-task field tuples): this runs for every task logic
    // accepts. Per task: priority, idempotent?, fingerprint, sequenced?, field count, then the
    // fields as name, value pairs (type, payload, hook_url, max_attempts, group, extra, start).
    for (const task of tasks) {
      if (task.idempotency) idemKeys.push(keys.idempotency(task.idempotency.key));
      if (task.sequenceKey) idemKeys.push(keys.sequence(task.sequenceKey));
      args.push(task.priority, task.idempotency ? 1 : 0, task.idempotency?.fingerprint ?? '', task.sequenceKey ? 1 : 0, 0);
      const countAt = args.length - 1;
      const start = args.length;
      args.push('type', task.type);
      if (task.payload !== undefined) args.push('payload', task.payload);
      if (task.hookUrl) args.push('hook_url', task.hookUrl);
      if (task.maxAttempts) args.push('max_attempts', String(task.maxAttempts));
      if (task.group) args.push('group', task.group);
      const extra = task.fields;
      if (extra) for (const k in extra) if (Object.hasOwn(extra, k)) args.push(k, extra[k]!);
      if (task.start) args.push(...('runAtMs' in task.start ? ['run_at', String(Math.floor(task.start.runAtMs))] : ['delay_ms', String(Math.floor(task.start.delayMs))]));
      args[countAt] = (args.length - start) / 2;
    }
    const write = (redis: Redis) => runScript(redis, 'enqueue', [keys.tasks.queue, keys.tasks.marker, keys.taskSeq, keys.enqueuedCount, ...idemKeys, keys.scheduled], args);
    // REDIS_WAIT_REPLICAS: written on the WAIT connection and confirmed by replicas, or NotReplicatedError.
    const reply = (await (this.options.replication ? this.options.replication.confirm(write) : write(this.redis))) as (string | number)[];
    const out: EnqueueResult[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      out.push({
        id: String(reply[i]),
        outcome: OUTCOMES[String(reply[i + 1])] ?? 'created',
        createdAtMs: Number(reply[i + 2]),
      });
    }
    return out;
  }

  /**
   * Enqueue one task. Calls of one event-loop turn (many keep-alive requests under load) go out
   * together as one script call at the end of that turn, and calls made while enqueues are in
   * flight join the next one: under load each task costs a fraction of a script call, and a
   * lone call waits for no timer. Tasks keep their call order (ids, per-room seq, FIFO ties).
   */
  enqueueOne(task: NewTask): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
      if (!this.flushScheduled && this.inFlight < MAX_ENQUEUES_IN_FLIGHT) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          void this.sendWaiting();
        });
      }
    });
  }

  private waiting: { task: NewTask; resolve: (r: EnqueueResult) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private flushScheduled = false;

  private async sendWaiting(): Promise<void> {
    while (this.waiting.length > 0 && this.inFlight < MAX_ENQUEUES_IN_FLIGHT) {
      const batch = this.waiting.splice(0, MAX_ENQUEUE_BATCH);
      this.inFlight++;
      try {
        const results = await this.enqueue(batch.map((w) => w.task));
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        // Script errors write nothing; a reply lost with the connection may follow a write of
        // the whole batch. Either way each caller answers 503, and Idempotency-Key retries are safe.
        for (const w of batch) w.reject(err);
      } finally {
        this.inFlight--;
      }
    }
  }

  async get(id: string): Promise<TaskHash | null> {
    const hash = await this.redis.hgetall(this.keys.task(id));
    return Object.keys(hash).length === 0 ? null : hash;
  }

  /**
   * The final state of a task another backend (BullMQ, Kafka) ran: the whole hash, as settle.lua
   * leaves it, in one transaction; with a hook_url it joins the results stage for its webhook.
   */
  async recordFinished(hash: TaskHash, attempt: number, outcome: 'completed' | 'failed' | 'dead', fields: Record<string, string>): Promise<void> {
    const id = hash.id!;
    const keys = this.keys.ofTask(id);
    const key = keys.task(id);
    const now = Date.now();
    const hooked = Boolean(hash.hook_url);
    // A delivered push message under PUSH_RETENTION_SECONDS, as settle.lua does it.
    const pushTtl = outcome === 'completed' && hash.type === 'push' && !hooked ? this.options.pushRetentionSeconds : undefined;
    const ttl = pushTtl ?? this.options.retentionSeconds;
    if (pushTtl === 0) {
      await this.redis.del(key);
      return;
    }
    const final: TaskHash = { ...hash, ...fields, status: outcome, attempts: String(attempt), finished_at: String(now) };
    if (hooked) Object.assign(final, { webhook_status: 'queued', webhook_attempts: '0' });
    const multi = this.redis.multi().hset(key, final);
    if (outcome === 'dead') multi.zadd(keys.tasks.dead, now, id);
    if (hooked) {
      multi.zadd(keys.results.queue, now * (6 - Number(hash.priority ?? 3)), id).zadd(keys.results.marker, 0, '0');
    } else if (ttl > 0 && outcome !== 'dead') {
      multi.expire(key, ttl);
    }
    const replies = await multi.exec();
    const failed = replies?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** Cancel a waiting task: `canceled` true when this call did it, else the status it has. */
  async cancel(id: string): Promise<{ canceled: boolean; status: TaskStatus } | null> {
    const keys = this.keys.ofTask(id);
    const reply = (await runScript(this.redis, 'cancel', [keys.tasks.queue, keys.tasks.delayed, keys.task(id), keys.scheduled], [
      keys.taskPrefix,
      id,
      this.options.retentionSeconds,
    ])) as [number, string] | null;
    return reply === null ? null : { canceled: reply[0] === 1, status: reply[1] as TaskStatus };
  }

  async stats(): Promise<QueueStats> {
    const [sec, micro] = await this.redis.time();
    const nowMs = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    // One pipeline per shard: each stays in its shard's slot.
    const perShard = await Promise.all(
      this.keys.shards.map(async (keys) => {
        const pipeline = this.redis.pipeline();
        for (const priority of PRIORITIES) {
          const [lo, hi] = priorityScoreRange(priority, nowMs);
          pipeline.zcount(keys.tasks.queue, lo, hi);
          pipeline.zrangebyscore(keys.tasks.queue, lo, hi, 'WITHSCORES', 'LIMIT', 0, 1);
        }
        return (await pipeline.exec())!.map(([err, v]) => {
          if (err) throw err;
          return v;
        });
      }),
    );
    // Grouped tasks wait in their groups' ZSETs; the queue holds one entry per group.
    const grouped = await Promise.all(this.keys.shards.map((keys) => groupedWaiting(this.redis, keys, nowMs)));
    const priorities: PriorityDepth[] = PRIORITIES.map((priority, i) => {
      let queued = 0;
      let oldest: number | null = null;
      for (const [s, replies] of perShard.entries()) {
        const g = grouped[s]!;
        queued += Number(replies[i * 2]) - g.entries[i]! + g.queued[i]!;
        const first = replies[i * 2 + 1] as string[];
        // The queue's head may be a group entry: its score is no task's enqueue time.
        const headIsTask = first.length === 2 && !first[0]!.startsWith('group:');
        const scores = [headIsTask ? Number(first[1]) : null, g.oldestScore[i]!].filter((v): v is number => v !== null);
        const enqueued = scores.length > 0 ? Math.min(...scores) / (6 - priority) : null;
        if (enqueued !== null && (oldest === null || enqueued < oldest)) oldest = enqueued;
      }
      return { priority, queued, oldestEnqueuedMs: oldest };
    });
    const oldest = priorities.reduce<number | null>(
      (min, p) => (p.oldestEnqueuedMs !== null && (min === null || p.oldestEnqueuedMs < min) ? p.oldestEnqueuedMs : min),
      null,
    );
    const [tasks, results, scheduled] = await Promise.all([this.tasks.depths(), this.results.depths(), this.scheduledCount()]);
    for (const g of grouped) {
      tasks.queued += g.queued.reduce((a, b) => a + b, 0) - g.entries.reduce((a, b) => a + b, 0);
      tasks.delayed -= g.delayedEntries;
    }
    return { nowMs, tasks, results, priorities, scheduled, oldestWaitingAgeMs: oldest === null ? null : Math.max(0, nowMs - oldest) };
  }

  /** How many tasks wait for their delay_ms / run_at start, over all shards. */
  async scheduledCount(): Promise<number> {
    const counts = await Promise.all(this.keys.shards.map((keys) => this.redis.zcard(keys.scheduled)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The next N tasks in pop order, for inspection. */
  async peek(count: number): Promise<WaitingTask[]> {
    // Each shard's first N, merged by score: the order consumers claim them in.
    const perShard = await Promise.all(this.keys.shards.map((keys) => this.peekShard(keys, count)));
    return perShard.flat().sort((a, b) => a.score - b.score || a.id.localeCompare(b.id)).slice(0, count);
  }

  private async peekShard(keys: QueueKeys, count: number): Promise<WaitingTask[]> {
    const flat = await this.redis.zrange(keys.tasks.queue, '0', String(Math.max(0, count - 1)), 'WITHSCORES');
    const ids: string[] = [];
    const scores: number[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      ids.push(flat[i]!);
      scores.push(Number(flat[i + 1]));
    }
    // A group's entry stands for its next task: show that task at the entry's place.
    const groupOf = await this.groupHeads(keys, ids);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(keys.task(id), 'priority', 'type', 'created_at');
    const rows = ids.length ? (await pipeline.exec())! : [];
    return ids.map((id, i) => {
      const [priority, type, created] = (rows[i]?.[1] ?? []) as (string | null)[];
      return {
        id,
        score: scores[i]!,
        priority: priority ? Number(priority) : null,
        type: type ?? null,
        createdAtMs: created ? Number(created) : null,
        ...(groupOf.has(id) ? { group: groupOf.get(id)! } : {}),
      };
    });
  }

  /** Replaces each group entry in `ids` by its group's next task; answers task id → group. */
  private async groupHeads(keys: QueueKeys, ids: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const at = ids.flatMap((id, i) => (id.startsWith('group:') ? [i] : []));
    if (at.length === 0) return out;
    const g = groupKeys(keys.tasks.queue);
    const pipeline = this.redis.pipeline();
    for (const i of at) pipeline.zrange(g.waiting(ids[i]!.slice('group:'.length)), '0', '0');
    const heads = (await pipeline.exec())!;
    at.forEach((i, n) => {
      const head = (heads[n]?.[1] as string[] | undefined)?.[0];
      if (head) {
        out.set(head, ids[i]!.slice('group:'.length));
        ids[i] = head;
      }
    });
    return out;
  }
}
