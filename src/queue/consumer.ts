// A consumer: one dedicated blocking connection that waits on the stage's wake-up marker
// (BZPOPMIN), plus a claim loop that leases up to `concurrency` tasks per script call and
// settles finished ones in batches. Leases are extended while work runs; on stop it stops
// claiming, lets running work finish for a bounded time and hands the rest back.
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { Stage } from './stage.ts';
import type { ClaimedTask, Outcome, Settlement } from './task.ts';

export interface Verdict {
  outcome: Outcome;
  delayMs?: number;
  fields?: Record<string, string>;
}

/** Aborted when the lease is lost or the consumer shuts down. */
export interface TaskControl {
  readonly signal: AbortSignal;
}

/** Runs one claimed task; resolves with what should happen to it. Should not throw. */
export type Handler = (task: ClaimedTask, control: TaskControl) => Promise<Verdict>;

export interface ConsumerOptions {
  index: number;
  stage: Stage;
  /** Dedicated to this consumer: BZPOPMIN blocks the whole connection. */
  blocking: Redis;
  concurrency: number;
  visibilityMs: number;
  /** Longest single BZPOPMIN; bounds how late an idle consumer notices a missed wake-up. */
  maxBlockMs?: number;
  handler: Handler;
  log: Logger;
  onSettled?: (task: ClaimedTask, verdict: Verdict, applied: boolean) => void;
}

class Running implements TaskControl {
  /** Handed back at shutdown: whatever the handler says later is dropped. */
  released = false;
  /** Finished processing; only its settlement is outstanding (it no longer takes a slot). */
  finished = false;
  // Created on first use: most tasks never look at their signal, and one per task costs.
  private controller: AbortController | null = null;
  private reason: Error | null = null;

  constructor(readonly task: ClaimedTask) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.reason && !this.controller.signal.aborted) this.controller.abort(this.reason);
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.reason !== null;
  }

  abort(reason: Error): void {
    this.reason ??= reason;
    this.controller?.abort(reason);
  }
}

const UNEXPECTED_RETRY_MS = 1000;
const SETTLE_BATCH = 500;

export class Consumer {
  private readonly running = new Map<string, Running>();
  /** Tasks being processed (not those only waiting for their settlement): the slots in use. */
  private busy = 0;
  private pending: { task: ClaimedTask; verdict: Verdict }[] = [];
  private flushing = false;
  private stopping = false;
  private capacityWaiter: (() => void) | null = null;
  private extendTimer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;

  constructor(private readonly options: ConsumerOptions) {}

  get inflight(): number {
    return this.running.size;
  }

  private get unfinished(): number {
    let n = 0;
    for (const r of this.running.values()) if (!r.finished && !r.released) n++;
    return n;
  }

  start(): void {
    if (this.loop) return;
    const period = Math.max(100, Math.floor(this.options.visibilityMs / 3));
    this.extendTimer = setInterval(() => void this.extendLeases(), period);
    this.extendTimer.unref();
    this.loop = this.claimLoop();
  }

