// The drain tool's guarantees, against real Redis, with records fed the way the Kafka consumer
// hands them over (no broker on this machine; with KAFKA_BOOTSTRAP_SERVERS the CLI runs too):
// a task per record, commit only after the Redis write, a re-run adds nothing, unreadable
// records kept aside, Redis away = nothing committed.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskHashOf } from '../../src/queue/backend.ts';
import { encodePushMsg, encodeTask, PUSH_TYPES, TASK_HEADER } from '../../src/queue/backends/kafka-codec.ts';
import { drainRecords, rejectedKey, type DrainRecord } from '../../src/migrate/kafka-to-redis.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let queue: TaskQueue;
beforeAll(async () => {
  redis = await startTestRedis();
  const client = createRedis({ host: '127.0.0.1', port: redis.port, db: 0, password: '' }, 'command', 'migrate-test');
  await client.connect();
  queue = new TaskQueue(client, queueKeys({ keyPrefix: uniquePrefix() }), { retentionSeconds: 3600, idempotencyTtlSeconds: 86_400 });
});
afterAll(async () => {
  queue?.redis.disconnect();
  await redis.close();
});

const committed: string[] = [];
function records(values: { value: Buffer; header?: string }[], partition = 0): DrainRecord[] {
  return values.map(({ value, header }, offset) => ({
    topic: 'my-topic',
    partition,
    offset: BigInt(offset),
    value,
    headers: header ? new Map([[Buffer.from(TASK_HEADER), Buffer.from(header)]]) : new Map(),
    // The offset may only be committed once its task is in Redis.
    commit: async () => {
      const ids = await queue.redis.zrange(queue.keys.tasks.queue, '0', '-1');
      const hashes = await Promise.all(ids.map((id) => queue.get(id)));
      const there = hashes.some((h) => h?.migrated_from === `kafka:my-topic:${partition}:${offset}`);
      committed.push(`${partition}:${offset}:${there ? 'after-write' : 'before-write'}`);
    },
  }));
}
async function* asStream<T>(items: T[]): AsyncIterable<T> {
  for (const item of items) yield item;
}
const options = () => ({ queue, roomSeqKey: (room: string) => `${queue.keys.prefix}room:seq:${room}`, defaultPriority: 3, concurrency: 8 });

