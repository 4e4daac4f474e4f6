// The `pushline` command: one sub-command per process, the local stack, and inspection tools.
import { Command, InvalidArgumentError } from 'commander';
import type { Env } from '../config/schema.ts';
import type { TaskQueue } from '../queue/task-queue.ts';
import type * as Runtime from './runtime.ts';
import { PACKAGE_VERSION } from '../version.ts';

/** Loaded by the preAction hook below, before any command's action runs (not for --help/--version). */
let runtime: typeof Runtime;

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/**
 * Env from .env and the environment, with command-line flags taking precedence. `findStack`:
 * a tool that inspects "the" Redis follows a running `pushline start` (.pushline/env) unless the
 * environment names a Redis itself.
 */
function env(overrides: Record<string, string | number | undefined> = {}, findStack = false): Env {
  const raw = findStack ? runtime.withLocalStack(runtime.readEnvironment()) : runtime.readEnvironment();
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) raw[k] = String(v);
  try {
    return runtime.loadEnv(raw);
  } catch (err) {
    return runtime.exitOnConfigError(err);
  }
}

function logger(e: Env, name: string) {
  return runtime.createLogger({ name, level: e.LOG_LEVEL, pretty: e.LOG_PRETTY, colour: runtime.useColour(e) });
}

const program = new Command('pushline')
  .description('Real-time push and task pipeline on Redis: logic (HTTP API), job (workers), local stack and tools.')
  .showHelpAfterError()
  .version(PACKAGE_VERSION, '-V, --version', 'print the version of pushline')
  .hook('preAction', async () => {
    runtime = await import('./runtime.ts');
  });

/** `8082:50051,8083:50052`: WebSocket and gRPC port of each comet. */
function cometPortsOption(value: string) {
  const comets = value.split(',').map((pair) => {
    const m = /^(\d+):(\d+)$/.exec(pair.trim());
    const ws = Number(m?.[1]);
    const grpc = Number(m?.[2]);
    if (!m || ws > 65535 || grpc > 65535) throw new InvalidArgumentError(`--comet-ports takes ws:grpc pairs separated by commas, like 8082:50051,8083:50052 (0 = any free port); got "${pair}"`);
    return { ws, grpc };
  });
  if (comets.length > 16) throw new InvalidArgumentError('--comet-ports: at most 16 comets');
  return comets;
}

program
  .command('start')
  .description(
    'run the whole local stack on loopback: redis-server (when none is configured), two comets, logic and job, in dev mode;\n' +
      'a taken port is replaced by a free one, and the banner and <data-dir>/env say which ones were used',
  )
  .option('--port <port>', 'logic HTTP port (0 = any free port)', intOption('--port', 0, 65535), 8090)
  .option('--redis-port <port>', "port of the stack's own redis-server (0 = any free port)", intOption('--redis-port', 0, 65535), 6379)
  .option('--comet-ports <ws:grpc,...>', 'WebSocket:gRPC ports of each comet (0 = any free port) (default: "8082:50051,8083:50052")', cometPortsOption)
  .option('--job-metrics-port <port>', "job's /metrics port (env JOB_METRICS_PORT, default 9464; 0 = any free port)", intOption('--job-metrics-port', 0, 65535))
  .option('--data-dir <dir>', 'where the local redis-server keeps its AOF and the stack writes env (env PUSHLINE_STATE_DIR)')
  .option('--cluster', 'run the stack on a local 3-master Redis Cluster on free loopback ports (docs/scaling.md)')
  .action(async (opts: { port: number; redisPort: number; cometPorts?: { ws: number; grpc: number }[]; jobMetricsPort?: number; dataDir?: string; cluster?: boolean }) => {
    const { runLocalStack, DEFAULT_COMET_PORTS } = await import('./local-stack.ts');
    // The cluster is started first and named in the environment, so the stack takes it as its
    // configured Redis and every child gets REDIS_CLUSTER_NODES (src/local/redis-cluster.ts).
    if (opts.cluster) await (await import('../local/redis-cluster.ts')).startLocalCluster(opts.dataDir ?? env({}).PUSHLINE_STATE_DIR);
    const e = env({ LOG_PRETTY: 'true' });
    await runLocalStack({
      env: e,
      log: logger(e, 'start'),
      logicPort: opts.port,
      dataDir: opts.dataDir ?? e.PUSHLINE_STATE_DIR,
      redisPort: opts.redisPort,
      comets: opts.cometPorts ?? DEFAULT_COMET_PORTS,
      jobMetricsPort: opts.jobMetricsPort ?? e.JOB_METRICS_PORT ?? 9464,
    });
  });

