// POST /schedules, GET /schedules, DELETE /schedules/:name: recurring tasks (src/schedule/).
// The job processes fire them; logic only keeps the definitions and their next runs in Redis.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { BackendUnsupportedError, type BackendName } from '../../queue/backend.ts';
import type { TaskQueue } from '../../queue/task-queue.ts';
import { scheduleBodySchema, scheduleParamsSchema } from '../../schedule/schema.ts';
import { scheduleView, ScheduleStore } from '../../schedule/store.ts';
import { ApiError } from '../errors.ts';

export interface ScheduleRoutesOptions {
  queue: TaskQueue;
  backendName: BackendName;
  taskTypes: readonly string[];
}

export const scheduleRoutes: FastifyPluginAsyncZod<ScheduleRoutesOptions> = async (app, options) => {
  const store = new ScheduleStore(options.queue.redis, options.queue.keys);
  const bodySchema = scheduleBodySchema(options.taskTypes);

  app.post(
    '/schedules',
    { onRequest: app.apiAuth, schema: { body: bodySchema, description: 'Add or replace a recurring schedule: cron (+ tz) or every_ms, and the task (a POST /generate body) each tick enqueues. 201 when new, 200 when replaced.' } },
    async (request, reply) => {
      if (options.backendName !== 'redis') throw new BackendUnsupportedError(`schedules need QUEUE_BACKEND=redis (this logic runs ${options.backendName})`);
      const { cron, tz, every_ms, ...rest } = request.body;
      const { created, entry } = await store.put({
        ...rest,
        ...(cron !== undefined ? { cron, ...(tz !== undefined ? { tz } : {}) } : { every_ms: every_ms! }),
        task: rest.task as Record<string, unknown>,
      });
      request.log.info({ schedule: rest.name }, `schedule ${rest.name} ${created ? 'added' : 'replaced'}`);
      return reply.code(created ? 201 : 200).send(scheduleView(entry));
    },
  );

  app.get('/schedules', { onRequest: app.apiAuth, schema: { description: 'Every recurring schedule with its next run time.' } }, async () => {
    return { schedules: (await store.list()).map(scheduleView) };
  });

  app.delete('/schedules/:name', { onRequest: app.apiAuth, schema: { params: scheduleParamsSchema, description: 'Remove a schedule: no further ticks fire.' } }, async (request) => {
    const { name } = request.params;
    if (!(await store.remove(name))) throw new ApiError('not_found', `schedule ${name} does not exist`);
    return { name, deleted: true };
  });
};
