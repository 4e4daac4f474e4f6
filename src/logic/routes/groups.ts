// PUT /groups/:name, GET /groups, DELETE /groups/:name: per-group limits (src/queue/groups.ts).
// Groups need the Redis engine: BullMQ has groups only in its Pro edition, Kafka none.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { BackendUnsupportedError, type BackendName } from '../../queue/backend.ts';
import { Groups, type GroupLimits } from '../../queue/groups.ts';
import type { TaskQueue } from '../../queue/task-queue.ts';
import { ApiError } from '../errors.ts';
import { identifier } from '../schemas.ts';

export interface GroupRoutesOptions {
  queue: TaskQueue;
  backendName: BackendName;
}

/** The 400 for `group` on a backend without groups. */
export function groupNeedsRedis(backend: BackendName): ApiError {
  const message = `group needs QUEUE_BACKEND=redis (this logic runs ${backend}, which has no groups)`;
  return new ApiError('validation_failed', message, [{ field: 'group', message }]);
}

const whole = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a whole number from ${min} to ${max}` })
    .int({ error: `${what} must be a whole number from ${min} to ${max}` })
    .min(min, { error: `${what} must be a whole number from ${min} to ${max}` })
    .max(max, { error: `${what} must be a whole number from ${min} to ${max}` });

/** The most starts a rate window may allow: the group's sliding log holds up to this many entries. */
export const MAX_RATE_STARTS = 100_000;

export const groupParamsSchema = z.object({ name: identifier('name') });

export const groupLimitsSchema = z
  .strictObject({
    concurrency: whole('concurrency', 1, 1_000_000).optional(),
    rate: z
      .strictObject(
        // The sliding log keeps one entry per start in the window: `max` bounds its memory.
        { max: whole('rate.max', 1, MAX_RATE_STARTS), per_ms: whole('rate.per_ms', 1, 86_400_000) },
        { error: 'rate must be an object {"max":N,"per_ms":M}' },
      )
      .optional(),
  }, { error: 'the body must be a JSON object {"concurrency"?:N,"rate"?:{"max":N,"per_ms":M}}' })
  .refine((l) => l.concurrency !== undefined || l.rate !== undefined, { message: 'give concurrency, rate or both (DELETE /groups/:name removes the limits)', path: ['concurrency'] });

const groupSchema = z.object({
  name: z.string(),
  limits: z.object({ concurrency: z.number().int().optional(), rate: z.object({ max: z.number().int(), per_ms: z.number().int() }).optional() }).nullable(),
  waiting: z.number().int(),
  running: z.number().int(),
  blocked: z.boolean(),
});

export const groupRoutes: FastifyPluginAsyncZod<GroupRoutesOptions> = async (app, options) => {
  const groups = new Groups(options.queue.redis, options.queue.keys);
  const needsRedis = () => {
    if (options.backendName !== 'redis') throw new BackendUnsupportedError(`groups need QUEUE_BACKEND=redis (this logic runs ${options.backendName}, which has no groups)`);
  };

  app.put(
    '/groups/:name',
    {
      onRequest: app.apiAuth,
      schema: {
        description: 'Set the limits of a group: at most `concurrency` of its tasks running at once (all job processes together), at most `rate.max` starts in any window of `rate.per_ms` ms. Either or both.',
        params: groupParamsSchema,
        body: groupLimitsSchema,
        response: { 200: z.object({ name: z.string(), limits: groupSchema.shape.limits, created: z.boolean() }) },
      },
    },
    async (request) => {
      needsRedis();
      const limits: GroupLimits = {
        ...(request.body.concurrency !== undefined ? { concurrency: request.body.concurrency } : {}),
        ...(request.body.rate ? { rate: request.body.rate } : {}),
      };
      const had = await groups.setLimits(request.params.name, limits);
      return { name: request.params.name, limits, created: !had };
    },
  );

  app.get(
    '/groups',
    {
      onRequest: app.apiAuth,
      schema: {
        description: 'Every group with limits or with tasks waiting or running: its limits, waiting and running counts, and whether it is blocked at its concurrency limit.',
        response: { 200: z.object({ groups: z.array(groupSchema) }) },
      },
    },
    async () => {
      needsRedis();
      return { groups: await groups.list() };
    },
  );

  app.delete(
    '/groups/:name',
    { onRequest: app.apiAuth, schema: { description: 'Remove the limits of a group (its tasks keep their fair share).', params: groupParamsSchema } },
    async (request) => {
      needsRedis();
      if (!(await groups.removeLimits(request.params.name))) throw new ApiError('not_found', `group ${request.params.name} has no limits`);
      return { name: request.params.name, limits: null };
    },
  );
};