/**
 * Runs one long-lived process: config (with flag overrides) → logger → start → stop in order
 * on SIGTERM/SIGINT within `hardLimitMs`. A config error at start exits 2, any other failure to
 * start (Redis unreachable) exits 1 with one line. Once started, the ports it listens on
 * (`ports`) go to `pushline start` when that runs it (src/local/listening-report.ts).
 */
async function serve<H extends { stop(): Promise<void> }>(
  name: string,
  overrides: Record<string, string | number | undefined>,
  start: (e: Env, log: ReturnType<typeof logger>) => Promise<H>,
  ports: (handle: H) => Record<string, number>,
  hardLimitMs: (e: Env) => number = () => 15_000,
): Promise<void> {
  const e = env(overrides);
  const log = logger(e, name);
  // A promise some path forgot to handle is a bug to log, not a reason to drop every client and
  // task this process holds (Node's default is to exit). Thrown exceptions still end the process.
  process.on('unhandledRejection', (reason) => log.error({ err: reason instanceof Error ? reason : String(reason) }, 'unhandled promise rejection (a bug: please report it)'));
  const started = start(e, log);
  // Listening from the first moment: a SIGTERM during start-up (an orchestrator changing its
  // mind) waits for the start to finish, then stops as cleanly as any other time.
  runtime.stopOnSignals(async () => (await started).stop(), log, hardLimitMs(e));
  await started.then((handle) => runtime.reportListening(ports(handle)), (err: unknown) => {
    if (err instanceof Error && err.name === 'ConfigError') runtime.exitOnConfigError(err);
    // Most often Redis is not there yet: one line that says so, not a stack trace, and a
    // non-zero exit a supervisor (systemd, compose, pushline start) restarts on.
    const target = runtime.describeTarget(runtime.redisTarget(e));
    process.stderr.write(`pushline ${name}: could not start: ${err instanceof Error ? err.message : String(err)} (Redis at ${target})\n`);
    process.exit(1);
  });
}

program
  .command('logic')
  .description('run the HTTP API (POST /generate, GET/DELETE /tasks/:id, GET /health)')
  .option('--port <port>', 'listen port (env LOGIC_PORT, default 8090)', intOption('--port', 0, 65535))
  .option('--host <host>', 'listen address (env LOGIC_HOST, default 0.0.0.0)')
  .action(async (opts: { port?: number; host?: string }) => {
    const { startLogic } = await import('../logic/main.ts');
    await serve('logic', { LOGIC_PORT: opts.port, LOGIC_HOST: opts.host }, (e, log) => startLogic(e, log), (logic) => ({ http: logic.port }));
  });

program
  .command('job')
  .description('run task consumers, the webhook sender and the lease reaper')
  .option('--consumers <n>', 'number of consumers (env JOB_CONSUMERS, default 4)', intOption('--consumers', 1, 256))
  .action(async (opts: { consumers?: number }) => {
    const { startJob } = await import('../job/main.ts');
    await serve('job', { JOB_CONSUMERS: opts.consumers }, (e, log) => startJob(e, log), (job) => ({ metrics: job.metricsPort }), (e) => e.JOB_SHUTDOWN_TIMEOUT_MS + 10_000);
  });

program
  .command('comet')
  .description('run a comet node: WebSocket gateway for clients, gRPC server for job')
  .option('--ws-port <port>', 'WebSocket port (env COMET_WS_PORT, default 8082)', intOption('--ws-port', 0, 65535))
  .option('--grpc-port <port>', 'gRPC port (env COMET_GRPC_PORT, default 50051)', intOption('--grpc-port', 0, 65535))
  .action(async (opts: { wsPort?: number; grpcPort?: number }) => {
    const { startComet } = await import('../comet/main.ts');
    await serve('comet', { COMET_WS_PORT: opts.wsPort, COMET_GRPC_PORT: opts.grpcPort }, (e, log) => startComet(e, log), (comet) => ({ ws: comet.wsPort, grpc: comet.grpcPort }));
  });

