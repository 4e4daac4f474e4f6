// Composition root of `pushline job`: config → logger → Redis → queue → processors → runner.
import type { Env } from '../config/schema.ts';
import { webhookSecret } from '../config/load.ts';
import { createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
import { TaskQueue } from '../queue/task-queue.ts';
import { createGuardedAgent } from '../net/ssrf.ts';
import type { Logger } from '../util/log.ts';
import { ProcessorRegistry, type Processor } from './processor.ts';
import { echoProcessor } from './processors/echo.ts';
import { createPushProcessor } from './processors/push.ts';
import { createAudioProcessor } from './processors/audio.ts';
import { audioSettingsFromEnv } from '../audio/options.ts';
import { CometClients } from './comet-clients.ts';
import { routingKeys } from '../routing/keys.ts';
import { JobRunner } from './runner.ts';

export interface JobHandle {
  runner: JobRunner;
  stop(): Promise<void>;
}

export async function startJob(env: Env, log: Logger, extraProcessors: Processor[] = []): Promise<JobHandle> {
  const secret = webhookSecret(env);
  const target = redisTarget(env);
  const command = createRedis(target, 'command', 'pushline-job');
  await command.connect();
  log.info(`Connected to Redis: ${describeTarget(target)}`);

  const keys = keysFromEnv(env);
  const queue = new TaskQueue(command, keys, queueOptionsFromEnv(env));
  const dispatcher = createGuardedAgent({ allowPrivate: env.WEBHOOK_ALLOW_PRIVATE });
  const comets = new CometClients(env.PUSH_RPC_TIMEOUT_MS);
  // Audio downloads have their own SSRF switch: fetching from inside the network is riskier than posting to it.
  const audioDispatcher = createGuardedAgent({ allowPrivate: env.AUDIO_ALLOW_PRIVATE, allowSetting: 'AUDIO_ALLOW_PRIVATE' });
  const audio = audioSettingsFromEnv(env);
  log.info(`audio tasks work in ${audio.workDir}${audio.command ? `, AUDIO_PROCESSOR_CMD: ${JSON.stringify(audio.command)}` : ''}`);
  const processors: Processor[] = [
    echoProcessor,
    createPushProcessor({
      redis: command,
      keys: routingKeys(env.REDIS_KEY_PREFIX),
      clients: comets,
      deadAfterMs: env.COMET_DEAD_AFTER_MS,
      history: { max: env.ROOM_HISTORY_MAX, ttlSeconds: env.ROOM_HISTORY_TTL_SECONDS },
      offline: { max: env.OFFLINE_MAX, ttlSeconds: env.OFFLINE_TTL_SECONDS },
    }),
    createAudioProcessor({ ...audio, queueKey: keys.tasks.queue, dispatcher: audioDispatcher }),
    ...extraProcessors,
  ];
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
    webhook: {
      secret,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      policy: { maxAttempts: env.WEBHOOK_MAX_ATTEMPTS, baseMs: env.WEBHOOK_BACKOFF_MS, maxMs: env.WEBHOOK_BACKOFF_MAX_MS },
      concurrency: env.WEBHOOK_CONCURRENCY,
      dispatcher,
    },
    log,
  });
  await runner.start();
  return {
    runner,
    async stop() {
      await runner.stop();
      await dispatcher.close().catch(() => {});
      await audioDispatcher.close().catch(() => {});
      comets.close();
      await command.quit().catch(() => command.disconnect());
    },
  };
}
