// Composition root of `pushline job`: config → logger → Redis → queue → processors → runner.
import type { Env } from '../config/schema.ts';
import { webhookSecret } from '../config/load.ts';
import { connectAtStart, createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
import { TaskQueue } from '../queue/task-queue.ts';
import { createGuardedAgent } from '../net/ssrf.ts';
import type { Logger } from '../util/log.ts';
import { ProcessorRegistry, type Processor } from './processor.ts';
import { loadCustomProcessors } from './custom-processors.ts';
import { echoProcessor } from './processors/echo.ts';
import { createPushProcessor } from './processors/push.ts';
import { createAudioProcessor } from './processors/audio.ts';
import { audioSettingsFromEnv } from '../audio/options.ts';
import { CometClients, cometClientOptions } from './comet-clients.ts';
import { routingKeys } from '../routing/keys.ts';
import { JobRunner } from './runner.ts';
import { createBackend } from '../queue/backends/index.ts';
import { TaskNotifier } from './task-status.ts';
import { startWorkerHeartbeat } from './worker-registry.ts';
import { jobMetrics } from './metrics.ts';
import { probeRedis, queueDepth } from '../metrics/common.ts';
import { createRegistry, serveMetrics, type Registry } from '../metrics/registry.ts';
import { observeScripts } from '../queue/scripts.ts';
import { RoutingLookup } from '../routing/lookup.ts';
import { Scheduler } from '../schedule/scheduler.ts';

export interface JobHandle {
  runner: JobRunner;
  /** Where GET /metrics answers. */
  metricsPort: number;
  stop(): Promise<void>;
}

/** The task types job always has (logic accepts the same names). */
export const BUILT_IN_TASK_TYPES = ['echo', 'push', 'audio'] as const;

export async function startJob(env: Env, log: Logger, extraProcessors: Processor[] = []): Promise<JobHandle> {
  const secret = webhookSecret(env);
  // Before connecting anything: a bad JOB_PROCESSORS module is a config error (exit 2).
  const custom = await loadCustomProcessors(env.JOB_PROCESSORS, [...BUILT_IN_TASK_TYPES, ...extraProcessors.map((p) => p.type)]);
  if (custom.length > 0) log.info(`JOB_PROCESSORS: task types ${custom.map((p) => p.type).join(', ')}`);
  const cometOptions = cometClientOptions(env);
  const target = redisTarget(env);
  const command = createRedis(target, 'command', 'pushline-job');
  await connectAtStart(command);
  log.info(`Connected to Redis: ${describeTarget(target)}`);

  const keys = keysFromEnv(env);
  const queue = new TaskQueue(command, keys, queueOptionsFromEnv(env));
  const dispatcher = createGuardedAgent({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE });
  const keysOfRouting = routingKeys(env.REDIS_KEY_PREFIX, Boolean(env.REDIS_CLUSTER_NODES));
  const registry = createRegistry('job');
  const lookup = new RoutingLookup(command, keysOfRouting);
  const metrics = jobMetrics(registry, async () => (await lookup.comets('alive', env.COMET_DEAD_AFTER_MS)).length);
  queueDepth(registry, queue);
  observeScripts(command, metrics.redis);
  const stopProbe = probeRedis(command, metrics.redis);
  const metricsServer = await serveJobMetrics(registry, env, log);
  const comets = new CometClients(cometOptions, metrics.grpc);
  // Status notifications reuse the push path; its per-message seed log lines stay out of info.
  const notifyLog = log.child({ part: 'notify' });
  if (notifyLog.levelVal < notifyLog.levels.values.warn!) notifyLog.level = 'warn';
  const push = createPushProcessor({
    redis: command,
    keys: keysOfRouting,
    clients: comets,
    deadAfterMs: env.COMET_DEAD_AFTER_MS,
    history: { max: env.ROOM_HISTORY_MAX, ttlSeconds: env.ROOM_HISTORY_TTL_SECONDS },
    offline: { max: env.OFFLINE_MAX, ttlSeconds: env.OFFLINE_TTL_SECONDS },
    log: notifyLog,
    metrics,
  });
  // Audio downloads have their own SSRF switch: fetching from inside the network is riskier than posting to it.
  const audioDispatcher = createGuardedAgent({ allowPrivate: env.AUDIO_ALLOW_PRIVATE, allowSetting: 'AUDIO_ALLOW_PRIVATE' });
  const audio = audioSettingsFromEnv(env);
  log.info(`audio tasks work in ${audio.workDir}${audio.command ? `, AUDIO_PROCESSOR_CMD: ${JSON.stringify(audio.command)}` : ''}`);
  const processors: Processor[] = [
    echoProcessor,
    push,
    createAudioProcessor({ ...audio, queueKey: keys.tasks.queue, dispatcher: audioDispatcher }),
    ...extraProcessors,
    ...custom,
  ];
  const notifier = new TaskNotifier(push.deliver, notifyLog);
  // The Redis engine's consumers are JobRunner's own; another backend only feeds it tasks.
  const backend = env.QUEUE_BACKEND === 'redis' ? undefined : await createBackend(env, queue, () => createRedis(target, 'command', 'pushline-job-backend'), log);
  const runner = new JobRunner({
    queue,
    blockingConnection: (name) => createRedis(target, 'blocking', `pushline-job-${name}`),
    registry: new ProcessorRegistry(processors),
    consumers: env.JOB_CONSUMERS,
    concurrency: env.JOB_CONCURRENCY,
    visibilityMs: env.TASK_VISIBILITY_TIMEOUT_MS,
    shutdownTimeoutMs: env.JOB_SHUTDOWN_TIMEOUT_MS,
    reaperIntervalMs: env.REAPER_INTERVAL_MS,
    taskPolicy: { maxAttempts: env.TASK_MAX_ATTEMPTS, baseMs: env.TASK_BACKOFF_MS, maxMs: env.TASK_BACKOFF_MAX_MS },
    taskTimeouts: { defaultMs: env.TASK_TIMEOUT_MS, byType: env.TASK_TIMEOUTS },
    webhook: {
      secret,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      policy: { maxAttempts: env.WEBHOOK_MAX_ATTEMPTS, baseMs: env.WEBHOOK_BACKOFF_MS, maxMs: env.WEBHOOK_BACKOFF_MAX_MS },
      concurrency: env.WEBHOOK_CONCURRENCY,
      dispatcher,
    },
    log,
    notifier,
    metrics,
    ...(backend ? { backend } : {}),
  });
  await runner.start();
  // Recurring schedules (POST /schedules): every job runs the loop; the tick's idempotency key
  // and a compare-and-set make it one task per tick however many do.
  const scheduler = env.QUEUE_BACKEND === 'redis' ? new Scheduler({ queue, redis: command, routing: keysOfRouting, defaultPriority: env.DEFAULT_PRIORITY, log: log.child({ part: 'scheduler' }) }) : null;
  scheduler?.start();
  const stopHeartbeat = startWorkerHeartbeat(
    command,
    keys,
    { consumers: env.JOB_CONSUMERS, concurrency: env.JOB_CONCURRENCY, backend: env.QUEUE_BACKEND, types: processors.map((p) => p.type) },
    () => runner.inflight,
  );
  return {
    runner,
    metricsPort: metricsServer.port,
    async stop() {
      stopProbe();
      metricsServer.server.close();
      await scheduler?.stop();
      await runner.stop();
      await stopHeartbeat();
      await backend?.close();
      await notifier.drain();
      await dispatcher.close().catch(() => {});
      await audioDispatcher.close().catch(() => {});
      comets.close();
      await command.quit().catch(() => command.disconnect());
    },
  };
}

const DEFAULT_METRICS_PORT = 9464;

/** JOB_METRICS_PORT when set (taken = an error); else 9464, or a free port when another job holds it. */
async function serveJobMetrics(registry: Registry, env: Env, log: Logger) {
  const host = env.JOB_METRICS_HOST;
  if (env.JOB_METRICS_PORT !== undefined) return serveMetrics(registry, host, env.JOB_METRICS_PORT);
  try {
    return await serveMetrics(registry, host, DEFAULT_METRICS_PORT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const served = await serveMetrics(registry, host, 0);
    log.warn(`port ${DEFAULT_METRICS_PORT} is taken (another job on this host?): metrics are at http://${host}:${served.port}/metrics; set JOB_METRICS_PORT to choose`);
    return served;
  }
}
