// Settings several processes derive from the same env values, derived in one place.
import type { Env } from './schema.ts';
import { queueKeys, type QueueKeys } from '../queue/keys.ts';
import type { QueueOptions } from '../queue/task-queue.ts';

export function keysFromEnv(env: Env): QueueKeys {
  return queueKeys({
    keyPrefix: env.REDIS_KEY_PREFIX,
    taskQueue: env.REDIS_TASK_QUEUE,
    resultQueue: env.REDIS_RESULT_QUEUE,
    tagged: Boolean(env.REDIS_CLUSTER_NODES),
    shards: env.REDIS_QUEUE_SHARDS,
  });
}

export function queueOptionsFromEnv(env: Env): QueueOptions {
  return {
    retentionSeconds: env.TASK_RETENTION_SECONDS,
    pushRetentionSeconds: env.PUSH_RETENTION_SECONDS,
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_SECONDS,
  };
}
