// Composition root of `pushline logic`: config → logger → Redis → queue → app → listen.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Env } from '../config/schema.ts';
import { apiCredentials, authSecret } from '../config/load.ts';
import { createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
import { TaskQueue } from '../queue/task-queue.ts';
import { startReplicationWait } from '../queue/replication-wait.ts';
import type { Logger } from '../util/log.ts';
import { createBackend } from '../queue/backends/index.ts';
import { buildLogicApp } from './app.ts';
import { loadCustomProcessors } from '../job/custom-processors.ts';

/** Task types logic accepts; each needs a processor in the job. */
export const LOGIC_TASK_TYPES = ['echo', 'push', 'audio'] as const;

export interface LogicHandle {
  app: FastifyInstance;
  url: string;
  /** The bound port (LOGIC_PORT=0 asks for any free one). */
  port: number;
  stop(): Promise<void>;
}

export async function startLogic(env: Env, log: Logger, listen: { host?: string; port?: number } = {}): Promise<LogicHandle> {
  const credentials = apiCredentials(env);
  // Types of JOB_PROCESSORS modules (the user's own processors) are accepted like built-in ones.
  const customTypes = (await loadCustomProcessors(env.JOB_PROCESSORS, LOGIC_TASK_TYPES)).map((p) => p.type);
  if (credentials.fromDevDefaults) log.warn('PUSHLINE_DEV: API credentials are the dev defaults admin/password');
  const target = redisTarget(env);
  const redis = createRedis(target, 'api', 'pushline-logic');
  // Logic starts even while Redis is away: /health then says 503 and POSTs answer 503.
  redis.connect().then(
    () => log.info(`Connected to Redis: ${describeTarget(target)}`),
    (err) => log.warn({ err: String(err) }, `Redis ${describeTarget(target)} not reachable yet; retrying`),
  );
  redis.on('error', () => {}); // reconnection is ioredis's job; failures surface per request
  const replication = startReplicationWait(env, target, log);
  const queue = new TaskQueue(
    redis,
    keysFromEnv(env),
    { ...queueOptionsFromEnv(env), ...(replication ? { replication } : {}) },
  );
  const backend = env.QUEUE_BACKEND === 'redis' ? undefined : await createBackend(env, queue, () => createRedis(target, 'command', 'pushline-logic-backend'), log);
  const app = await buildLogicApp({
    queue,
    ...(backend ? { backend } : {}),
    redis,
    credentials,
    defaultPriority: env.DEFAULT_PRIORITY,
    bodyLimit: env.BODY_LIMIT_BYTES,
    requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
    jsonMaxDepth: env.JSON_MAX_DEPTH,
    batchMax: env.BATCH_MAX,
    taskTypes: [...LOGIC_TASK_TYPES, ...customTypes],
    log,
    authSecret: env.AUTH_SECRET || env.PUSHLINE_DEV ? authSecret(env) : null,
    tokenTtlSeconds: env.TOKEN_TTL_SECONDS,
    cometAliveMs: env.COMET_DEAD_AFTER_MS,
    audioWorkDir: env.AUDIO_WORK_DIR,
    // The demo page's "pick a name and a room" token helper exists only in dev mode.
    devMode: env.PUSHLINE_DEV,
  });
  if (!env.AUTH_SECRET && !env.PUSHLINE_DEV) log.warn('AUTH_SECRET is not set: POST /logic/token answers 503 until it is');
  const url = await app.listen({ host: listen.host ?? env.LOGIC_HOST, port: listen.port ?? env.LOGIC_PORT });
  log.info(`logic listening on ${url}`);
  return {
    app,
    url,
    port: (app.server.address() as AddressInfo).port,
    async stop() {
      await app.close();
      await backend?.close();
      redis.disconnect();
      replication?.redis.disconnect();
    },
  };
}
