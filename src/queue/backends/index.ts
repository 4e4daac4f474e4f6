// Picks the QueueBackend QUEUE_BACKEND names; logic and job call this from their composition roots.
import type { Redis } from 'ioredis';
import { ConfigError } from '../../config/load.ts';
import type { Env } from '../../config/schema.ts';
import type { Logger } from '../../util/log.ts';
import type { QueueBackend } from '../backend.ts';
import type { TaskQueue } from '../task-queue.ts';
import type { KafkaSettings } from './kafka.ts';
import { RedisBackend } from './redis.ts';

export function kafkaSettings(env: Env): KafkaSettings {
  if (!env.KAFKA_BOOTSTRAP_SERVERS) throw new ConfigError(['KAFKA_BOOTSTRAP_SERVERS is required (host:port[,host:port...]) for QUEUE_BACKEND=kafka and the drain tool']);
  return { brokers: env.KAFKA_BOOTSTRAP_SERVERS.split(','), topic: env.KAFKA_TASK_TOPIC, groupId: env.KAFKA_GROUP_ID, clientId: env.KAFKA_CLIENT_ID };
}

/** The clients load only when chosen: @platformatic/kafka alone adds ~0.8 s to every start-up. */
export async function createBackend(env: Env, queue: TaskQueue, connection: () => Redis, log: Logger): Promise<QueueBackend> {
  switch (env.QUEUE_BACKEND) {
    case 'bullmq': {
      const { BullmqBackend } = await import('./bullmq.ts');
      return new BullmqBackend(queue, connection, { queueName: env.REDIS_TASK_QUEUE, maxAttempts: env.TASK_MAX_ATTEMPTS, backoffMs: env.TASK_BACKOFF_MS });
    }
    case 'kafka': {
      const settings = kafkaSettings(env);
      const { KafkaBackend } = await import('./kafka.ts');
      return new KafkaBackend(queue, settings, log);
    }
    default:
      return new RedisBackend(queue, connection);
  }
}