  /** Stop claiming, wait up to `timeoutMs` for running work, hand back the rest, flush. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.capacityWaiter?.();
    // Breaks a pending BZPOPMIN at once instead of waiting out its timeout.
    this.options.blocking.disconnect();
    await this.loop;
    const deadline = Date.now() + timeoutMs;
    while (this.unfinished > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.capacityWaiter = resolve;
        setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now())));
      });
    }
    await this.releaseRemaining();
    if (this.extendTimer) clearInterval(this.extendTimer);
  }

  private async claimLoop(): Promise<void> {
    const { stage, concurrency, visibilityMs, log } = this.options;
    const maxBlockMs = this.options.maxBlockMs ?? 1000;
    let failures = 0;
    while (!this.stopping) {
      const free = concurrency - this.busy;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.capacityWaiter = resolve));
        continue;
      }
      let batch;
      try {
        batch = await stage.claim(free, visibilityMs);
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        log.warn({ err: String(err) }, 'claim failed; retrying');
        await sleep(Math.min(2000, 50 * 2 ** Math.min(failures, 6)));
        continue;
      }
      for (const task of batch.tasks) this.begin(task);
      // A full batch may have left more behind: claim again once there is room. A partial one
      // emptied the queue, and claim.lua re-arms the marker whenever work remains, so waiting on
      // the marker now is safe and saves a round trip per task at low rates.
      if (batch.tasks.length >= free || batch.more) continue;

      const untilDue = batch.nextDueMs === null ? maxBlockMs : batch.nextDueMs - batch.nowMs;
      const waitMs = Math.min(maxBlockMs, untilDue);
      if (waitMs <= 0) continue;
      try {
        // One key per BZPOPMIN (a Redis Cluster slot each): with shards, consumers spread over their markers.
        await this.options.blocking.bzpopmin(stage.wakeKey(this.options.index), Math.max(0.01, waitMs / 1000));
      } catch (err) {
        if (this.stopping) break;
        log.warn({ err: String(err) }, 'waiting for work failed; retrying');
        await sleep(200);
      }
    }
  }

  private begin(task: ClaimedTask): void {
    const entry = new Running(task);
    this.running.set(task.id, entry);
    this.busy++;
    Promise.resolve()
      .then(() => this.options.handler(task, entry))
      .catch((err: unknown): Verdict => {
        this.options.log.error({ err, task: task.id }, 'handler threw; retrying the task');
        return { outcome: 'retry', delayMs: UNEXPECTED_RETRY_MS, fields: { error: String(err) } };
      })
      .then((verdict) => {
        if (entry.released) return;
        entry.finished = true;
        this.busy--;
        this.capacityWaiter?.();
        this.pending.push({ task, verdict });
        if (!this.flushing) void this.flush();
      });
  }

  /** Settle everything that finished, many tasks per script call. */
  private async flush(): Promise<void> {
    this.flushing = true;
    // Let other tasks finishing in this same turn join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, SETTLE_BATCH);
      const items: Settlement[] = batch.map(({ task, verdict }) => ({
        id: task.id,
        token: task.token,
        outcome: verdict.outcome,
        ...(verdict.delayMs !== undefined ? { delayMs: verdict.delayMs } : {}),
        ...(verdict.fields ? { fields: verdict.fields } : {}),
      }));
      let applied: boolean[];
      try {
        applied = await this.options.stage.settle(items);
      } catch (err) {
        // Redis is away: keep the results (and the capacity they hold) and try again.
        this.options.log.warn({ err: String(err), count: batch.length }, 'settle failed; will retry');
        this.pending.unshift(...batch);
        await sleep(500);
        continue;
      }
      batch.forEach(({ task, verdict }, i) => {
        this.running.delete(task.id);
        const ok = applied[i] === true;
        if (!ok) {
          this.options.log.warn({ task: task.id, attempt: task.attempt }, 'lease was lost before the result was saved; the task runs again');
        }
        this.options.onSettled?.(task, verdict, ok);
      });
      this.capacityWaiter?.();
    }
    this.flushing = false;
  }

  private async extendLeases(): Promise<void> {
    const active = [...this.running.values()].filter((r) => !r.released && !r.aborted);
    if (active.length === 0) return;
    try {
      const ok = await this.options.stage.extend(
        active.map((r) => ({ id: r.task.id, token: r.task.token })),
        this.options.visibilityMs,
      );
      active.forEach((r, i) => {
        // Still pending settlement is fine: the settle will simply be refused.
        if (ok[i] === false && this.running.get(r.task.id) === r) r.abort(new Error('lease lost'));
      });
    } catch (err) {
      this.options.log.warn({ err: String(err) }, 'lease extension failed; will retry');
    }
  }

  private async releaseRemaining(): Promise<void> {
    // Results that arrived in time are saved first.
    while (this.flushing || this.pending.length > 0) {
      if (!this.flushing) await this.flush();
      else await sleep(20);
    }
    const left = [...this.running.values()].filter((r) => !r.released);
    if (left.length === 0) return;
    for (const r of left) {
      r.released = true;
      this.busy--;
      r.abort(new Error('shutting down'));
    }
    try {
      await this.options.stage.settle(left.map((r) => ({ id: r.task.id, token: r.task.token, outcome: 'release' as const })));
      this.options.log.info({ count: left.length }, 'handed unfinished tasks back to the queue');
    } catch (err) {
      this.options.log.warn({ err: String(err), count: left.length }, 'could not hand tasks back; their leases will expire and the reaper requeues them');
    }
    for (const r of left) this.running.delete(r.task.id);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
