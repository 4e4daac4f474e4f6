// The task handler's log lines and hooks: the HTTP request id rides along into the job's lines,
// progress becomes a notification only for tasks that asked for one.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ProcessorRegistry, type Processor } from '../../src/job/processor.ts';
import { createTaskHandler } from '../../src/job/task-handler.ts';
import { TaskNotifier } from '../../src/job/task-status.ts';
import type { ClaimedTask } from '../../src/queue/task.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

const policy = { maxAttempts: 3, baseMs: 10, maxMs: 100 };
const control = { signal: new AbortController().signal };
const task = (hash: Record<string, string>): ClaimedTask => ({ id: '000000000042', token: '1', attempt: 1, hash: { type: 'work', priority: '3', ...hash } });

describe('task handler', () => {
  it("carries the HTTP request id into the job's log lines, the processor's own included", async () => {
    const { log, lines } = capture();
    const processor: Processor = {
      type: 'work',
      async process(ctx) {
        ctx.log.info('processor says hi');
        return { ok: true };
      },
    };
    const handler = createTaskHandler(new ProcessorRegistry([processor]), policy, log);
    const verdict = await handler(task({ request_id: 'trace-abc.123' }), control);
    expect(verdict).toMatchObject({ outcome: 'completed', fields: { result: '{"ok":true}' } });
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.msg, l.reqId, l.task])).toEqual([
      ['processor says hi', 'trace-abc.123', '000000000042'],
      ['task 000000000042 completed', 'trace-abc.123', '000000000042'],
    ]);
  });

  it('sends processing and progress notifications only for tasks with a user or room', async () => {
    const sent: { payload: unknown; id: string }[] = [];
    const notifier = new TaskNotifier(async (payload, id) => void sent.push({ payload, id }), pino({ level: 'silent' }));
    const processor: Processor = {
      type: 'work',
      async process(ctx) {
        ctx.progress(0.25, 'a quarter');
        ctx.progress(7); // clamped
        ctx.progress(Number.NaN); // ignored
        return null;
      },
    };
    const handler = createTaskHandler(new ProcessorRegistry([processor]), policy, pino({ level: 'silent' }), { notifier });
    await handler(task({}), control);
    await notifier.drain();
    expect(sent).toEqual([]);
    await handler(task({ user_id: 'ann' }), control);
    await notifier.drain();
    expect(sent.map((s) => s.payload)).toMatchObject([
      { mode: 'users', userIds: ['ann'], message: { type: 'task_status', task_id: '000000000042', status: 'processing', attempt: 1 } },
      { mode: 'users', message: { status: 'processing', progress: 0.25, note: 'a quarter' } },
      { mode: 'users', message: { status: 'processing', progress: 1 } },
    ]);
    expect(new Set(sent.map((s) => s.id)).size).toBe(3);
  });
});