program
  .command('migrate')
  .description('move work from the old pipeline into Redis')
  .command('kafka-to-redis')
  .description('drain what is left in the old Kafka topic into the Redis queue (offsets committed after the Redis write; safe to re-run)')
  .option('--topic <topic>', 'the old topic (env KAFKA_TASK_TOPIC, default my-topic)')
  .option('--group <group>', 'consumer group whose offsets say what is left (env KAFKA_GROUP_ID, default job-service-group)')
  .option('--bootstrap <servers>', 'host:port[,host:port] (env KAFKA_BOOTSTRAP_SERVERS)')
  .option('--concurrency <n>', 'records written to Redis at once', intOption('--concurrency', 1, 1000), 64)
  .option('--idle-ms <ms>', 'finish once no record came for this long', intOption('--idle-ms', 100, 600_000), 5000)
  .option('--dry-run', 'decode and count, write and commit nothing')
  .action(async (opts: { topic?: string; group?: string; bootstrap?: string; concurrency: number; idleMs: number; dryRun?: boolean }) => {
    const { migrateKafkaToRedis } = await import('./migrate.ts');
    const e = env();
    try {
      await migrateKafkaToRedis(e, {
        topic: opts.topic ?? e.KAFKA_TASK_TOPIC,
        group: opts.group ?? e.KAFKA_GROUP_ID,
        ...(opts.bootstrap ? { bootstrap: opts.bootstrap } : {}),
        concurrency: opts.concurrency,
        idleMs: opts.idleMs,
        dryRun: Boolean(opts.dryRun),
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'ConfigError') runtime.exitOnConfigError(err);
      // A drain error, an unreachable broker or Redis: one line, exit 1; re-running is safe.
      process.stderr.write(`pushline: kafka-to-redis: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });

const queueCommand = program.command('queue').description('inspect and manage the task queue');

async function withQueue<T>(fn: (queue: TaskQueue, target: string) => Promise<T>): Promise<T> {
  const e = env({}, true);
  const target = runtime.redisTarget(e);
  const redis = runtime.createRedis(target, 'api', 'pushline-cli');
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (err) {
    process.stderr.write(`pushline: cannot reach Redis at ${runtime.describeTarget(target)}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  try {
    return await fn(new runtime.TaskQueue(redis, runtime.keysFromEnv(e), runtime.queueOptionsFromEnv(e)), runtime.describeTarget(target));
  } finally {
    redis.disconnect();
  }
}

queueCommand
  .command('status')
  .description('sizes per state, waiting tasks per priority, the next tasks, the oldest wait')
  .option('-n, --next <n>', 'how many of the next tasks to list', intOption('--next', 0, 1000), 10)
  .option('--json', 'machine-readable output')
  .action(async (opts: { next: number; json?: boolean }) => {
    const { queueStatusReport } = await import('./queue-status.ts');
    const { Groups } = await import('../queue/groups.ts');
    await withQueue(async (queue, target) => {
      if (opts.json) {
        const [stats, next, groups] = await Promise.all([queue.stats(), queue.peek(opts.next), new Groups(queue.redis, queue.keys).list()]);
        process.stdout.write(JSON.stringify({ ...stats, groups, next }, null, 2) + '\n');
      } else {
        process.stdout.write((await queueStatusReport(queue, opts.next, target)) + '\n');
      }
    });
  });

queueCommand
  .command('retry')
  .description('move a dead-lettered task back into the queue with a fresh attempt budget')
  .argument('<id>', 'task id')
  .action(async (id: string) => {
    const { reviveDeadTask, BackendUnsupportedError } = await import('../queue/backend.ts');
    await withQueue(async (queue) => {
      let ok: boolean;
      try {
        ok = await reviveDeadTask(queue, env().QUEUE_BACKEND, id);
      } catch (err) {
        if (!(err instanceof BackendUnsupportedError)) throw err;
        process.stderr.write(`pushline: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      process.stdout.write(ok ? `task ${id} queued again\n` : `task ${id} is not in the dead set\n`);
      if (!ok) process.exitCode = 1;
    });
  });

queueCommand
  .command('find')
  .description('tasks of one status, filtered, a page at a time (what GET /tasks answers)')
  .requiredOption('-s, --status <status>', 'queued, retrying, processing, completed, failed, canceled or dead')
  .option('--type <type>', 'only tasks of this type')
  .option('--group <group>', 'only tasks of this group')
  .option('--priority <p>', 'only tasks of this priority', intOption('--priority', 1, 5))
  .option('-n, --limit <n>', 'how many', intOption('--limit', 1, 100), 20)
  .option('--cursor <cursor>', 'go on where the last page stopped')
  .option('--json', 'machine-readable output (the API answer)')
  .action(async (opts: { status: string; type?: string; group?: string; priority?: number; limit: number; cursor?: string; json?: boolean }) => {
    const { searchTasks, SEARCH_STATUSES, BadCursorError } = await import('../queue/task-search.ts');
    const status = SEARCH_STATUSES.find((s) => s === opts.status);
    if (!status) {
      process.stderr.write(`pushline: --status must be one of: ${SEARCH_STATUSES.join(', ')}\n`);
      process.exit(2);
    }
    await withQueue(async (queue) => {
      let page;
      try {
        page = await searchTasks(queue, {
          status,
          limit: opts.limit,
          ...(opts.type !== undefined ? { type: opts.type } : {}),
          ...(opts.group !== undefined ? { group: opts.group } : {}),
          ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
          ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
        });
      } catch (err) {
        if (!(err instanceof BadCursorError)) throw err;
        process.stderr.write(`pushline: --cursor: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (opts.json) return void process.stdout.write(JSON.stringify(page, null, 2) + '\n');
      for (const t of page.tasks) {
        process.stdout.write(`${t.task_id}  ${t.type}  p${t.priority}  ${t.status}${t.timed_out ? ' (timed out)' : ''}  attempts ${t.attempts}  ${t.finished_at ?? t.created_at ?? ''}  ${t.error ?? ''}\n`);
      }
      if (page.tasks.length === 0) process.stdout.write(`no ${status} tasks${page.next_cursor ? ` in the ${page.scanned} looked at` : ''}\n`);
      if (page.next_cursor) process.stdout.write(`more: --cursor ${page.next_cursor}\n`);
    });
  });

queueCommand
  .command('dead')
  .description('list dead-lettered tasks (newest first)')
  .option('-n, --limit <n>', 'how many', intOption('--limit', 1, 10_000), 20)
  .action(async (opts: { limit: number }) => {
    await withQueue(async (queue) => {
      const ids = await queue.redis.zrevrange(queue.keys.tasks.dead, 0, opts.limit - 1);
      for (const id of ids) {
        const hash = await queue.get(id);
        process.stdout.write(`${id}  ${hash?.type ?? '?'}  p${hash?.priority ?? '?'}  attempts ${hash?.attempts ?? '?'}  ${hash?.error ?? ''}\n`);
      }
      if (ids.length === 0) process.stdout.write('no dead-lettered tasks\n');
    });
  });

const scheduleCommand = program.command('schedule').description('recurring schedules (POST /schedules): list, add or replace, remove');

scheduleCommand
  .command('list')
  .description('every schedule with its cadence, catch-up policy and next run')
  .option('--json', 'machine-readable output')
  .action(async (opts: { json?: boolean }) => {
    const { listSchedules } = await import('./schedule.ts');
    await withQueue(async (queue) => process.stdout.write((await listSchedules(queue, Boolean(opts.json))) + '\n'));
  });

scheduleCommand
  .command('add')
  .description('add a schedule, or replace the one of that name')
  .argument('<name>', 'schedule name')
  .option('--cron <expression>', 'cron expression (5 fields, or 6 with seconds), e.g. "*/5 * * * *"')
  .option('--tz <zone>', 'IANA time zone of --cron (default UTC)')
  .option('--every-ms <ms>', 'fixed period instead of --cron', intOption('--every-ms', 1, 365 * 24 * 3600 * 1000))
  .requiredOption('--task <json>', 'the task each tick enqueues, as a POST /generate body, e.g. \'{"type":"echo","payload":{}}\'')
  .option('--catch-up <policy>', 'after downtime: latest (one run for all missed ticks, default), none (skip them), all (each, bounded)')
  .option('--catch-up-max <n>', 'with --catch-up all: at most this many missed ticks (default 100)', intOption('--catch-up-max', 1, 1000))
  .action(async (name: string, opts: { cron?: string; tz?: string; everyMs?: number; task: string; catchUp?: string; catchUpMax?: number }) => {
    const { addSchedule } = await import('./schedule.ts');
    await withQueue(async (queue) => {
      try {
        process.stdout.write((await addSchedule(queue, env(), name, opts)) + '\n');
      } catch (err) {
        process.stderr.write(`pushline: schedule add: ${(err as Error).message}\n`);
        process.exitCode = 2;
      }
    });
  });

scheduleCommand
  .command('rm')
  .description('remove a schedule: no further ticks fire')
  .argument('<name>', 'schedule name')
  .action(async (name: string) => {
    const { removeSchedule } = await import('./schedule.ts');
    await withQueue(async (queue) => {
      const removed = await removeSchedule(queue, name);
      process.stdout.write(removed ? `schedule ${name} removed\n` : `no schedule ${name}\n`);
      if (!removed) process.exitCode = 1;
    });
  });

await program.parseAsync(process.argv);
