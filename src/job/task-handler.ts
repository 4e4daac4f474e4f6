// Turns a processor's outcome into a queue verdict: completed, failed for good, retried with
// backoff, or dead-lettered once its attempts are spent. Logs each task's outcome.
import type { Logger } from '../util/log.ts';
import { backoffDelay, type BackoffPolicy } from '../queue/backoff.ts';
import type { Handler, Verdict } from '../queue/consumer.ts';
import type { ClaimedTask } from '../queue/task.ts';
import { PermanentError, type ProcessorRegistry } from './processor.ts';
import type { TaskNotifier } from './task-status.ts';
import type { JobMetrics } from './metrics.ts';
import { NO_TIMEOUTS, TIMED_OUT_FIELD, TaskTimeoutError, runWithTimeout, timeoutOf, type TimeoutPolicy } from './timeouts.ts';

export interface RetryPolicy extends BackoffPolicy {
  maxAttempts: number;
}

/** The error text kept on the task hash: the message, not a stack. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

/** A task's own max_attempts (hash field) when set, else the configured default. */
export function maxAttemptsOf(task: ClaimedTask, fallback: number, field = 'max_attempts'): number {
  const own = Number(task.hash[field]);
  return Number.isInteger(own) && own > 0 ? own : fallback;
}

/** Retry with backoff while attempts remain, then dead-letter; `fields` are written either way. */
export function retryOrDead(
  attempt: number,
  maxAttempts: number,
  backoff: BackoffPolicy,
  fields: Record<string, string>,
  minDelayMs = 0,
): Verdict {
  if (attempt >= maxAttempts) return { outcome: 'dead', fields };
  return { outcome: 'retry', delayMs: Math.max(minDelayMs, backoffDelay(attempt, backoff)), fields };
}

export interface TaskHandlerHooks {
  notifier?: TaskNotifier;
  metrics?: JobMetrics;
  /** TASK_TIMEOUT_MS / TASK_TIMEOUTS; a task's own timeout_ms wins. None when not given. */
  timeouts?: TimeoutPolicy;
}

export function createTaskHandler(registry: ProcessorRegistry, policy: RetryPolicy, log: Logger, hooks: TaskHandlerHooks = {}): Handler {
  const { notifier, metrics } = hooks;
  const timeouts = hooks.timeouts ?? NO_TIMEOUTS;
  const infoOn = log.isLevelEnabled('info');
  const debugOn = log.isLevelEnabled('debug');
  const warnOn = log.isLevelEnabled('warn');
  return async (task, control) => {
    const type = task.hash.type ?? '';
    const processor = registry.get(type);
    // A processor that logs its own outcome (push: seed lines or a batch summary) has the
    // `completed` line below at debug.
    const completedLevel = processor?.logsOwnOutcome ? 'debug' : 'info';
    const completedOn = processor?.logsOwnOutcome ? debugOn : infoOn;
    const started = infoOn || warnOn || metrics ? performance.now() : 0;
    if (metrics && task.attempt === 1) metrics.waited(type, task.hash.priority ?? '', (Number(task.hash.started_at) - Number(task.hash.created_at)) / 1000);
    // One child logger per task is measurable at 100k tasks/s: build it only when needed.
    let taskLog: Logger | undefined;
    const logFor = () =>
      (taskLog ??= log.child({ task: task.id, type, ...(task.hash.request_id ? { reqId: task.hash.request_id } : {}) }));
    const verdict = await run();
    metrics?.processed(type, verdict.outcome, (performance.now() - started) / 1000);
    if (verdict.outcome === 'completed' ? completedOn : warnOn) {
      const line = { priority: Number(task.hash.priority), attempt: task.attempt, ms: Math.round(performance.now() - started), outcome: verdict.outcome };
      if (verdict.outcome === 'completed') logFor()[completedLevel](line, `task ${task.id} completed`);
      else logFor().warn({ ...line, error: verdict.fields?.error, delayMs: verdict.delayMs }, `task ${task.id} ${verdict.outcome}`);
    }
    return verdict;

    async function run(): Promise<Verdict> {
      const notify = notifier?.wants(task.hash) ? notifier : undefined;
      notify?.notify(task.id, task.hash, { status: 'processing', attempt: task.attempt });
      if (!processor) return { outcome: 'failed', fields: { error: `no processor for task type "${type}" in this job` } };
      let payload: unknown = null;
      if (task.hash.payload !== undefined) {
        try {
          payload = JSON.parse(task.hash.payload);
        } catch {
          return { outcome: 'failed', fields: { error: 'payload is not valid JSON' } };
        }
      }
      const timeoutMs = timeoutOf(task.hash, timeouts);
      const runProcessor = (signal: () => AbortSignal) =>
        processor.process({
          id: task.id,
          type,
          priority: Number(task.hash.priority),
          attempt: task.attempt,
          payload,
          hash: task.hash,
          get signal() {
            return signal();
          },
          get log() {
            return logFor();
          },
          progress(fraction, note) {
            if (!notify || !Number.isFinite(fraction)) return;
            const progress = Math.min(1, Math.max(0, fraction));
            notify.notify(task.id, task.hash, { status: 'processing', attempt: task.attempt, progress, ...(note !== undefined ? { note: String(note).slice(0, 200) } : {}) });
          },
        });
      try {
        // With a timeout the verdict comes at the deadline even if the processor never returns:
        // its slot is free again and its late result is dropped here, never settled.
        const result = await (timeoutMs > 0 ? runWithTimeout(timeoutMs, () => control.signal, runProcessor) : runProcessor(() => control.signal));
        const fields: Record<string, string> = { result: JSON.stringify(result ?? null) };
        // An earlier attempt timed out; this one did not.
        if (task.hash[TIMED_OUT_FIELD]) fields[TIMED_OUT_FIELD] = '0';
        return { outcome: 'completed', fields };
      } catch (err) {
        const fields: Record<string, string> = { error: errorText(err) };
        if (err instanceof TaskTimeoutError) fields[TIMED_OUT_FIELD] = '1';
        else if (task.hash[TIMED_OUT_FIELD]) fields[TIMED_OUT_FIELD] = '0';
        if (err instanceof PermanentError) return { outcome: 'failed', fields };
        return retryOrDead(task.attempt, maxAttemptsOf(task, policy.maxAttempts), policy, fields);
      }
    }
  };
}
