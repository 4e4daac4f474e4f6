// Task status notifications: a task submitted with `user_id` and/or `room_id` tells that room
// (or, without a room, that user) how it is doing — queued, processing (with progress where the
// processor reports it), completed, failed, dead, or queued again for a retry — as a
// `task_status` message through the comets, the same path as any push. The messages themselves
// are built by the push contract (src/contract/task-status-message.ts), which logic shares.
import type { Logger } from '../util/log.ts';
import type { TaskHash } from '../queue/task.ts';
import type { Verdict } from '../queue/consumer.ts';
import type { PushPayload } from '../contract/push-message.ts';
import { statusPush, statusTarget, type TaskStatusEvent } from '../contract/task-status-message.ts';

// The message shapes are the push contract's (src/contract/task-status-message.ts).
export type { TaskStatusEvent, TaskStatusName } from '../contract/task-status-message.ts';

/** The status a saved verdict announces; null for a task handed back at shutdown (nothing changed for its user). */
export function settledEvent(attempt: number, verdict: Verdict): TaskStatusEvent | null {
  const error = verdict.fields?.error;
  switch (verdict.outcome) {
    case 'completed': {
      let result: unknown = null;
      try {
        result = JSON.parse(verdict.fields?.result ?? 'null');
      } catch {
        // Stored as text by a processor: pass it on as such.
        result = verdict.fields?.result;
      }
      return { status: 'completed', attempt, result };
    }
    case 'failed':
    case 'dead':
      return { status: verdict.outcome, attempt, ...(error !== undefined ? { error } : {}) };
    case 'retry':
      return { status: 'queued', attempt, retryInMs: verdict.delayMs ?? 0, ...(error !== undefined ? { error } : {}) };
    default:
      return null;
  }
}

/** Delivers one push payload under a message id (the push processor's path). */
export type PushDelivery = (payload: PushPayload, messageId: string) => Promise<unknown>;

/**
 * Sends status messages without ever holding a task up or failing it: each task's messages
 * go out one after another (so `processing` is not overtaken by `completed`), errors are logged.
 */
export class TaskNotifier {
  private readonly chains = new Map<string, Promise<void>>();
  /** Makes message ids unique within this process; the task id, status and attempt do across processes. */
  private counter = 0;

  constructor(
    private readonly deliver: PushDelivery,
    private readonly log: Logger,
  ) {}

  /** True when the task asked for notifications: callers skip building events otherwise. */
  wants(hash: TaskHash): boolean {
    return statusTarget(hash) !== null;
  }

  notify(taskId: string, hash: TaskHash, event: TaskStatusEvent): void {
    const push = statusPush(taskId, hash, event);
    if (!push) return;
    const messageId = `${taskId}.${event.status}.${event.attempt ?? hash.attempts ?? 0}.${(++this.counter).toString(36)}`;
    const tail = (this.chains.get(taskId) ?? Promise.resolve())
      .then(() => this.deliver(push, messageId))
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ task: taskId, status: event.status, err: String(err) }, `task ${taskId}: ${event.status} notification not delivered`),
      )
      .finally(() => {
        if (this.chains.get(taskId) === tail) this.chains.delete(taskId);
      });
    this.chains.set(taskId, tail);
  }

  /** Waits for every notification sent so far (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all(this.chains.values());
  }
}
