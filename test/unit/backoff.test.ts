import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/queue/backoff.ts';
import { priorityScoreRange, queueScore } from '../../src/queue/keys.ts';

describe('backoffDelay', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it('doubles per attempt with half of it random, capped', () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(500);
    expect(backoffDelay(1, policy, () => 1)).toBe(1000);
    expect(backoffDelay(3, policy, () => 0)).toBe(2000);
    expect(backoffDelay(3, policy, () => 1)).toBe(4000);
    expect(backoffDelay(30, policy, () => 1)).toBe(60_000);
    expect(backoffDelay(30, policy, () => 0)).toBe(30_000);
  });
});

describe('score ranges per priority', () => {
  it('put every plausible score of a priority in its own range and no other', () => {
    const now = Date.UTC(2026, 10, 22);
    for (const p of [1, 2, 3, 4, 5]) {
      const [lo, hi] = priorityScoreRange(p, now);
      for (const t of [now, now - 86_400_000 * 365 * 5, now + 3_600_000]) {
        const s = queueScore(t, p);
        expect(s >= lo && s <= hi).toBe(true);
        for (const q of [1, 2, 3, 4, 5].filter((q) => q !== p)) {
          const [qlo, qhi] = priorityScoreRange(q, now);
          expect(s >= qlo && s <= qhi).toBe(false);
        }
      }
    }
  });
});
