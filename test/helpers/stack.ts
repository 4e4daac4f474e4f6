// An in-process push stack for end-to-end tests: one test redis-server (or a given Redis Cluster),
// two comets, a job and the logic app (fastify inject), all sharing one fresh key prefix.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Redis } from 'ioredis';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../../src/config/derive.ts';
import { parseEnv } from '../../src/config/load.ts';
import type { Env } from '../../src/config/schema.ts';
import { startJob, type JobHandle } from '../../src/job/main.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { buildLogicApp } from '../../src/logic/app.ts';
import { LOGIC_TASK_TYPES } from '../../src/logic/main.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import type { TaskHash } from '../../src/queue/task.ts';
import { createRedis, redisTarget } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { AUTH, authHeader } from './logic.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './redis.ts';
import { waitFor } from './wait.ts';
import { connectClient, type WsClient } from './ws.ts';

export const STACK_SECRET = 'e2e-auth-secret-0123456789';
/** COMET_GRPC_TOKEN of the stack's comets and job. */
export const STACK_GRPC_TOKEN = 'e2e-grpc-token-0123456789';

export interface PushStack {
  /** The stack's own redis-server; on a cluster stack (options.cluster) it is not there. */
  redis: TestRedis;
  /** A plain connection for inspecting keys (a cluster client on a cluster stack). */
  client: Redis;
  /** redis-cli arguments that reach this stack's Redis (`-c` on a cluster, as users type it). */
  redisCli: string[];
  env: Env;
  comets: CometHandle[];
  job: JobHandle;
  app: FastifyInstance;
  /** http://127.0.0.1:port of logic when started with `listen`. */
  logicUrl: string;
  /** Env of this stack (same Redis, same prefix) plus `extra`. */
  envFor(extra: Record<string, string>): Env;
  connect(comet: CometHandle, userId: string, roomId: string): Promise<WsClient>;
  post(url: string, payload: unknown): Promise<LightMyRequestResponse>;
  /** Waits until the task is completed or failed and returns its hash. */
  finished(id: string): Promise<TaskHash>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Env for every process on top of the test defaults. */
  env?: Record<string, string>;
  /** Logic in dev mode (the demo page's token helper). */
  devMode?: boolean;
  /** Also listen on a loopback port (for browsers); `logicUrl` says where. */
  listen?: boolean;
  /** Run on this Redis Cluster instead of a fresh redis-server (REDIS_CLUSTER_NODES, REDIS_QUEUE_SHARDS). */
  cluster?: { seeds: string; shards?: number; client: () => Redis };
}

export async function startPushStack(cometCount = 2, options: StackOptions = {}): Promise<PushStack> {
  const cluster = options.cluster;
  const redis = cluster ? (null as unknown as TestRedis) : await startTestRedis();
  const prefix = uniquePrefix();
  const where = cluster
    ? { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_QUEUE_SHARDS: String(cluster.shards ?? 1) }
    : { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) };
  const envFor = (extra: Record<string, string>): Env => {
    const parsed = parseEnv({
      ...where, REDIS_KEY_PREFIX: prefix,
      AUTH_SECRET: STACK_SECRET, COMET_GRPC_TOKEN: STACK_GRPC_TOKEN, WEBHOOK_SECRET: 'x', COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_BATCH_MS: '2',
      COMET_HEARTBEAT_MS: '200', COMET_DEAD_AFTER_MS: '3000', PUSH_RPC_TIMEOUT_MS: '500', LOG_LEVEL: 'silent',
      JOB_METRICS_HOST: '127.0.0.1', JOB_METRICS_PORT: '0', ...options.env, ...extra,
    });
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    return parsed.env;
  };
  const env = envFor({});
  const comets: CometHandle[] = [];
  for (let i = 0; i < cometCount; i++) {
    const grpcPort = await freePort();
    comets.push(await startComet(envFor({ COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}` }), silentLogger));
  }
  const job = await startJob(env, silentLogger);
  const apiRedis = createRedis(redisTarget(env), 'api', 'e2e-logic');
  await apiRedis.connect();
  const queue = new TaskQueue(apiRedis, keysFromEnv(env), queueOptionsFromEnv(env));
  const app = await buildLogicApp({
    queue, redis: apiRedis, credentials: AUTH, defaultPriority: 3, bodyLimit: 65536, taskTypes: LOGIC_TASK_TYPES,
    log: silentLogger, authSecret: STACK_SECRET, cometAliveMs: 3000, devMode: options.devMode ?? false,
  });
  const logicUrl = options.listen ? await app.listen({ host: '127.0.0.1', port: 0 }) : '';
  const client = cluster ? cluster.client() : redis.client();
  return {
    redis,
    client,
    redisCli: cluster ? ['-c', '-p', cluster.seeds.split(',')[0]!.split(':')[1]!] : ['-p', String(redis.port)],
    env,
    comets,
    job,
    app,
    logicUrl,
    envFor,
    connect: (comet, userId, roomId) => connectClient(comet.wsPort, STACK_SECRET, userId, roomId),
    post: (url, payload) => app.inject({ method: 'POST', url, headers: { authorization: authHeader }, payload: payload as object }),
    finished: (id) =>
      waitFor(async () => {
        const h = await queue.get(id);
        return h && (h.status === 'completed' || h.status === 'failed') ? h : null;
      }, `task ${id} finished`),
    async close() {
      await app.close();
      await job.stop();
      for (const c of comets) await c.stop();
      apiRedis.disconnect();
      if (cluster) client.disconnect();
      else await redis.close();
    },
  };
}
