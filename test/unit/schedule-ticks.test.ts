// Tick math of recurring schedules (src/schedule/ticks.ts) and where their keys live.
import { describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/queue/keys.ts';
import { cadenceProblem, decide, lastTickAtOrBefore, nextTickAfter, type Cadence } from '../../src/schedule/ticks.ts';

const MIN = 60_000;

describe('ticks', () => {
  it('every_ms ticks are anchor + k × every_ms, k ≥ 1', () => {
    const c: Cadence = { every_ms: 300, anchor_ms: 1000 };
    expect(nextTickAfter(c, 1000)).toBe(1300);
    expect(nextTickAfter(c, 1299)).toBe(1300);
    expect(nextTickAfter(c, 1300)).toBe(1600);
    expect(lastTickAtOrBefore(c, 1299)).toBeNull();
    expect(lastTickAtOrBefore(c, 1600)).toBe(1600);
    expect(lastTickAtOrBefore(c, 1899)).toBe(1600);
  });

  it('cron ticks follow the time zone, daylight saving included', () => {
    const c: Cadence = { cron: '30 2 * * *', tz: 'Europe/Berlin', anchor_ms: 0 };
    // Winter: 02:30 Berlin = 01:30 UTC; summer: 00:30 UTC.
    expect(new Date(nextTickAfter(c, Date.parse('2026-01-10T12:00:00Z'))).toISOString()).toBe('2026-01-11T01:30:00.000Z');
    expect(new Date(nextTickAfter(c, Date.parse('2026-07-10T12:00:00Z'))).toISOString()).toBe('2026-07-11T00:30:00.000Z');
    expect(new Date(lastTickAtOrBefore(c, Date.parse('2026-07-11T00:30:00Z'))!).toISOString()).toBe('2026-07-11T00:30:00.000Z');
  });

  it('names the field of a bad cron or tz', () => {
    expect(cadenceProblem('*/5 * * * *', 'UTC')).toBeNull();
    expect(cadenceProblem('*/5 * * * *', 'Nowhere/Town')?.field).toBe('tz');
    expect(cadenceProblem('99 * * * *', undefined)?.field).toBe('cron');
    expect(cadenceProblem('', undefined)?.field).toBe('cron');
  });
});

describe('catch-up', () => {
  const c: Cadence = { every_ms: MIN, anchor_ms: 0 };
  const now = 10 * MIN + 30_000; // ticks 1..10 min have passed

  it('an on-time run fires its own tick whatever the policy', () => {
    for (const policy of ['latest', 'none', 'all'] as const) {
      expect(decide(c, policy, 100, 10 * MIN, now)).toEqual({ fire: 10 * MIN, next: 11 * MIN });
    }
  });

  it('after downtime: latest fires the last tick once, none skips, all fires the last max one by one', () => {
    expect(decide(c, 'latest', 100, MIN, now)).toEqual({ fire: 10 * MIN, next: 11 * MIN });
    expect(decide(c, 'none', 100, MIN, now)).toEqual({ fire: null, next: 11 * MIN });
    expect(decide(c, 'all', 3, MIN, now)).toEqual({ fire: 8 * MIN, next: 9 * MIN });
    expect(decide(c, 'all', 3, 9 * MIN, now)).toEqual({ fire: 9 * MIN, next: 10 * MIN });
    expect(decide(c, 'all', 100, MIN, now)).toEqual({ fire: MIN, next: 2 * MIN });
  });
});

describe('keys', () => {
  const tagOf = (key: string) => /\{[^}]*\}/.exec(key)?.[0];

  it('plain layout: next to the queue', () => {
    const k = queueKeys();
    expect([k.scheduled, k.schedules, k.scheduleRuns]).toEqual(['uvr_tasks:scheduled', 'uvr_tasks:schedules', 'uvr_tasks:schedules:next']);
  });

  it('tagged and sharded layouts: each shard schedules in its own slot, schedules live in the first', () => {
    const cluster = queueKeys({ tagged: true });
    expect(tagOf(cluster.scheduled)).toBe(cluster.tag);
    expect(tagOf(cluster.schedules)).toBe(cluster.tag);
    const sharded = queueKeys({ shards: 3 });
    for (const shard of sharded.shards) {
      expect(tagOf(shard.scheduled)).toBe(shard.tag);
      expect(shard.schedules).toBe(sharded.shards[0]!.schedules);
      expect(tagOf(shard.scheduleRuns)).toBe(sharded.shards[0]!.tag);
    }
  });
});
