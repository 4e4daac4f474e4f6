// The scheduler loop every job process runs: fire the recurring schedules whose next run has
// come, one task per tick however many jobs run, and none lost or doubled when a job is killed.
//
// Per due run: (1) decide which tick to fire under the catch-up policy (ticks.ts), (2) enqueue
// its task with the idempotency key schedule:<name>:<tick_ms> — a second job firing the same
// tick, or a job re-firing a tick whose job was killed after (2), gets the same task back —
// (3) only then move the next run on, compare-and-set (schedule-advance.lua). A kill between
// (2) and (3) leaves the run due, so another job fires it again and finds the task already there.
import type { Redis } from 'ioredis';
import type { TaskQueue } from '../queue/task-queue.ts';
import type { RoutingKeys } from '../routing/keys.ts';
import type { GenerateBody } from '../logic/schemas.ts';
import { toNewTask } from '../logic/routes/tasks.ts';
import type { Logger } from '../util/log.ts';
import { redisNowMs, ScheduleStore } from './store.ts';
import { decide } from './ticks.ts';

export interface SchedulerOptions {
  queue: TaskQueue;
  redis: Redis;
  routing: RoutingKeys;
  defaultPriority: number;
  log: Logger;
  /** Longest sleep between looks: how late a schedule added meanwhile is noticed (its first run is a tick away anyway). */
  maxWaitMs?: number;
}

/** How far a broken definition's next run is pushed, so it is retried without spinning. */
const BROKEN_RETRY_MS = 60_000;
const DUE_BATCH = 50;

export class Scheduler {
  private readonly store: ScheduleStore;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** Tasks this process enqueued for ticks (the same tick enqueued by another job is not counted). */
  fired = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.store = new ScheduleStore(options.redis, options.queue.keys);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const maxWait = this.options.maxWaitMs ?? 1000;
    let failures = 0;
    while (!this.stopping) {
      let waitMs = maxWait;
      try {
        const now = await redisNowMs(this.options.redis);
        const due = await this.store.due(now, DUE_BATCH);
        for (const run of due) {
          if (this.stopping) break;
          await this.fire(run.name, run.runMs, now);
        }
        const earliest = await this.store.earliest();
        const after = await redisNowMs(this.options.redis);
        if (due.length >= DUE_BATCH || (earliest !== null && earliest <= after)) waitMs = 0;
        else if (earliest !== null) waitMs = Math.min(maxWait, earliest - after);
        failures = 0;
      } catch (err) {
        failures++;
        this.options.log.warn({ err: String(err) }, 'scheduler: Redis call failed; retrying');
        waitMs = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
      }
      if (waitMs > 0 && !this.stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }

  /** Fire one due run of `name` (read as `runMs`), then advance it. */
  private async fire(name: string, runMs: number, now: number): Promise<void> {
    const { log } = this.options;
    const definition = await this.store.get(name);
    if (!definition) {
      // A next run without a definition (DELETE removes both together, so an edit by hand, or
      // JSON broken by hand): drop the run rather than spin on it.
      log.warn({ schedule: name }, `scheduler: schedule ${name} has a next run but no readable definition; dropping the run`);
      await this.store.dropRun(name);
      return;
    }
    let decision;
    try {
      decision = decide(definition, definition.catch_up, definition.catch_up_max, runMs, now);
    } catch (err) {
      log.warn({ err: String(err), schedule: name }, 'scheduler: cannot compute the next tick; retrying in a minute');
      await this.store.advance(name, runMs, now + BROKEN_RETRY_MS);
      return;
    }
    if (decision.fire !== null) {
      const tick = decision.fire;
      const body = definition.task as GenerateBody;
      const requestId = `schedule:${name}:${tick}`;
      let task;
      try {
        task = toNewTask(body, body.priority ?? this.options.defaultPriority, requestId, this.options.routing);
      } catch (err) {
        // A definition edited by hand into something no task can be built from must not hold up
        // the other schedules (Redis errors, by contrast, go up to the loop, which backs off).
        log.warn({ err: String(err), schedule: name }, `scheduler: schedule ${name} has a task that cannot be built; retrying in a minute`);
        await this.store.advance(name, runMs, now + BROKEN_RETRY_MS);
        return;
      }
      task.fields = { ...task.fields, schedule: name, schedule_tick: String(tick) };
      // One fingerprint for every firing of a tick: a re-fire is recognised, never a conflict.
      task.idempotency = { key: requestId, fingerprint: 'schedule' };
      const [result] = await this.options.queue.enqueue([task]);
      if (result?.outcome === 'created') {
        this.fired++;
        log.info({ schedule: name, tick: new Date(tick).toISOString(), task: result.id }, `schedule ${name}: task ${result.id} for tick ${new Date(tick).toISOString()}`);
      }
    } else {
      log.info({ schedule: name }, `schedule ${name}: missed ticks skipped (catch_up none)`);
    }
    await this.store.advance(name, runMs, decision.next);
  }
}