describe('pushline migrate kafka-to-redis', () => {
  const goimRoom = { value: encodePushMsg({ type: PUSH_TYPES.ROOM, operation: 4, room: 'video_123', msg: Buffer.from('{"content":"旧消息"}') }) };
  const goimUsers = { value: encodePushMsg({ type: PUSH_TYPES.PUSH, operation: 4, keys: ['user_123'], msg: Buffer.from('{"content":"hi"}') }) };
  const ownTask = (() => {
    const { value, headers } = encodeTask(taskHashOf('000000000099', { type: 'echo', priority: 5, payload: '{"n":1}', hookUrl: 'https://example.test/hook' }, 1, undefined));
    return { value, header: headers[TASK_HEADER] };
  })();
  const garbage = { value: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]) };

  it('turns each record into a queued task, commits each offset after its write, and keeps unreadable ones aside', async () => {
    const counts = await drainRecords(asStream(records([goimRoom, goimUsers, ownTask, garbage])), options());
    expect(counts).toEqual({ read: 4, enqueued: 3, duplicates: 0, rejected: 1 });
    expect(committed.length).toBeGreaterThan(0);
    expect(committed.every((c) => c.endsWith('after-write') || c.startsWith('0:3'))).toBe(true);
    expect(committed.at(-1)!.startsWith('0:3')).toBe(true); // the last commit covers all four
    const ids = await queue.redis.zrange(queue.keys.tasks.queue, '0', '-1');
    const hashes = await Promise.all(ids.map((id) => queue.get(id)));
    const room = hashes.find((h) => h?.room_id === 'video_123')!;
    expect(room).toMatchObject({ type: 'push', status: 'queued', priority: '3', migrated_from: 'kafka:my-topic:0:0', seq: '1' });
    expect(JSON.parse(room.payload!)).toEqual({ mode: 'room', roomId: 'video_123', message: { content: '旧消息' } });
    expect(hashes.find((h) => h?.type === 'echo')).toMatchObject({ priority: '5', payload: '{"n":1}', hook_url: 'https://example.test/hook' });
    const rejected = (await queue.redis.lrange(rejectedKey(queue), 0, -1)).map((r) => JSON.parse(r));
    expect(rejected).toEqual([expect.objectContaining({ topic: 'my-topic', partition: 0, offset: '3', error: expect.stringContaining('not a goim PushMsg') })]);
  });

  it('adds nothing when run again over the same records', async () => {
    const before = await queue.redis.zcard(queue.keys.tasks.queue);
    const counts = await drainRecords(asStream(records([goimRoom, goimUsers, ownTask])), options());
    expect(counts).toEqual({ read: 3, enqueued: 0, duplicates: 3, rejected: 0 });
    expect(await queue.redis.zcard(queue.keys.tasks.queue)).toBe(before);
  });

  it('writes and commits nothing in a dry run', async () => {
    committed.length = 0;
    const before = await queue.redis.zcard(queue.keys.tasks.queue);
    const counts = await drainRecords(asStream(records([goimRoom, goimUsers], 1)), { ...options(), dryRun: true });
    expect(counts).toMatchObject({ read: 2, enqueued: 2 });
    expect(committed).toEqual([]);
    expect(await queue.redis.zcard(queue.keys.tasks.queue)).toBe(before);
  });

  it('stops without committing when Redis does not take the write', async () => {
    committed.length = 0;
    const down = createRedis({ host: '127.0.0.1', port: redis.port, db: 0, password: '' }, 'api', 'migrate-down');
    down.on('error', () => {});
    const broken = new TaskQueue(down, queue.keys, queue.options); // never connected: every write fails
    await expect(drainRecords(asStream(records([goimRoom], 2)), { ...options(), queue: broken })).rejects.toThrow(/not committed: run the drain again/);
    expect(committed).toEqual([]);
    down.disconnect();
  });

  it('the CLI says what is missing when no broker is configured', () => {
    const run = spawnSync(process.execPath, ['bin/pushline.js', 'migrate', 'kafka-to-redis', '--topic', 'my-topic'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) },
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('KAFKA_BOOTSTRAP_SERVERS (or --bootstrap host:port) is required');
  });
});

const brokers = process.env.KAFKA_BOOTSTRAP_SERVERS;
describe.skipIf(!brokers)('pushline migrate kafka-to-redis against a real broker (KAFKA_BOOTSTRAP_SERVERS)', () => {
  it('drains a topic, then finds nothing new on a second run', async () => {
    const { Producer } = await import('@platformatic/kafka');
    const topic = `pushline-drain-${Date.now()}`;
    const producer = new Producer({ clientId: 'pushline-test', bootstrapBrokers: brokers!.split(','), autocreateTopics: true });
    await producer.send({
      messages: [1, 2, 3].map((n) => ({ topic, key: Buffer.from(String(n)), value: encodePushMsg({ type: PUSH_TYPES.ROOM, operation: 4, room: 'drained', msg: Buffer.from(`{"n":${n}}`) }) })),
    });
    await producer.close();
    const prefix = uniquePrefix();
    const run = () =>
      spawnSync(process.execPath, ['bin/pushline.js', 'migrate', 'kafka-to-redis', '--topic', topic, '--group', `${topic}-group`, '--idle-ms', '3000'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: prefix, KAFKA_BOOTSTRAP_SERVERS: brokers },
        timeout: 60_000,
      });
    const first = run();
    expect(first.status).toBe(0);
    expect(first.stderr).toContain('done: read 3, enqueued 3');
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stderr).toContain('done: read 0, enqueued 0');
    expect(await queue.redis.zcard(`${prefix}uvr_tasks`)).toBe(3);
  });
});
