// TASK_TIMEOUT_MS / TASK_TIMEOUTS and which timeout a task gets (src/job/timeouts.ts).
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config/load.ts';
import { timeoutOf } from '../../src/job/timeouts.ts';

describe('task timeout settings', () => {
  it('parses TASK_TIMEOUTS as type=ms pairs over TASK_TIMEOUT_MS', () => {
    const parsed = parseEnv({ TASK_TIMEOUT_MS: '5000', TASK_TIMEOUTS: 'audio=600000, push=10000,echo=0' });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.env.TASK_TIMEOUTS).toEqual({ audio: 600_000, push: 10_000, echo: 0 });
    const policy = { defaultMs: parsed.env.TASK_TIMEOUT_MS, byType: parsed.env.TASK_TIMEOUTS };
    expect(timeoutOf({ type: 'audio' }, policy)).toBe(600_000);
    expect(timeoutOf({ type: 'echo' }, policy)).toBe(0);
    expect(timeoutOf({ type: 'shout' }, policy)).toBe(5000);
    expect(timeoutOf({ type: 'audio', timeout_ms: '1500' }, policy)).toBe(1500);
    const none = parseEnv({});
    expect(none.ok && none.env.TASK_TIMEOUT_MS === 0 && Object.keys(none.env.TASK_TIMEOUTS).length === 0).toBe(true);
  });

  it('names a bad TASK_TIMEOUTS entry', () => {
    for (const [value, problem] of [
      ['audio', '"audio" must be type=milliseconds'],
      ['audio=fast', '"audio=fast" must be type=milliseconds'],
      ['audio=1,audio=2', 'audio is given twice'],
      ['audio=86400001', 'audio: at most 86400000 ms'],
    ] as const) {
      const parsed = parseEnv({ TASK_TIMEOUTS: value });
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.errors.join('\n')).toMatch(new RegExp(`^TASK_TIMEOUTS.*${problem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    }
  });
});
