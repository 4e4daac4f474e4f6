// Bench phase "groups" (bench/queue.ts --phases=groups, in the default set): completed/s and
// Redis CPU per task when every task belongs to one of G groups (default 100) under a per-group
// limit, next to BullMQ's rate limiter (the Worker `limiter` option). BullMQ OSS has no groups
// (they are a BullMQ Pro feature), so its row is the closest it has: one queue-wide limiter,
// set high enough not to bind, i.e. what the limiter bookkeeping costs per job.
//
// pushline runs twice: 100 groups × `concurrency` (the limit binds: groups × limit < slots, so
// groups are blocked and unblocked all the time), and 100 groups × a rate limit that does not
// bind (the cost of the sliding-window checks alone), against an ungrouped baseline in the same run.
import { Queue, Worker } from 'bullmq';
import { Agent } from 'undici';
import { createRedis, type RedisTarget } from '../../src/redis/connect.ts';
import { Groups, type GroupLimits } from '../../src/queue/groups.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { JobRunner } from '../../src/job/runner.ts';
import { ProcessorRegistry } from '../../src/job/processor.ts';
import { benchRunnerDefaults } from './peers.ts';
import { deferred, fmtInt, fmtRatio, numberSetting, pool, withTimeout } from './util.ts';

export interface GroupsPhaseDeps {
  port: number;
  n: number;
  log: (line: string) => void;
  measure: (n: number, what: string, fn: () => Promise<unknown>) => Promise<{ rate: number; cpuUs: number }>;
  flushall: () => Promise<void>;
  rows: [string, string, string, string][];
  cpuRows: [string, string, string, string][];
  notes: string[];
}

const GROUPS = numberSetting('groups', 100);
const GROUP_CONCURRENCY = numberSetting('group-concurrency', 2);
const CONSUMERS = numberSetting('groups-consumers', 4);
const SLOTS = numberSetting('groups-concurrency', 64);
/** BullMQ limiter and pushline's per-group rate: high enough not to bind (the cost of the check). */
const BULLMQ_LIMIT_PER_S = numberSetting('bullmq-limiter-max', 1_000_000);

async function pushlineDrain(deps: GroupsPhaseDeps, limits: GroupLimits | null, grouped: boolean, what: string) {
  await deps.flushall();
  const target: RedisTarget = { host: '127.0.0.1', port: deps.port, db: 0, password: '' };
  const command = createRedis(target, 'command', 'bench-groups');
  await command.connect();
  const keys = queueKeys();
  const queue = new TaskQueue(command, keys, { retentionSeconds: 7 * 86_400, idempotencyTtlSeconds: 86_400 });
  if (limits) {
    const groups = new Groups(command, keys);
    for (let g = 0; g < GROUPS; g++) await groups.setLimits(`g${g}`, limits);
  }
  await pool(Math.ceil(deps.n / 500), 4, (b) =>
    queue.enqueue(
      Array.from({ length: Math.min(500, deps.n - b * 500) }, (_, k) => ({
        type: 'bench',
        priority: 3,
        payload: '{}',
        ...(grouped ? { group: `g${(b * 500 + k) % GROUPS}` } : {}),
      })),
    ),
  );
  let completed = 0;
  let running = 0;
  let maxRunning = 0;
  const all = deferred();
  const dispatcher = new Agent();
  let runner: JobRunner | null = null;
  const m = await deps.measure(deps.n, what, async () => {
    runner = new JobRunner({
      queue,
      blockingConnection: (i) => createRedis(target, 'blocking', `bench-groups-${i}`),
      registry: new ProcessorRegistry([
        {
          type: 'bench',
          async process() {
            maxRunning = Math.max(maxRunning, ++running);
            await new Promise((resolve) => setImmediate(resolve));
            running--;
            return null;
          },
        },
      ]),
      consumers: CONSUMERS,
      concurrency: SLOTS,
      ...benchRunnerDefaults(dispatcher),
      onSettled: (stage, _task, verdict, applied) => {
        if (stage === 'tasks' && applied && verdict.outcome === 'completed' && ++completed === deps.n) all.resolve();
      },
    });
    await runner.start();
    await withTimeout(all.promise, 300_000, `pushline ${what}`);
  });
  await (runner as JobRunner | null)?.stop();
  await dispatcher.close();
  await command.quit().catch(() => command.disconnect());
  deps.log(`  pushline, ${what}: ${fmtInt(m.rate)}/s (${m.cpuUs.toFixed(1)} µs Redis CPU/task; at most ${maxRunning} running at once in the process)`);
  return m;
}

