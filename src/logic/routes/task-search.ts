// GET /tasks?status=&type=&group=&priority=&limit=&cursor= (issue 13 item 6): one page of tasks
// of one status, filtered, with the cursor for the next page (src/queue/task-search.ts).
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { TaskQueue } from '../../queue/task-queue.ts';
import { BadCursorError, SEARCH_MAX_LIMIT, SEARCH_SCAN_BUDGET, SEARCH_STATUSES, STATUS_INDEXES, searchTasks, type SearchStatus } from '../../queue/task-search.ts';
import { ApiError } from '../errors.ts';

export interface TaskSearchRoutesOptions {
  queue: TaskQueue;
}

const STATUS_MESSAGE = `status must be one of: ${SEARCH_STATUSES.join(', ')}`;
const PRIORITY_MESSAGE = 'priority must be a whole number from 1 to 5';
const LIMIT_MESSAGE = `limit must be a whole number from 1 to ${SEARCH_MAX_LIMIT}`;

export const taskSearchQuerySchema = z.strictObject({
  status: z
    .enum(SEARCH_STATUSES as [SearchStatus, ...SearchStatus[]], { message: STATUS_MESSAGE })
    .describe(`which index is walked, and in which order: ${SEARCH_STATUSES.map((s) => `${s}: ${STATUS_INDEXES[s].orderedBy}`).join('; ')}`),
  type: z.string({ message: 'type must be given once' }).regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, { message: 'type must be a task type name (1-64 letters, digits, _ . -)' }).optional(),
  group: z.string({ message: 'group must be given once' }).min(1, { message: 'group must not be empty' }).max(128, { message: 'group must be at most 128 characters' }).optional(),
  priority: z.string({ message: PRIORITY_MESSAGE }).regex(/^[1-5]$/, { message: PRIORITY_MESSAGE }).transform(Number).optional(),
  limit: z
    .string({ message: LIMIT_MESSAGE })
    .regex(/^[0-9]{1,3}$/, { message: LIMIT_MESSAGE })
    .transform(Number)
    .pipe(z.number().min(1, { message: LIMIT_MESSAGE }).max(SEARCH_MAX_LIMIT, { message: LIMIT_MESSAGE }))
    .optional()
    .describe(`tasks per page, 1 to ${SEARCH_MAX_LIMIT} (default 20)`),
  cursor: z.string({ message: 'cursor must be given once' }).max(1024, { message: 'cursor is not one this API returned' }).optional().describe('next_cursor of the previous page'),
});

const summarySchema = z.object({
  task_id: z.string(),
  type: z.string(),
  status: z.string(),
  priority: z.number().int(),
  group: z.string().nullable(),
  attempts: z.number().int(),
  created_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  retry_at: z.string().nullable(),
  error: z.string().nullable(),
  timed_out: z.boolean(),
});

export const taskSearchResponseSchema = z.object({
  tasks: z.array(summarySchema),
  next_cursor: z.string().nullable().describe('null once the index has been walked to its end; a page may hold fewer than limit tasks (even none) and still have one'),
  scanned: z.number().int().describe(`index entries examined for this page (at most ${SEARCH_SCAN_BUDGET}: filters are applied while walking)`),
});

export const taskSearchRoutes: FastifyPluginAsyncZod<TaskSearchRoutesOptions> = async (app, options) => {
  app.get(
    '/tasks',
    { onRequest: app.apiAuth, schema: { querystring: taskSearchQuerySchema, response: { 200: taskSearchResponseSchema } } },
    async (request) => {
      const { status, type, group, priority, limit, cursor } = request.query;
      try {
        return await searchTasks(options.queue, {
          status,
          limit: limit ?? 20,
          ...(type !== undefined ? { type } : {}),
          ...(group !== undefined ? { group } : {}),
          ...(priority !== undefined ? { priority } : {}),
          ...(cursor !== undefined ? { cursor } : {}),
        });
      } catch (err) {
        if (err instanceof BadCursorError) throw new ApiError('validation_failed', err.message, [{ field: 'cursor', message: err.message }]);
        throw err;
      }
    },
  );
};
