// Task status notifications: a task submitted with `user_id` and/or `room_id` tells that room
// (or, without a room, that user) how it is doing — queued, processing (with progress where the
// processor reports it), completed, failed, dead, or queued again for a retry — as a
// `task_status` message through the comets, the same path as any push.
import type { Logger } from '../util/log.ts';
import type { TaskHash } from '../queue/task.ts';
import type { Verdict } from '../queue/consumer.ts';
import type { PushPayload } from './processors/push.ts';

export type TaskStatusName = 'scheduled' | 'queued' | 'processing' | 'completed' | 'failed' | 'dead';

export interface TaskStatusEvent {
  status: TaskStatusName;
  attempt?: number;
  /** 0..1, when the processor reports it. */
  progress?: number;
  note?: string;
  result?: unknown;
  error?: string;
  /** A retry: ms until it runs again. */
  retryInMs?: number;
  /** A delayed task (status scheduled): when it starts, ms. */
  runAtMs?: number;
}

/** Results larger than this are left out of the message (the webhook and GET /tasks/:id have them). */
const MAX_RESULT_CHARS = 8 * 1024;

/**
 * Where a task's notifications go, or null when it asked for none. Push tasks carry
 * room_id/user_id as their own address, not as a request to be notified, so they get none.
 * With both ids the room is told (the user too, when in it).
 */
export function statusTarget(hash: Pick<TaskHash, string>): Omit<PushPayload, 'message'> | null {
  if (hash.type === 'push') return null;
  if (hash.room_id) return { mode: 'room', roomId: hash.room_id };
  if (hash.user_id) return { mode: 'users', userIds: [hash.user_id] };
  return null;
}

/** The message clients receive (inside a serverMessages frame, which adds its `id`). */
export function statusMessage(taskId: string, hash: Pick<TaskHash, string>, event: TaskStatusEvent): Record<string, unknown> {
  const message: Record<string, unknown> = {
    type: 'task_status',
    task_id: taskId,
    task_type: hash.type,
    status: event.status,
    priority: Number(hash.priority),
    at: Date.now(),
  };
  if (event.attempt !== undefined) message.attempt = event.attempt;
  if (event.progress !== undefined) message.progress = event.progress;
  if (event.note !== undefined) message.note = event.note;
  if (event.error !== undefined) message.error = event.error;
  if (event.retryInMs !== undefined) message.retry_in_ms = event.retryInMs;
  if (event.runAtMs !== undefined) message.run_at = new Date(event.runAtMs).toISOString();
  if (event.result !== undefined) {
    const text = JSON.stringify(event.result);
    if (text !== undefined && text.length <= MAX_RESULT_CHARS) message.result = event.result;
    else message.result_omitted = true;
  }
  return message;
}

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
    const target = statusTarget(hash);
    if (!target) return;
    const message = statusMessage(taskId, hash, event);
    const messageId = `${taskId}.${event.status}.${event.attempt ?? hash.attempts ?? 0}.${(++this.counter).toString(36)}`;
    const tail = (this.chains.get(taskId) ?? Promise.resolve())
      .then(() => this.deliver({ ...target, message }, messageId))
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
