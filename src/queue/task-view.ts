// How a task hash is shown outside Redis: the API's task JSON and the webhook body. Times are
// stored as epoch ms in the hash (compact, sortable) and shown as ISO 8601 here.
import type { TaskHash } from './task.ts';

function iso(ms: string | undefined): string | null {
  if (!ms) return null;
  const n = Number(ms);
  return Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : null;
}

function json(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function int(text: string | undefined): number {
  const n = Number(text ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** The body POSTed to hook_url (DESIGN §6). */
export function webhookBody(hash: TaskHash) {
  return {
    task_id: hash.id ?? '',
    status: hash.status ?? '',
    priority: int(hash.priority),
    result: json(hash.result),
    error: hash.error ?? null,
    attempts: int(hash.attempts),
    created_at: iso(hash.created_at),
    finished_at: iso(hash.finished_at),
  };
}

/**
 * What the task was asked to do. An audio task keeps its URL in the `audio` field rather than in
 * payload (logic stores it once); shown as payload too, so the view never says `payload: null`
 * for a task that was given a URL.
 */
function requested(hash: TaskHash): unknown {
  if (hash.payload !== undefined) return json(hash.payload);
  return hash.audio ? { audio: hash.audio } : null;
}

/**
 * The room and sender of a room message from /logic/send: its hash no longer repeats them (the
 * payload holds both; issue 11, item 3: a lean push hash), so the view reads them from there and
 * still shows room_id / user_id as it did. Any other task shows its own fields.
 */
function address(hash: TaskHash, payload: unknown): { user_id?: string; room_id?: string } {
  if (hash.user_id || hash.room_id || hash.type !== 'push') {
    return { ...(hash.user_id ? { user_id: hash.user_id } : {}), ...(hash.room_id ? { room_id: hash.room_id } : {}) };
  }
  const p = payload as { mode?: unknown; roomId?: unknown; message?: { userId?: unknown; messages?: unknown } } | null;
  if (!p || p.mode !== 'room' || typeof p.roomId !== 'string' || !Array.isArray(p.message?.messages)) return {};
  return { ...(typeof p.message.userId === 'string' ? { user_id: p.message.userId } : {}), room_id: p.roomId };
}

/** GET /tasks/:id */
export function taskView(hash: TaskHash) {
  const payload = requested(hash);
  return {
    task_id: hash.id ?? '',
    type: hash.type ?? '',
    status: hash.status ?? '',
    priority: int(hash.priority),
    attempts: int(hash.attempts),
    ...(hash.audio ? { audio: hash.audio } : {}),
    payload,
    result: json(hash.result),
    error: hash.error ?? null,
    hook_url: hash.hook_url ?? null,
    created_at: iso(hash.created_at),
    started_at: iso(hash.started_at),
    finished_at: iso(hash.finished_at),
    retry_at: iso(hash.retry_at),
    ...(hash.timeout_ms ? { timeout_ms: int(hash.timeout_ms) } : {}),
    ...(hash.timed_out ? { timed_out: hash.timed_out === '1' } : {}),
    // delay_ms / run_at: when it starts (or started) to wait in line; its place in line is this time's.
    ...(hash.run_at ? { run_at: iso(hash.run_at) } : {}),
    ...(hash.schedule ? { schedule: hash.schedule, schedule_tick: iso(hash.schedule_tick) } : {}),
    ...address(hash, payload),
    ...(hash.group ? { group: hash.group } : {}),
    webhook: hash.webhook_status
      ? {
          status: hash.webhook_status,
          attempts: int(hash.webhook_attempts),
          response_code: hash.webhook_code ? int(hash.webhook_code) : null,
          error: hash.webhook_error ?? null,
          finished_at: iso(hash.webhook_finished_at),
          retry_at: iso(hash.webhook_retry_at),
        }
      : null,
  };
}
