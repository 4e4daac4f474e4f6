// TASK_TIMEOUT_MS / TASK_TIMEOUTS, which timeout a task gets (src/job/timeouts.ts), and the
// verdicts the task handler gives with them (the end-to-end case: test/integration/task-timeouts.test.ts).
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config/load.ts';
import { timeoutOf } from '../../src/job/timeouts.ts';
import { ProcessorRegistry, type Processor } from '../../src/job/processor.ts';
import { createTaskHandler } from '../../src/job/task-handler.ts';
import type { ClaimedTask } from '../../src/queue/task.ts';
import { silentLogger } from '../../src/util/log.ts';

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

describe('the task handler with timeouts', () => {
  const policy = { maxAttempts: 3, baseMs: 10, maxMs: 100 };
  const control = { signal: new AbortController().signal };
  const task = (hash: Record<string, string>, attempt = 1): ClaimedTask => ({ id: '000000000042', token: String(attempt), attempt, hash: { type: 'work', priority: '3', ...hash } });
  const never: Processor = { type: 'work', process: () => new Promise(() => {}) };
  const quick: Processor = { type: 'work', process: async () => ({ ok: true }) };

  it('gives a retry verdict at the deadline of a processor that never returns, and dead-letters the last attempt', async () => {
    const handler = createTaskHandler(new ProcessorRegistry([never]), policy, silentLogger, { timeouts: { defaultMs: 0, byType: { work: 30 } } });
    expect(await handler(task({}), control)).toMatchObject({ outcome: 'retry', fields: { error: 'timed out after 30 ms (timeout_ms)', timed_out: '1' } });
    expect(await handler(task({ timeout_ms: '20' }, 3), control)).toMatchObject({ outcome: 'dead', fields: { error: 'timed out after 20 ms (timeout_ms)', timed_out: '1' } });
  });

  it('clears timed_out when a later attempt finishes in time, and writes nothing about it otherwise', async () => {
    const handler = createTaskHandler(new ProcessorRegistry([quick]), policy, silentLogger, { timeouts: { defaultMs: 1000, byType: {} } });
    expect(await handler(task({ timed_out: '1' }, 2), control)).toEqual({ outcome: 'completed', fields: { result: '{"ok":true}', timed_out: '0' } });
    expect(await handler(task({}), control)).toEqual({ outcome: 'completed', fields: { result: '{"ok":true}' } });
  });
});