async function bullmqDrain(deps: GroupsPhaseDeps, what: string) {
  await deps.flushall();
  const connection = { host: '127.0.0.1', port: deps.port, protocol: 2 as const, maxRetriesPerRequest: null };
  const queue = new Queue('bench', { connection });
  await queue.waitUntilReady();
  await pool(Math.ceil(deps.n / 500), 4, (b) =>
    queue.addBulk(Array.from({ length: Math.min(500, deps.n - b * 500) }, (_, k) => ({ name: 'bench', data: { i: b * 500 + k }, opts: { priority: 3 } }))),
  );
  let completed = 0;
  const all = deferred();
  const workers: Worker[] = [];
  const m = await deps.measure(deps.n, what, async () => {
    for (let k = 0; k < 2; k++) {
      const worker = new Worker('bench', async () => null, { connection, concurrency: 200, limiter: { max: BULLMQ_LIMIT_PER_S, duration: 1000 } });
      worker.on('completed', () => {
        if (++completed === deps.n) all.resolve();
      });
      worker.on('error', (err) => console.error(`[bench] BullMQ worker error: ${String(err)}`));
      workers.push(worker);
    }
    await withTimeout(all.promise, 300_000, `BullMQ ${what}`);
  });
  await Promise.all(workers.map((w) => w.close()));
  await queue.close();
  deps.log(`  BullMQ, ${what}: ${fmtInt(m.rate)}/s (${m.cpuUs.toFixed(1)} µs Redis CPU/task)`);
  return m;
}

export async function phaseGroups(deps: GroupsPhaseDeps): Promise<void> {
  deps.log(
    `\n## 5. groups — N=${deps.n} pre-filled (not timed), priority 3, spread over ${GROUPS} groups; pushline ${CONSUMERS} consumers × ${SLOTS}; ` +
      `BullMQ 2 Workers × 200 with limiter {max: ${BULLMQ_LIMIT_PER_S}, duration: 1000} (BullMQ OSS has no groups)`,
  );
  const base = await pushlineDrain(deps, null, false, 'no groups (baseline)');
  const fair = await pushlineDrain(deps, null, true, `${GROUPS} groups, no limits (fair share only)`);
  const conc = await pushlineDrain(deps, { concurrency: GROUP_CONCURRENCY }, true, `${GROUPS} groups × concurrency ${GROUP_CONCURRENCY}`);
  // PUT /groups accepts at most 100,000 starts per window; per group that still does not bind here.
  const perGroup = Math.min(BULLMQ_LIMIT_PER_S, 100_000);
  const rate = await pushlineDrain(deps, { rate: { max: perGroup, per_ms: 1000 } }, true, `${GROUPS} groups × rate ${perGroup}/s (not binding)`);
  const bull = await bullmqDrain(deps, `limiter ${BULLMQ_LIMIT_PER_S}/s (not binding)`);
  await deps.flushall();
  deps.rows.push([`completed/s, ${GROUPS} groups × concurrency ${GROUP_CONCURRENCY} vs BullMQ limiter (↑)`, fmtInt(conc.rate), fmtInt(bull.rate), fmtRatio(conc.rate, bull.rate)]);
  deps.rows.push([`completed/s, ${GROUPS} groups × rate limit vs BullMQ limiter, neither binding (↑)`, fmtInt(rate.rate), fmtInt(bull.rate), fmtRatio(rate.rate, bull.rate)]);
  deps.cpuRows.push([`Redis CPU µs per task, ${GROUPS} groups × concurrency ${GROUP_CONCURRENCY} vs BullMQ limiter (↓)`, conc.cpuUs.toFixed(1), bull.cpuUs.toFixed(1), fmtRatio(conc.cpuUs, bull.cpuUs)]);
  deps.cpuRows.push([`Redis CPU µs per task, ${GROUPS} groups × rate limit vs BullMQ limiter (↓)`, rate.cpuUs.toFixed(1), bull.cpuUs.toFixed(1), fmtRatio(rate.cpuUs, bull.cpuUs)]);
  deps.notes.push(
    `groups, pushline alone: no groups ${fmtInt(base.rate)}/s (${base.cpuUs.toFixed(1)} µs/task); ${GROUPS} groups without limits ${fmtInt(fair.rate)}/s (${fair.cpuUs.toFixed(1)} µs/task); ` +
      `× concurrency ${GROUP_CONCURRENCY} ${fmtInt(conc.rate)}/s (${conc.cpuUs.toFixed(1)} µs/task); × rate ${fmtInt(rate.rate)}/s (${rate.cpuUs.toFixed(1)} µs/task)`,
  );
}
