// Task status notifications as clients receive them (part of the push contract): a task
// submitted with `user_id` and/or `room_id` tells that room (or, without a room, that user) how
// it is doing as a `task_status` message. logic builds the `queued` one, job every later one.
import type { TaskHash } from '../queue/task.ts';
import { pushPayload, roomTarget, usersTarget, type PushPayload, type PushTarget } from './push-message.ts';

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
export function statusTarget(hash: Pick<TaskHash, string>): PushTarget | null {
  if (hash.type === 'push') return null;
  if (hash.room_id) return roomTarget(hash.room_id);
  if (hash.user_id) return usersTarget([hash.user_id]);
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

/** The push payload of one status notification, or null when the task asked for none. */
export function statusPush(taskId: string, hash: Pick<TaskHash, string>, event: TaskStatusEvent): PushPayload | null {
  const target = statusTarget(hash);
  return target ? pushPayload(target, statusMessage(taskId, hash, event)) : null;
}
