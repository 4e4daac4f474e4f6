// `echo`: the pipeline's own smoke and test task. The result is the payload, after an
// optional `delay_ms` (≤ 60000). `fail_attempts: n` makes the first n attempts fail with a
// retriable error and `fail: "permanent"` fails for good, so retries, dead-lettering and
// webhooks can be tried end to end with curl alone.
import { setTimeout as delay } from 'node:timers/promises';
import { PermanentError, type Processor, type TaskContext } from '../processor.ts';

export const ECHO_MAX_DELAY_MS = 60_000;

interface EchoOptions {
  delay_ms?: unknown;
  fail_attempts?: unknown;
  fail?: unknown;
}

export const echoProcessor: Processor = {
  type: 'echo',
  async process(ctx: TaskContext) {
    const options = (ctx.payload && typeof ctx.payload === 'object' ? ctx.payload : {}) as EchoOptions;
    const wait = Number(options.delay_ms ?? 0);
    if (!Number.isFinite(wait) || wait < 0 || wait > ECHO_MAX_DELAY_MS) {
      throw new PermanentError(`payload.delay_ms must be between 0 and ${ECHO_MAX_DELAY_MS}`);
    }
    if (wait > 0) {
      // Halfway it reports progress, so status notifications can be watched with echo alone.
      await delay(wait / 2, undefined, { signal: ctx.signal });
      ctx.progress(0.5, 'halfway');
      await delay(wait / 2, undefined, { signal: ctx.signal });
    }
    if (options.fail === 'permanent') throw new PermanentError('echo asked to fail (payload.fail = "permanent")');
    const failAttempts = Number(options.fail_attempts ?? 0);
    if (ctx.attempt <= failAttempts) {
      throw new Error(`echo asked to fail attempt ${ctx.attempt} of the first ${failAttempts} (payload.fail_attempts)`);
    }
    return ctx.payload ?? null;
  },
};
