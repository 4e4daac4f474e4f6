// POST /generate, GET /tasks/:id, DELETE /tasks/:id.
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { taskView } from '../../queue/task-view.ts';
import type { NewTask, TaskQueue } from '../../queue/task-queue.ts';
import { BackendUnsupportedError, type BackendName, type QueueBackend } from '../../queue/backend.ts';
import { NotReplicatedError } from '../../queue/replication-wait.ts';
import type { RoutingKeys } from '../../routing/keys.ts';
import { encodePushPayload, pushPayload, roomTarget, stampedMessage, usersTarget } from '../../contract/push-message.ts';
import { statusPush } from '../../contract/task-status-message.ts';
import { ApiError } from '../errors.ts';
import { groupNeedsRedis } from './groups.ts';
import { acceptedSchema, acceptedSerializerCompiler, generateBodySchema, idempotencyHeadersSchema, taskParamsSchema, type GenerateBody } from '../schemas.ts';

export interface TaskRoutesOptions {
  /** The Redis engine: task hashes (GET), cancel. */
  queue: TaskQueue;
  /** Where new tasks go (QUEUE_BACKEND). */
  submit: Pick<TaskQueue | QueueBackend, 'enqueueOne'>;
  backendName: BackendName;
  defaultPriority: number;
  taskTypes: readonly string[];
  keys: RoutingKeys;
}

/** Status notifications go out before anything else in the queue. */
const NOTIFICATION_PRIORITY = 5;

/** Same body, same fingerprint, whatever the key order: a replay is recognised as one. */
export function fingerprint(body: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
        : v;
  return createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex').slice(0, 32);
}

/** The later start a body asks for (delay_ms / run_at), if any: the task then waits in the scheduled set. */
function startOf(body: GenerateBody): NewTask['start'] {
  if (body.run_at !== undefined) return { runAtMs: Date.parse(body.run_at) };
  if (body.delay_ms !== undefined && body.delay_ms > 0) return { delayMs: body.delay_ms };
  return undefined;
}

/** The task a /generate body describes (also what a recurring schedule fires: src/queue/schedules.ts). */
export function toNewTask(body: GenerateBody, priority: number, requestId: string, keys: RoutingKeys): NewTask {
  const task = toNewTaskNow(body, priority, requestId, keys);
  const start = startOf(body);
  if (start) task.start = start;
  return task;
}

function toNewTaskNow(body: GenerateBody, priority: number, requestId: string, keys: RoutingKeys): NewTask {
  const type = body.type ?? 'audio';
  const fields: Record<string, string> = { request_id: requestId };
  // Groups (src/queue/groups.ts): a fair share and limits with the group's other tasks.
  const group = body.group ? { group: body.group } : {};
  if (body.audio) fields.audio = body.audio;
  if (body.user_id) fields.user_id = body.user_id;
  if (body.room_id) fields.room_id = body.room_id;
  if (body.timeout_ms) fields.timeout_ms = String(body.timeout_ms);
  if (type === 'push') {
    // The schema made sure of one address and an object payload: the same task /logic/send makes.
    const push = pushPayload(body.room_id ? roomTarget(body.room_id) : usersTarget([body.user_id!]), stampedMessage(body.payload as object));
    return {
      type,
      priority,
      payload: encodePushPayload(push),
      ...(body.hook_url ? { hookUrl: body.hook_url } : {}),
      fields,
      ...group,
      ...(push.mode === 'room' ? { sequenceKey: keys.roomSeq(push.roomId!) } : {}),
    };
  }
  // The audio URL is its own field; repeating it in payload would cost every waiting task its length again.
  const payload = body.payload;
  return {
    type,
    priority,
    ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
    ...(body.hook_url ? { hookUrl: body.hook_url } : {}),
    fields,
    ...group,
  };
}

/**
 * The `queued` status message of a task that asked for notifications, as a push task of its own;
 * `scheduled` with its start for a delayed task (`runAtMs`).
 */
export function queuedNotification(taskId: string, task: NewTask, requestId: string, runAtMs: number | null = null): NewTask | null {
  const hash = { type: task.type, priority: String(task.priority), ...task.fields };
  const event = runAtMs === null ? { status: 'queued' as const, attempt: 0 } : { status: 'scheduled' as const, attempt: 0, runAtMs };
  const push = statusPush(taskId, hash, event);
  if (!push) return null;
  return { type: 'push', priority: NOTIFICATION_PRIORITY, payload: encodePushPayload(push), fields: { request_id: requestId, notification_of: taskId } };
}

