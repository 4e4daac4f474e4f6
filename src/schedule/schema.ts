// The body of POST /schedules (and `pushline schedule add`): one zod schema, so the API and the
// CLI refuse the same things with the same messages, each naming its field.
import { z } from 'zod';
import { generateBodySchema } from '../logic/schemas.ts';
import { cadenceProblem } from './ticks.ts';

export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
/** Shortest every_ms: a schedule faster than this is a busy loop, not a schedule. */
export const MIN_EVERY_MS = 100;
export const MAX_EVERY_MS = 365 * 24 * 3600 * 1000;
export const MAX_CATCH_UP = 1000;

const EVERY_MESSAGE = `every_ms must be a whole number of milliseconds from ${MIN_EVERY_MS} to ${MAX_EVERY_MS}`;
const CATCH_UP_MAX_MESSAGE = `catch_up_max must be a whole number from 1 to ${MAX_CATCH_UP}`;

export const scheduleNameSchema = z
  .string({ message: 'name must be a string' })
  .regex(SCHEDULE_NAME_PATTERN, { message: 'name must be 1 to 100 letters, digits and _ . : -, starting with a letter or digit' });

export function scheduleBodySchema(types: readonly string[]) {
  return z
    .strictObject({
      name: scheduleNameSchema,
      cron: z.string({ message: 'cron must be a string: a cron expression like "*/5 * * * *"' }).max(200, { message: 'cron must be at most 200 characters' }).optional(),
      tz: z.string({ message: 'tz must be a string: an IANA time zone' }).max(100, { message: 'tz must be at most 100 characters' }).optional(),
      every_ms: z.number({ message: EVERY_MESSAGE }).int({ message: EVERY_MESSAGE }).min(MIN_EVERY_MS, { message: EVERY_MESSAGE }).max(MAX_EVERY_MS, { message: EVERY_MESSAGE }).optional(),
      task: generateBodySchema(types),
      catch_up: z.enum(['latest', 'none', 'all'], { message: 'catch_up must be "latest", "none" or "all"' }).default('latest'),
      catch_up_max: z.number({ message: CATCH_UP_MAX_MESSAGE }).int({ message: CATCH_UP_MAX_MESSAGE }).min(1, { message: CATCH_UP_MAX_MESSAGE }).max(MAX_CATCH_UP, { message: CATCH_UP_MAX_MESSAGE }).default(100),
    }, { error: 'the body must be a JSON object' })
    .superRefine((body, ctx) => {
      if ((body.cron === undefined) === (body.every_ms === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give either cron (with an optional tz) or every_ms' });
      }
      if (body.tz !== undefined && body.cron === undefined) ctx.addIssue({ code: 'custom', path: ['tz'], message: 'tz goes with cron' });
      if (body.cron !== undefined) {
        const problem = cadenceProblem(body.cron, body.tz);
        if (problem) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
      }
      // Each tick's task starts at its tick (a delay_ms after it is fine); a fixed date makes no sense here.
      if (body.task.run_at !== undefined) ctx.addIssue({ code: 'custom', path: ['task', 'run_at'], message: 'a schedule\'s task cannot have run_at: the schedule says when it runs (delay_ms is allowed)' });
    });
}

export type ScheduleBody = z.infer<ReturnType<typeof scheduleBodySchema>>;

export const scheduleParamsSchema = z.object({ name: scheduleNameSchema });
