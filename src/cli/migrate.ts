// `pushline migrate kafka-to-redis --topic my-topic`: the drain (src/migrate/kafka-to-redis.ts)
// wired to a real Kafka consumer group, with a progress bar on a terminal and a final count.
import { Consumer } from '@platformatic/kafka';
import cliProgress from 'cli-progress';
import { ConfigError } from '../config/load.ts';
import { claimEarlySignals } from './early-signals.ts';
import { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
import type { Env } from '../config/schema.ts';
import { drainRecords, rejectedKey, type DrainCounts, type DrainRecord } from '../migrate/kafka-to-redis.ts';
import { TaskQueue } from '../queue/task-queue.ts';
import { createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
import { routingKeys } from '../routing/keys.ts';

export interface MigrateOptions {
  topic: string;
  group: string;
  bootstrap?: string;
  concurrency: number;
  idleMs: number;
  dryRun: boolean;
}

function describe(c: DrainCounts): string {
  return `read ${c.read}, enqueued ${c.enqueued}, already there ${c.duplicates}, unreadable ${c.rejected}`;
}

export async function migrateKafkaToRedis(env: Env, o: MigrateOptions): Promise<DrainCounts> {
  const brokers = (o.bootstrap ?? env.KAFKA_BOOTSTRAP_SERVERS)?.split(',').filter(Boolean);
  if (!brokers?.length) throw new ConfigError(['KAFKA_BOOTSTRAP_SERVERS (or --bootstrap host:port) is required to read the old topic']);
  const target = redisTarget(env);
  const redis = createRedis(target, 'command', 'pushline-migrate');
  await redis.connect();
  const queue = new TaskQueue(redis, keysFromEnv(env), queueOptionsFromEnv(env));
  const consumer = new Consumer({ groupId: o.group, clientId: `${env.KAFKA_CLIENT_ID}-migrate`, bootstrapBrokers: brokers });
  const out = process.stderr;
  try {
    // What is left for this group: the bar's total (unknown when the broker does not say).
    let total: number | null = null;
    try {
      const lag = await consumer.getLag({ topics: [o.topic] });
      total = [...lag.values()].flat().reduce((n, v) => n + Math.max(0, Number(v)), 0);
    } catch {
      total = null;
    }
    out.write(`draining ${o.topic} (group ${o.group}, ${brokers.join(',')}) into ${queue.keys.tasks.queue} on ${describeTarget(target)}${total !== null ? `: ${total} records left` : ''}${o.dryRun ? ' — dry run, nothing is written or committed' : ''}\n`);
    const stream = await consumer.consume({ topics: [o.topic], autocommit: false, mode: 'committed', fallbackMode: 'earliest' });

    const bar = out.isTTY ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} records | {enqueued} enqueued, {duplicates} already there, {rejected} unreadable', stream: out }, cliProgress.Presets.shades_classic) : null;
    bar?.start(total ?? 0, 0, { enqueued: 0, duplicates: 0, rejected: 0 });
    let lastLine = 0;
    let lastRecordAt = Date.now();
    const progress = (c: DrainCounts) => {
      lastRecordAt = Date.now();
      if (bar) {
        if (total !== null && c.read > total) bar.setTotal((total = c.read));
        bar.update(c.read, { enqueued: c.enqueued, duplicates: c.duplicates, rejected: c.rejected });
      } else if (Date.now() - lastLine > 2000) {
        lastLine = Date.now();
        out.write(`  ${describe(c)}${total !== null ? ` of ${total}` : ''}\n`);
      }
    };
    // The topic has no end: the drain is done once nothing new has come for idleMs, or when
    // asked to stop (what is written by then is committed; a re-run carries on from there).
    const idle = setInterval(() => {
      if (Date.now() - lastRecordAt > o.idleMs) void stream.close();
    }, 250);
    const onSignal = () => void stream.close();
    process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
    if (claimEarlySignals()) onSignal();
    let counts: DrainCounts;
    try {
      counts = await drainRecords(stream as AsyncIterable<DrainRecord>, {
        queue,
        roomSeqKey: (room) => routingKeys(env.REDIS_KEY_PREFIX, Boolean(env.REDIS_CLUSTER_NODES)).roomSeq(room),
        defaultPriority: env.DEFAULT_PRIORITY,
        concurrency: o.concurrency,
        dryRun: o.dryRun,
        onProgress: progress,
      });
    } finally {
      clearInterval(idle);
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      bar?.stop();
    }
    out.write(`done: ${describe(counts)}${counts.rejected ? ` (kept in ${rejectedKey(queue)})` : ''}\n`);
    return counts;
  } finally {
    await consumer.close().catch(() => {});
    redis.disconnect();
  }
}