/** Delays need the Redis engine's scheduled set: on another backend the request gets a 501. */
export function assertStartSupported(task: NewTask, backendName: BackendName): void {
  if (task.start && backendName !== 'redis') {
    throw new BackendUnsupportedError(`delay_ms and run_at need QUEUE_BACKEND=redis (this logic runs ${backendName})`);
  }
}

/**
 * When a just-queued task starts: null = at once (status `queued`), else its run_at ms (status
 * `scheduled`). enqueue.lua compares the start with the same Redis clock that made createdAtMs
 * (and adds delay_ms to it), so a run_at already past is queued at once.
 */
export function startOfQueued(task: NewTask, createdAtMs: number): number | null {
  if (!task.start) return null;
  if ('delayMs' in task.start) return createdAtMs + task.start.delayMs;
  return task.start.runAtMs > createdAtMs ? task.start.runAtMs : null;
}

export const taskRoutes: FastifyPluginAsyncZod<TaskRoutesOptions> = async (app, options) => {
  const { queue, submit } = options;
  const bodySchema = generateBodySchema(options.taskTypes);

  app.post(
    '/generate',
    {
      onRequest: app.apiAuth,
      serializerCompiler: acceptedSerializerCompiler,
      schema: { body: bodySchema, headers: idempotencyHeadersSchema, response: { 202: acceptedSchema } },
    },
    async (request, reply) => {
      if (request.body.group !== undefined && options.backendName !== 'redis') throw groupNeedsRedis(options.backendName);
      const priority = request.body.priority ?? options.defaultPriority;
      const task = toNewTask(request.body, priority, request.id, options.keys);
      assertStartSupported(task, options.backendName);
      const key = request.headers['idempotency-key'];
      if (key) task.idempotency = { key, fingerprint: fingerprint(request.body) };
      let result;
      try {
        result = await submit.enqueueOne(task);
      } catch (err) {
        if (err instanceof BackendUnsupportedError) throw err;
        if (err instanceof NotReplicatedError) {
          request.log.warn({ err: err.message }, 'enqueue not confirmed by replicas');
          throw new ApiError('not_replicated', `the task was written but not confirmed by replicas (${err.message}); it may exist: retry with the same Idempotency-Key`);
        }
        request.log.error({ err }, 'enqueue failed');
        throw new ApiError(
          'queue_unavailable',
          `could not write the task to Redis (${(err as Error).message}); it may not be queued: retry, with an Idempotency-Key to avoid duplicates`,
        );
      }
      if (result.outcome === 'conflict') {
        throw new ApiError('idempotency_key_reused', 'Idempotency-Key was already used with a different request body', [
          { field: 'Idempotency-Key', message: 'already used with a different request body' },
        ], { task_id: result.id });
      }
      if (result.outcome === 'existing') {
        const current = await queue.get(result.id);
        reply.header('idempotent-replayed', 'true');
        return reply.code(202).send({ task_id: result.id, status: current?.status ?? 'queued', priority: Number(current?.priority ?? priority) });
      }
      const runAtMs = startOfQueued(task, result.createdAtMs);
      const status = runAtMs === null ? 'queued' : 'scheduled';
      request.log.info({ task: result.id, type: task.type, priority }, `task ${result.id} ${status}`);
      const notification = queuedNotification(result.id, task, request.id, runAtMs);
      if (notification) {
        // The task is safely queued whatever happens here: a lost `queued` message is logged, not an error.
        await submit.enqueueOne(notification).catch((err: unknown) => request.log.warn({ err, task: result.id }, 'queued notification not enqueued'));
      }
      return reply.code(202).send({ task_id: result.id, status, priority });
    },
  );

  app.get('/tasks/:id', { onRequest: app.apiAuth, schema: { params: taskParamsSchema } }, async (request) => {
    const hash = await queue.get(request.params.id);
    if (!hash) {
      const later = options.backendName === 'redis' ? '' : ` (with QUEUE_BACKEND=${options.backendName} a task shows here once it has finished)`;
      throw new ApiError('not_found', `task ${request.params.id} does not exist (or has expired)${later}`);
    }
    return taskView(hash);
  });

  app.delete('/tasks/:id', { onRequest: app.apiAuth, schema: { params: taskParamsSchema } }, async (request) => {
    const { id } = request.params;
    if (options.backendName !== 'redis') throw new BackendUnsupportedError(`canceling a task needs QUEUE_BACKEND=redis (this logic runs ${options.backendName})`);
    const outcome = await queue.cancel(id);
    if (outcome === null) throw new ApiError('not_found', `task ${id} does not exist (or has expired)`);
    if (!outcome.canceled) {
      throw new ApiError('not_cancelable', `task ${id} is ${outcome.status}; only queued or scheduled tasks can be canceled`, undefined, {
        status: outcome.status,
      });
    }
    return { task_id: id, status: 'canceled' };
  });
};
