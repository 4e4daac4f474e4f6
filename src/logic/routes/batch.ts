// POST /generate/batch (issue 13 item 5): up to BATCH_MAX tasks in one request. Each item is
// checked by the very schema POST /generate uses (so any field /generate learns, batch learns
// too) and turned into a task the same way; all valid items go to Redis in one enqueue script
// call (one per shard on a sharded queue). The answer lists every item, in order, with its task
// id or its validation errors: 202 when all were accepted, 207 when any was rejected.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { EnqueueResult, NewTask, TaskQueue } from '../../queue/task-queue.ts';
import { BackendUnsupportedError } from '../../queue/backend.ts';
import { NotReplicatedError } from '../../queue/replication-wait.ts';
import { ApiError, type FieldError } from '../errors.ts';
import { generateBodySchema } from '../schemas.ts';
import { groupNeedsRedis } from './groups.ts';
import { assertStartSupported, fingerprint, queuedNotification, startOfQueued, toNewTask, type TaskRoutesOptions } from './tasks.ts';

/** /generate's own options (the same queue, backend and validation), plus the batch bound. */
export interface BatchRoutesOptions extends TaskRoutesOptions {
  /** BATCH_MAX: the most tasks one request may carry. */
  batchMax: number;
}

/** An item's own Idempotency-Key (the header's rule; a batch has one header for many tasks). */
const itemIdempotencyKey = z
  .string({ message: 'idempotency_key must be a string' })
  .min(1, { message: 'idempotency_key must not be empty' })
  .max(255, { message: 'idempotency_key must be at most 255 characters' })
  .regex(/^[\x21-\x7e]+$/, { message: 'idempotency_key may only contain visible ASCII characters' });

const acceptedItem = z.object({
  index: z.number().int(),
  task_id: z.string(),
  status: z.string(),
  priority: z.number().int(),
  replayed: z.boolean().optional(),
});
const rejectedItem = z.object({
  index: z.number().int(),
  error: z.enum(['validation_failed', 'idempotency_key_reused']),
  message: z.string(),
  fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  task_id: z.string().optional(),
});
export const batchResponseSchema = z.object({
  accepted: z.number().int().describe('items queued (or replayed by their idempotency_key)'),
  rejected: z.number().int().describe('items refused: each says why'),
  tasks: z.array(z.union([acceptedItem, rejectedItem])).describe('one entry per item, in the order sent'),
});
type BatchItemAnswer = z.infer<typeof acceptedItem> | z.infer<typeof rejectedItem>;

/** Zod issues of one item as the API's field errors (the names /generate uses). */
function itemFieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: path ? `${path}.${key}` : key, message: `${key} is not a known field` }));
    }
    if (!path && issue.code === 'invalid_type') return [{ field: 'task', message: 'each task must be a JSON object' }];
    return [{ field: path || 'task', message: issue.message }];
  });
}

function rejected(index: number, fields: FieldError[]): BatchItemAnswer {
  const message = fields.map((f) => (f.message.startsWith(f.field) ? f.message : `${f.field}: ${f.message}`)).join('; ');
  return { index, error: 'validation_failed', message, fields };
}

