// `pushline schedule list|add|rm`: recurring schedules straight in Redis (like `queue status`),
// checked by the same schema as POST /schedules, so the CLI refuses what the API refuses.
import type { Env } from '../config/schema.ts';
import type { TaskQueue } from '../queue/task-queue.ts';
import { scheduleBodySchema } from '../schedule/schema.ts';
import { scheduleView, ScheduleStore } from '../schedule/store.ts';
import { table } from './format.ts';

export interface AddOptions {
  cron?: string;
  tz?: string;
  everyMs?: number;
  task: string;
  catchUp?: string;
  catchUpMax?: number;
}

/** The task types logic accepts (built-in and JOB_PROCESSORS), so a schedule's task is one a job can run. */
async function taskTypes(env: Env): Promise<string[]> {
  const { LOGIC_TASK_TYPES } = await import('../logic/main.ts');
  const { loadCustomProcessors } = await import('../job/custom-processors.ts');
  return [...LOGIC_TASK_TYPES, ...(await loadCustomProcessors(env.JOB_PROCESSORS, LOGIC_TASK_TYPES)).map((p) => p.type)];
}

/** Adds or replaces; returns the lines to print, or throws an Error whose message names the fields. */
export async function addSchedule(queue: TaskQueue, env: Env, name: string, opts: AddOptions): Promise<string> {
  let task: unknown;
  try {
    task = JSON.parse(opts.task);
  } catch (err) {
    throw new Error(`--task must be a JSON object (a POST /generate body): ${(err as Error).message}`);
  }
  const body = {
    name,
    task,
    ...(opts.cron !== undefined ? { cron: opts.cron } : {}),
    ...(opts.tz !== undefined ? { tz: opts.tz } : {}),
    ...(opts.everyMs !== undefined ? { every_ms: opts.everyMs } : {}),
    ...(opts.catchUp !== undefined ? { catch_up: opts.catchUp } : {}),
    ...(opts.catchUpMax !== undefined ? { catch_up_max: opts.catchUpMax } : {}),
  };
  const parsed = scheduleBodySchema(await taskTypes(env)).safeParse(body);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'schedule'}: ${i.message}`).join('\n'));
  }
  const { cron, tz, every_ms, ...rest } = parsed.data;
  const { created, entry } = await new ScheduleStore(queue.redis, queue.keys).put({
    ...rest,
    ...(cron !== undefined ? { cron, ...(tz !== undefined ? { tz } : {}) } : { every_ms: every_ms! }),
    task: rest.task as Record<string, unknown>,
  });
  return `schedule ${name} ${created ? 'added' : 'replaced'}; next run ${scheduleView(entry).next_run_at}`;
}

export async function listSchedules(queue: TaskQueue, json: boolean): Promise<string> {
  const views = (await new ScheduleStore(queue.redis, queue.keys).list()).map(scheduleView);
  if (json) return JSON.stringify(views, null, 2);
  if (views.length === 0) return `no schedules (HGETALL ${queue.keys.schedules} is empty)`;
  return [
    table([
      ['name', 'when', 'catch-up', 'next run', 'task'],
      ...views.map((v) => [v.name, 'cron' in v ? `cron "${v.cron}" ${v.tz}` : `every ${v.every_ms} ms`, v.catch_up, v.next_run_at ?? '-', JSON.stringify(v.task)]),
    ]),
    `(definitions: HGETALL ${queue.keys.schedules}; next runs: ZRANGE ${queue.keys.scheduleRuns} 0 -1 WITHSCORES)`,
  ].join('\n');
}

export async function removeSchedule(queue: TaskQueue, name: string): Promise<boolean> {
  return new ScheduleStore(queue.redis, queue.keys).remove(name);
}
