// Runs the QueueBackend contract against every backend this machine has: the Redis engine and
// BullMQ on a test redis-server always, Kafka when KAFKA_BOOTSTRAP_SERVERS names a broker; the
// Redis engine and BullMQ again on a 3-master Redis Cluster, unsharded and with 3 shards
// (REDIS_QUEUE_SHARDS).
import { describe, it } from 'vitest';
import { BullmqBackend } from '../../src/queue/backends/bullmq.ts';
import { KafkaBackend } from '../../src/queue/backends/kafka.ts';
import { RedisBackend } from '../../src/queue/backends/redis.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../helpers/redis-cluster.ts';
import { queueBackendContract, type ContractSubject } from './queue-backend.contract.ts';

async function subjectOn(make: (queue: TaskQueue, connection: () => ReturnType<typeof createRedis>) => ContractSubject['backend']): Promise<ContractSubject> {
  const redis: TestRedis = await startTestRedis();
  const target = { host: '127.0.0.1', port: redis.port, db: 0, password: '' };
  const opened: ReturnType<typeof createRedis>[] = [];
  const connection = () => {
    const c = createRedis(target, 'command', 'contract');
    opened.push(c);
    return c;
  };
  const command = connection();
  await command.connect();
  const queue = new TaskQueue(command, queueKeys({ keyPrefix: uniquePrefix() }), { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
  const backend = make(queue, connection);
  return {
    backend,
    queue,
    async close() {
      await backend.close();
      for (const c of opened) c.disconnect();
      await redis.close();
    },
  };
}


// One cluster for both cluster runs of the contract (they run one after the other).
let cluster: Promise<TestCluster> | null = null;
let clusterUsers = 0;
type MakeBackend = (queue: TaskQueue, connection: () => ReturnType<typeof createRedis>) => ContractSubject['backend'];
async function subjectOnCluster(shards: number, make: MakeBackend): Promise<ContractSubject> {
  clusterUsers++;
  cluster ??= startTestCluster();
  const running = await cluster;
  const command = running.connection('command', 'contract');
  await command.connect();
  const queue = new TaskQueue(command, queueKeys({ keyPrefix: uniquePrefix(), tagged: true, shards }), { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
  const backend = make(queue, () => running.connection('blocking', 'contract-blocking'));
  return {
    backend,
    queue,
    async close() {
      await backend.close();
      command.disconnect();
      if (--clusterUsers === 0) {
        await running.close();
        cluster = null;
      }
    },
  };
}
const redisEngine: MakeBackend = (queue, connection) => new RedisBackend(queue, connection);
const bullmq: MakeBackend = (queue, connection) => new BullmqBackend(queue, connection, { queueName: 'uvr_tasks', maxAttempts: 3, backoffMs: 20, lockDurationMs: 1000 });
queueBackendContract('redis', () => subjectOn(redisEngine));
queueBackendContract('redis on a 3-master Redis Cluster', () => subjectOnCluster(1, redisEngine));
queueBackendContract('redis on a 3-master Redis Cluster, 3 shards', () => subjectOnCluster(3, redisEngine));
queueBackendContract('bullmq', () => subjectOn(bullmq));
queueBackendContract('bullmq on a 3-master Redis Cluster', () => subjectOnCluster(1, bullmq));
queueBackendContract('bullmq on a 3-master Redis Cluster, 3 shards', () => subjectOnCluster(3, bullmq));

const brokers = process.env.KAFKA_BOOTSTRAP_SERVERS;
if (brokers) {
  queueBackendContract('kafka', () =>
    subjectOn((queue) => new KafkaBackend(queue, { brokers: brokers.split(','), topic: `pushline-contract-${Date.now()}`, groupId: `pushline-contract-${Date.now()}`, clientId: 'pushline-contract' }, silentLogger)),
  );
} else {
  describe('QueueBackend contract: kafka', () => {
    it.skip('needs a broker: set KAFKA_BOOTSTRAP_SERVERS=host:port to run the contract against Kafka', () => {});
  });
}