export const batchRoutes: FastifyPluginAsyncZod<BatchRoutesOptions> = async (app, options) => {
  const { queue, submit, batchMax } = options;
  const itemSchema = generateBodySchema(options.taskTypes);
  const bodySchema = z.strictObject({
    tasks: z
      .array(z.unknown(), { message: 'tasks must be an array of tasks' })
      .min(1, { message: 'tasks must hold at least one task' })
      .max(batchMax, { message: `tasks holds at most ${batchMax} tasks per request (BATCH_MAX)` })
      .describe(`1 to ${batchMax} (BATCH_MAX) tasks, each the body of POST /generate, plus an optional idempotency_key`),
  });

  /** All tasks in one script call per shard on the Redis engine; one call each on another backend. */
  const enqueueAll = (tasks: NewTask[]): Promise<EnqueueResult[]> =>
    options.backendName === 'redis' ? queue.enqueue(tasks) : Promise.all(tasks.map((t) => submit.enqueueOne(t)));

  app.post(
    '/generate/batch',
    { onRequest: app.apiAuth, schema: { body: bodySchema, response: { 202: batchResponseSchema, 207: batchResponseSchema } } },
    async (request, reply) => {
      const answers: BatchItemAnswer[] = new Array(request.body.tasks.length);
      const valid: { index: number; task: NewTask }[] = [];
      request.body.tasks.forEach((item, index) => {
        let key: string | undefined;
        let body = item;
        if (item && typeof item === 'object' && !Array.isArray(item) && Object.hasOwn(item, 'idempotency_key')) {
          const { idempotency_key: given, ...rest } = item as Record<string, unknown>;
          const checked = itemIdempotencyKey.safeParse(given);
          if (!checked.success) return void (answers[index] = rejected(index, [{ field: 'idempotency_key', message: checked.error.issues[0]!.message }]));
          key = checked.data;
          body = rest;
        }
        const parsed = itemSchema.safeParse(body);
        if (!parsed.success) return void (answers[index] = rejected(index, itemFieldErrors(parsed.error.issues)));
        // As /generate: a group is a field error on a backend without groups.
        if (parsed.data.group !== undefined && options.backendName !== 'redis') return void (answers[index] = rejected(index, groupNeedsRedis(options.backendName).fields!));
        const task = toNewTask(parsed.data, parsed.data.priority ?? options.defaultPriority, request.id, options.keys);
        if (key) task.idempotency = { key, fingerprint: fingerprint(body) };
        valid.push({ index, task });
      });

      let results: EnqueueResult[] = [];
      if (valid.length > 0) {
        if (options.backendName !== 'redis' && valid.some((v) => v.task.idempotency)) {
          throw new BackendUnsupportedError(`idempotency_key needs QUEUE_BACKEND=redis (this logic runs ${options.backendName})`);
        }
        for (const v of valid) assertStartSupported(v.task, options.backendName);
        try {
          results = await enqueueAll(valid.map((v) => v.task));
        } catch (err) {
          if (err instanceof BackendUnsupportedError) throw err;
          if (err instanceof NotReplicatedError) {
            request.log.warn({ err: err.message }, 'batch enqueue not confirmed by replicas');
            throw new ApiError('not_replicated', `the tasks were written but not confirmed by replicas (${err.message}); they may exist: retry with the same idempotency_key per task`);
          }
          request.log.error({ err }, 'batch enqueue failed');
          throw new ApiError('queue_unavailable', `could not write the tasks to Redis (${(err as Error).message}); they may not be queued: retry, with an idempotency_key per task to avoid duplicates`);
        }
      }

      const replayed: number[] = [];
      const notifications: NewTask[] = [];
      valid.forEach(({ index, task }, i) => {
        const result = results[i]!;
        if (result.outcome === 'conflict') {
          answers[index] = { index, error: 'idempotency_key_reused', message: 'idempotency_key was already used with a different task body', task_id: result.id };
          return;
        }
        // A delayed item waits as `scheduled`, as /generate answers.
        const runAtMs = startOfQueued(task, result.createdAtMs);
        answers[index] = { index, task_id: result.id, status: runAtMs === null ? 'queued' : 'scheduled', priority: task.priority };
        if (result.outcome === 'existing') replayed.push(index);
        else {
          const notification = queuedNotification(result.id, task, request.id, runAtMs);
          if (notification) notifications.push(notification);
        }
      });
      // A replayed item answers with its task's current status, as POST /generate does.
      if (replayed.length > 0) {
        const hashes = await Promise.all(replayed.map((index) => queue.get((answers[index] as { task_id: string }).task_id)));
        replayed.forEach((index, j) => {
          const a = answers[index] as z.infer<typeof acceptedItem>;
          answers[index] = { ...a, status: hashes[j]?.status ?? 'queued', priority: Number(hashes[j]?.priority ?? a.priority), replayed: true };
        });
      }
      // The tasks are safely queued whatever happens here: lost `queued` messages are logged, not an error.
      if (notifications.length > 0) await enqueueAll(notifications).catch((err: unknown) => request.log.warn({ err }, 'queued notifications not enqueued'));

      const accepted = answers.filter((a) => 'task_id' in a && !('error' in a)).length;
      const refused = answers.length - accepted;
      request.log.info({ accepted, rejected: refused }, `batch: ${accepted} tasks queued, ${refused} rejected`);
      return reply.code(refused === 0 ? 202 : 207).send({ accepted, rejected: refused, tasks: answers });
    },
  );
};
