// When a recurring schedule's ticks fall: a cron expression in a time zone (cron-parser), or a
// fixed period counted from the schedule's anchor (its creation). Pure functions of the
// definition, so every job process computes the same ticks and a tick's time identifies it.
import { CronExpressionParser } from 'cron-parser';

export type CatchUp = 'latest' | 'none' | 'all';

export interface Cadence {
  cron?: string;
  /** IANA time zone of the cron expression (default UTC). */
  tz?: string;
  every_ms?: number;
  /** Ticks of every_ms are anchor + k × every_ms, k ≥ 1. */
  anchor_ms: number;
}

/** Why a cron expression / tz cannot be used, or null: bad input is a 400 naming the field, never a crash later. */
export function cadenceProblem(cron: string, tz: string | undefined): { field: 'cron' | 'tz'; message: string } | null {
  if (tz !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      return { field: 'tz', message: `tz must be an IANA time zone like Europe/Berlin or UTC; "${tz}" is not one` };
    }
  }
  // cron-parser reads an empty expression as "every second": refuse it rather than guess.
  if (cron.trim().split(/\s+/).length < 5) return { field: 'cron', message: 'cron must have 5 fields (minute hour day month weekday), or 6 with seconds first' };
  try {
    CronExpressionParser.parse(cron, { tz: tz ?? 'UTC', strict: false }).next();
  } catch (err) {
    return { field: 'cron', message: `cron is not a valid cron expression (${(err as Error).message})` };
  }
  return null;
}

/** The first tick strictly after `t`. */
export function nextTickAfter(c: Cadence, t: number): number {
  if (c.every_ms !== undefined) {
    const k = t < c.anchor_ms ? 1 : Math.floor((t - c.anchor_ms) / c.every_ms) + 1;
    return c.anchor_ms + k * c.every_ms;
  }
  return CronExpressionParser.parse(c.cron!, { currentDate: new Date(t), tz: c.tz ?? 'UTC' }).next().getTime();
}

/** The last tick at or before `t`, or null when there is none (before the first). */
export function lastTickAtOrBefore(c: Cadence, t: number): number | null {
  if (c.every_ms !== undefined) {
    if (t < c.anchor_ms + c.every_ms) return null;
    return c.anchor_ms + Math.floor((t - c.anchor_ms) / c.every_ms) * c.every_ms;
  }
  try {
    return CronExpressionParser.parse(c.cron!, { currentDate: new Date(t + 1), tz: c.tz ?? 'UTC' }).prev().getTime();
  } catch {
    return null;
  }
}

/** The `n`-th last tick at or before `t` (n = 1: the last), or null when there are fewer. */
export function nthLastTick(c: Cadence, t: number, n: number): number | null {
  if (c.every_ms !== undefined) {
    const last = lastTickAtOrBefore(c, t);
    if (last === null) return null;
    const tick = last - (n - 1) * c.every_ms;
    return tick > c.anchor_ms ? tick : null;
  }
  try {
    const expr = CronExpressionParser.parse(c.cron!, { currentDate: new Date(t + 1), tz: c.tz ?? 'UTC' });
    let tick = 0;
    for (let i = 0; i < n; i++) tick = expr.prev().getTime();
    return tick;
  } catch {
    return null;
  }
}

export interface FireDecision {
  /** The tick to fire a task for now, or null to fire none. */
  fire: number | null;
  /** The schedule's next run after this one. */
  next: number;
}

/**
 * What to do with a schedule whose next run `due` has come (`now` ≥ `due`). Missed ticks (more
 * than one tick at or before now: every job was down, or busy) never come as a burst:
 * - latest (default): one task, for the last tick that has passed; then on with the next tick;
 * - none: a tick is fired only while it is the current one (no later tick has passed too);
 *   missed ones are skipped;
 * - all: every missed tick, one per step, but no older than the `max` last ones.
 */
export function decide(c: Cadence, policy: CatchUp, max: number, due: number, now: number): FireDecision {
  const following = nextTickAfter(c, due);
  if (following > now) return { fire: due, next: following };
  switch (policy) {
    case 'none':
      return { fire: null, next: nextTickAfter(c, now) };
    case 'all': {
      const oldest = nthLastTick(c, now, max);
      const tick = oldest !== null && oldest > due ? oldest : due;
      return { fire: tick, next: nextTickAfter(c, tick) };
    }
    default:
      return { fire: lastTickAtOrBefore(c, now) ?? due, next: nextTickAfter(c, now) };
  }
}
