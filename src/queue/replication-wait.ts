// REDIS_WAIT_REPLICAS: an enqueue counts as done only once WAIT says N replicas have it. A
// failover promotes a replica, and whatever only the old master had is discarded when it
// rejoins as a replica; a task confirmed on N replicas survives it (docs/durability.md).
import type { Redis } from 'ioredis';
import type { Env } from '../config/schema.ts';
import { createRedis, type RedisTarget } from '../redis/connect.ts';
import type { Logger } from '../util/log.ts';

/**
 * Published (to a channel nobody listens on) right before each WAIT. WAIT waits for the
 * replication offset its connection recorded last: after any command on Redis 7.0, after the
 * last write only on later versions. This write pins it to "everything the master has now" on
 * every version, which includes the batch just written and any task an Idempotency-Key replay
 * returned, even one another logic process wrote and never confirmed.
 */
const FENCE_CHANNEL = 'pushline:replication-fence';

/** 503 `not_replicated`: the write may have happened, but fewer than N replicas confirmed it. */
export class NotReplicatedError extends Error {
  constructor(
    readonly wanted: number,
    readonly confirmed: number | null,
    reason: string,
  ) {
    super(reason);
    this.name = 'NotReplicatedError';
  }
}

export interface ReplicationWaitOptions {
  replicas: number;
  timeoutMs: number;
}

export class ReplicationWait {
  /**
   * @param redis its own connection: WAIT blocks it for up to timeoutMs, and nothing else
   * (task lookups, health checks) should queue behind that.
   */
  constructor(
    readonly redis: Redis,
    readonly options: ReplicationWaitOptions,
  ) {}

  /**
   * Runs `write` on this connection, then one WAIT for the lot. Throws NotReplicatedError when
   * the replicas did not confirm in time, or when the connection changed between the write and
   * the WAIT: a WAIT on a new connection (perhaps to a new master) says nothing about a write
   * made through the old one.
   */
  async confirm<T>(write: (redis: Redis) => Promise<T>): Promise<T> {
    const result = await write(this.redis);
    // The socket the write's reply came on (a READONLY resend may have moved it to a new master).
    const wroteOn = this.redis.stream;
    let confirmed: number;
    try {
      const [, acked] = await Promise.all([
        this.redis.publish(FENCE_CHANNEL, ''),
        this.redis.wait(this.options.replicas, this.options.timeoutMs),
      ]);
      confirmed = Number(acked);
    } catch (err) {
      throw new NotReplicatedError(this.options.replicas, null, `the write was made, but WAIT failed (${(err as Error).message})`);
    }
    if (this.redis.stream !== wroteOn) {
      throw new NotReplicatedError(this.options.replicas, null, 'the connection to Redis changed between the write and WAIT');
    }
    if (confirmed < this.options.replicas) {
      throw new NotReplicatedError(
        this.options.replicas,
        confirmed,
        `${confirmed} of ${this.options.replicas} replicas confirmed the write within ${this.options.timeoutMs} ms`,
      );
    }
    return result;
  }
}

/** REDIS_WAIT_REPLICAS > 0: the WAIT connection (fail-fast, like logic's own), else undefined. */
export function startReplicationWait(env: Env, target: RedisTarget, log: Logger): ReplicationWait | undefined {
  if (env.REDIS_WAIT_REPLICAS === 0) return undefined;
  const redis = createRedis(target, 'api', 'pushline-logic-wait');
  redis.on('error', () => {}); // as logic's connection: failures surface per request (503)
  redis.connect().catch(() => {});
  log.info(`Tasks are accepted (202) once ${env.REDIS_WAIT_REPLICAS} replica(s) confirm them (WAIT, ${env.REDIS_WAIT_TIMEOUT_MS} ms)`);
  return new ReplicationWait(redis, { replicas: env.REDIS_WAIT_REPLICAS, timeoutMs: env.REDIS_WAIT_TIMEOUT_MS });
}
