// Recurring schedules in Redis: a HASH of definitions (name → JSON) and a ZSET of next runs
// (name → ms), both in the queue's first slot (keys.ts). Logic and the CLI add, list and remove
// them; every job's scheduler fires the due ones (scheduler.ts).
import type { Redis } from 'ioredis';
import type { QueueKeys } from '../queue/keys.ts';
import { runScript } from '../queue/scripts.ts';
import { nextTickAfter, type Cadence, type CatchUp } from './ticks.ts';

/** What POST /schedules and `pushline schedule add` store, as JSON in the definitions hash. */
export interface ScheduleDefinition extends Cadence {
  name: string;
  /** A POST /generate body: the task each tick enqueues. */
  task: Record<string, unknown>;
  catch_up: CatchUp;
  /** catch_up "all": fire at most this many of the latest missed ticks. */
  catch_up_max: number;
  created_at: number;
}

export interface ScheduleEntry {
  definition: ScheduleDefinition;
  /** The next run (ms), or null while a scheduler is between firing and advancing it… or the ZSET was edited by hand. */
  nextRunMs: number | null;
}

export type NewSchedule = Omit<ScheduleDefinition, 'anchor_ms' | 'created_at'>;

export async function redisNowMs(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

export class ScheduleStore {
  constructor(
    readonly redis: Redis,
    readonly keys: QueueKeys,
  ) {}

  /** Add or replace a schedule; its first run is its first tick after now (Redis's clock). */
  async put(input: NewSchedule): Promise<{ created: boolean; entry: ScheduleEntry }> {
    const now = await redisNowMs(this.redis);
    const definition: ScheduleDefinition = { ...input, anchor_ms: now, created_at: now };
    const next = nextTickAfter(definition, now);
    const replies = await this.redis
      .multi()
      .hset(this.keys.schedules, input.name, JSON.stringify(definition))
      .zadd(this.keys.scheduleRuns, next, input.name)
      .exec();
    const failed = replies?.find(([err]) => err);
    if (failed) throw failed[0];
    return { created: Number(replies![0]![1]) === 1, entry: { definition, nextRunMs: next } };
  }

  /** Remove a schedule: no job fires it again (one already firing it may still enqueue that one tick). */
  async remove(name: string): Promise<boolean> {
    const replies = await this.redis.multi().hdel(this.keys.schedules, name).zrem(this.keys.scheduleRuns, name).exec();
    return Number(replies?.[0]?.[1]) === 1;
  }

  async get(name: string): Promise<ScheduleDefinition | null> {
    const raw = await this.redis.hget(this.keys.schedules, name);
    return raw === null ? null : parseDefinition(raw);
  }

  /** Every schedule with its next run, by name. */
  async list(): Promise<ScheduleEntry[]> {
    const [all, runs] = await Promise.all([this.redis.hgetall(this.keys.schedules), this.redis.zrange(this.keys.scheduleRuns, '0', '-1', 'WITHSCORES')]);
    const next = new Map<string, number>();
    for (let i = 0; i + 1 < runs.length; i += 2) next.set(runs[i]!, Number(runs[i + 1]));
    return Object.keys(all)
      .sort()
      .flatMap((name) => {
        const definition = parseDefinition(all[name]!);
        return definition ? [{ definition, nextRunMs: next.get(name) ?? null }] : [];
      });
  }

  /** Schedules whose next run has come: name and that run's ms. */
  async due(nowMs: number, limit: number): Promise<{ name: string; runMs: number }[]> {
    const flat = await this.redis.zrangebyscore(this.keys.scheduleRuns, '-inf', nowMs, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: { name: string; runMs: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ name: flat[i]!, runMs: Number(flat[i + 1]) });
    return out;
  }

  /** The earliest next run of any schedule, or null when there are none. */
  async earliest(): Promise<number | null> {
    const first = await this.redis.zrange(this.keys.scheduleRuns, '0', '0', 'WITHSCORES');
    return first.length === 2 ? Number(first[1]) : null;
  }

  async dropRun(name: string): Promise<void> {
    await this.redis.zrem(this.keys.scheduleRuns, name);
  }

  /** Compare-and-set of the next run (schedule-advance.lua): true when this caller moved it. */
  async advance(name: string, expectedMs: number, nextMs: number): Promise<boolean> {
    return (await runScript(this.redis, 'schedule-advance', [this.keys.schedules, this.keys.scheduleRuns], [name, expectedMs, nextMs])) === 1;
  }
}

function parseDefinition(raw: string): ScheduleDefinition | null {
  try {
    const d = JSON.parse(raw) as ScheduleDefinition;
    return d && typeof d.name === 'string' && typeof d.task === 'object' ? d : null;
  } catch {
    return null;
  }
}

/** The API's and CLI's view of a schedule. */
export function scheduleView(entry: ScheduleEntry) {
  const d = entry.definition;
  return {
    name: d.name,
    ...(d.cron !== undefined ? { cron: d.cron, tz: d.tz ?? 'UTC' } : { every_ms: d.every_ms }),
    task: d.task,
    catch_up: d.catch_up,
    ...(d.catch_up === 'all' ? { catch_up_max: d.catch_up_max } : {}),
    next_run_at: entry.nextRunMs === null ? null : new Date(entry.nextRunMs).toISOString(),
    created_at: new Date(d.created_at).toISOString(),
  };
}
