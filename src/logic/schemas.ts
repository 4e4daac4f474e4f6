// Request and response shapes of the task API, as zod schemas (validation and, later, OpenAPI).
import { z } from 'zod';
import { TASK_ID_PATTERN } from '../queue/keys.ts';
import { MAX_TIMEOUT_MS } from '../queue/task.ts';
import { checkTargetUrl } from '../net/ssrf.ts';
import { displayNameProblem, identifierProblem } from '../routing/ids.ts';
import { RESERVED_MESSAGE_FIELDS } from '../contract/push-message.ts';

const httpUrl = (what: string) =>
  z
    .string()
    .max(2048, { message: `${what} must be at most 2048 characters` })
    .superRefine((value, ctx) => {
      const checked = checkTargetUrl(value);
      if (!checked.ok) ctx.addIssue({ code: 'custom', message: `${what} ${checked.reason}` });
    });

/**
 * A user, room or similar id: a string, or a whole number taken as its string. The rule itself
 * is src/routing/ids.ts, shared with token claims and gRPC; messages name the field and limit.
 */
export const identifier = (what: string) =>
  z
    .union([z.string(), z.number().int()], {
      error: (issue) => (issue.input === undefined ? `${what} is required` : `${what} must be a string or a whole number`),
    })
    .transform(String)
    .superRefine((value, ctx) => {
      const problem = identifierProblem(value, what);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

/** A name shown to others (userName): optional free text, bounded and printable. */
export const displayName = (what: string) =>
  z.string({ error: `${what} must be a string` }).superRefine((value, ctx) => {
    const problem = displayNameProblem(value, what);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * Message fields the pipeline owns (DESIGN §4): the job sets `id` (and a room message's `seq`)
 * on every delivered message, so a caller's own are refused rather than silently replaced.
 * Defined by the push contract (src/contract/push-message.ts).
 */
export { RESERVED_MESSAGE_FIELDS };

/** A JSON object delivered to clients as the message; `what` names it in errors. */
export const clientMessage = (what: string) =>
  z.record(z.string(), z.unknown(), { error: `${what} must be a JSON object` }).superRefine((value, ctx) => {
    for (const field of RESERVED_MESSAGE_FIELDS) {
      if (Object.hasOwn(value, field)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${what}.${field} is reserved: the pipeline sets the message's ${field}; send yours under another name` });
      }
    }
  });

const PRIORITY_MESSAGE = 'priority must be a whole number from 1 to 5';
export const prioritySchema = z
  .number({ message: PRIORITY_MESSAGE })
  .int({ message: PRIORITY_MESSAGE })
  .min(1, { message: PRIORITY_MESSAGE })
  .max(5, { message: PRIORITY_MESSAGE })
  .optional();

const TIMEOUT_MESSAGE = `timeout_ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`;
/** A run longer than this is aborted and counts as a failure (src/job/timeouts.ts). */
export const timeoutMsSchema = z
  .number({ message: TIMEOUT_MESSAGE })
  .int({ message: TIMEOUT_MESSAGE })
  .min(1, { message: TIMEOUT_MESSAGE })
  .max(MAX_TIMEOUT_MS, { message: TIMEOUT_MESSAGE })
  .optional();
/** The furthest ahead a delayed task may start (delay_ms, run_at): a year. */
export const MAX_START_AHEAD_MS = 365 * 24 * 3600 * 1000;
const DELAY_MESSAGE = `delay_ms must be a whole number of milliseconds from 0 to ${MAX_START_AHEAD_MS} (a year)`;
export const delayMsSchema = z.number({ message: DELAY_MESSAGE }).int({ message: DELAY_MESSAGE }).min(0, { message: DELAY_MESSAGE }).max(MAX_START_AHEAD_MS, { message: DELAY_MESSAGE });
const RUN_AT_MESSAGE = 'run_at must be an ISO 8601 date-time with a time zone offset, like 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00';
export const runAtSchema = z.iso.datetime({ offset: true, message: RUN_AT_MESSAGE }).superRefine((value, ctx) => {
  if (Date.parse(value) - Date.now() > MAX_START_AHEAD_MS) ctx.addIssue({ code: 'custom', message: 'run_at must be at most a year ahead' });
});

export function generateBodySchema(types: readonly string[]) {
  return z
    .strictObject({
      type: z
        .string()
        .refine((t) => types.includes(t), { message: `type must be one of: ${types.join(', ')}` })
        .optional(),
      audio: httpUrl('audio').optional(),
      hook_url: httpUrl('hook_url').optional(),
      priority: prioritySchema,
      payload: z.unknown().optional(),
      user_id: identifier('user_id').optional(),
      room_id: identifier('room_id').optional(),
      timeout_ms: timeoutMsSchema,
      group: identifier('group').optional(),
      delay_ms: delayMsSchema.optional(),
      run_at: runAtSchema.optional(),
    })
    .superRefine((body, ctx) => {
      if (body.delay_ms !== undefined && body.run_at !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'give delay_ms or run_at, not both' });
      }
      if (!body.type && !body.audio) {
        ctx.addIssue({ code: 'custom', path: ['type'], message: 'type is required unless audio is given' });
      }
      if (body.type === 'push') {
        // A push is delivered to exactly one address: a room or a user.
        if (!body.room_id && !body.user_id) ctx.addIssue({ code: 'custom', path: ['room_id'], message: 'a push needs room_id or user_id' });
        if (body.room_id && body.user_id) ctx.addIssue({ code: 'custom', path: ['user_id'], message: 'a push goes to room_id or to user_id, not both' });
        if (!body.payload || typeof body.payload !== 'object' || Array.isArray(body.payload)) {
          ctx.addIssue({ code: 'custom', path: ['payload'], message: 'a push needs payload: a JSON object, delivered as the message' });
        } else {
          for (const field of RESERVED_MESSAGE_FIELDS) {
            if (Object.hasOwn(body.payload, field)) {
              ctx.addIssue({ code: 'custom', path: ['payload', field], message: `payload.${field} is reserved: the pipeline sets a push message's ${field}; send yours under another name` });
            }
          }
        }
      }
      if (body.type === 'audio' && !body.audio) {
        ctx.addIssue({ code: 'custom', path: ['audio'], message: 'audio (an http or https URL) is required for type audio' });
      }
    });
}

export type GenerateBody = z.infer<ReturnType<typeof generateBodySchema>>;

export const taskParamsSchema = z.object({
  id: z.string().regex(TASK_ID_PATTERN, { message: 'id must be a task id: 12 or more digits, after its shard and a dash on a sharded queue (000000000017 or 2-000000000017)' }),
});

export const idempotencyHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .min(1, { message: 'Idempotency-Key must not be empty' })
    .max(255, { message: 'Idempotency-Key must be at most 255 characters' })
    .regex(/^[\x21-\x7e]+$/, { message: 'Idempotency-Key may only contain visible ASCII characters' })
    .optional(),
});

export const acceptedSchema = z.object({
  task_id: z.string(),
  status: z.string(),
  priority: z.number().int(),
});

/**
 * The 202 answer of the submit routes, written without a per-request zod pass: the object is
 * built by logic itself (never from caller input), so only the field order and escaping matter.
 * Routes keep `acceptedSchema` as their response schema for the OpenAPI document.
 */
export const acceptedSerializerCompiler = () => (data: unknown) => {
  const a = data as { task_id: string; status: string; priority: number };
  return `{"task_id":${JSON.stringify(a.task_id)},"status":${JSON.stringify(a.status)},"priority":${JSON.stringify(a.priority)}}`;
};
