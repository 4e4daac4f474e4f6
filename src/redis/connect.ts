// Builds ioredis connections from the validated config. Each role gets the options it needs:
// logic fails fast (so it answers 503 instead of hanging), workers wait out a Redis restart.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Env } from '../config/schema.ts';
import { SCRIPT_COMMANDS } from '../queue/scripts.ts';

export type RedisRole = 'command' | 'blocking' | 'api';

export interface RedisTarget {
  url?: string;
  host: string;
  port: number;
  db: number;
  password: string;
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster (then host, port, db and url are unused). */
  clusterNodes?: { host: string; port: number }[];
  /** REDIS_SENTINELS: the master is asked from these and followed across failovers (then host, port and url are unused). */
  sentinel?: SentinelTarget;
}

export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  name: string;
  password: string;
}

/** `host:port,host:port` (REDIS_CLUSTER_NODES, REDIS_SENTINELS), IPv6 hosts in brackets. */
export function parseHostPorts(list: string): { host: string; port: number }[] {
  return list.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(entry.slice(at + 1)) };
  });
}

export function redisTarget(env: Env): RedisTarget {
  return {
    ...(env.REDIS_URL ? { url: env.REDIS_URL } : {}),
    host: env.REDIS_HOST,
    port: env.REDIS_PORT,
    db: env.REDIS_DB,
    password: env.REDIS_PASSWORD,
    ...(env.REDIS_CLUSTER_NODES ? { clusterNodes: parseHostPorts(env.REDIS_CLUSTER_NODES) } : {}),
    ...(env.REDIS_SENTINELS
      ? { sentinel: { sentinels: parseHostPorts(env.REDIS_SENTINELS), name: env.REDIS_SENTINEL_NAME, password: env.REDIS_SENTINEL_PASSWORD } }
      : {}),
  };
}

export function describeTarget(target: RedisTarget): string {
  if (target.clusterNodes) return `cluster ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (target.sentinel) return `sentinel master ${target.sentinel.name} via ${target.sentinel.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}/${target.db}`;
  if (target.url) return target.url.replace(/\/\/[^@/]*@/, '//***@');
  return `${target.host}:${target.port}/${target.db}`;
}

export function createRedis(target: RedisTarget, role: RedisRole, name = 'pushline'): Redis {
  const options: RedisOptions = {
    // RESP2 keeps reply shapes identical to what redis-cli shows and what the Lua scripts return.
    protocol: 2,
    connectionName: `${name}:${role}`,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...(role === 'api'
      ? // Without an offline queue a command fails at once while Redis is away: logic answers 503.
        { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 5000 }
      : // Workers keep their commands queued and resend them when Redis is back.
        { maxRetriesPerRequest: null }),
    // Only logic's many small independent requests gain from it. ioredis keeps one auto-pipeline
    // in flight per connection, so on a worker's connection the consumers' claim and settle
    // calls would queue behind each other (measured: 35–43% fewer completed tasks/s).
    // Script calls stay out of it: the queue already merges enqueues (TaskQueue.enqueueOne), and
    // an auto-pipeline per script call only adds a Pipeline object (with a copy of every defined
    // script command) per call, measured at several µs per accepted request on /logic/send.
    ...(role === 'api' ? { enableAutoPipelining: true, autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS] } : {}),
  };
  if (target.clusterNodes) return createClusterClient(target, options, role);
  if (target.sentinel) return createSentinelClient(target, target.sentinel, options);
  if (!target.url) {
    options.host = target.host;
    options.port = target.port;
    options.db = target.db;
    if (target.password) options.password = target.password;
    return new Redis(options);
  }
  return new Redis(target.url, options);
}

/**
 * A Redis Cluster client (REDIS_CLUSTER_NODES). It has the same command API as a single
 * connection, and every key set pushline writes together is hash-tagged into one slot, so the
 * rest of the code takes it as a `Redis`. Reads go to masters (scaleReads 'master'): the queue
 * reads what it just wrote. ioredis follows MOVED/ASK and refreshes its slot map by itself.
 */
export function createClusterClient(target: RedisTarget, nodeOptions: RedisOptions, role: RedisRole): Redis {
  const { enableAutoPipelining, enableOfflineQueue, lazyConnect, retryStrategy, ...redisOptions } = nodeOptions;
  const options: ClusterOptions = {
    redisOptions: { ...redisOptions, ...(target.password ? { password: target.password } : {}) },
    scaleReads: 'master',
    lazyConnect: lazyConnect ?? true,
    // Script calls stay out of auto-pipelines: they would be grouped by their key count (scripts.ts SCRIPT_COMMANDS).
    ...(enableAutoPipelining ? { enableAutoPipelining, autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS] } : {}),
    ...(enableOfflineQueue === false ? { enableOfflineQueue: false } : {}),
    ...(role === 'api' ? {} : { clusterRetryStrategy: (times: number) => retryStrategy?.(times) ?? 1000 }),
  };
  return new Cluster(target.clusterNodes!, options) as unknown as Redis;
}

/**
 * A connection to whichever node the sentinels name master now. Three things make every role
 * follow a failover by itself:
 * - ioredis asks the sentinels for the master on every (re)connect and checks its ROLE;
 * - failoverDetector: a +switch-master from any sentinel drops the connection at once, instead
 *   of keeping it on a demoted master that stays reachable;
 * - a demoted master still accepts connections and answers writes with READONLY, and a
 *   blocked BZPOPMIN with UNBLOCKED: those reconnect (through the sentinels) and resend the
 *   command, which the old master did not execute. A connection without an offline queue (logic)
 *   fails the command instead, and the caller answers 503 until the new master is reached.
 */
function createSentinelClient(target: RedisTarget, sentinel: SentinelTarget, options: RedisOptions): Redis {
  return new Redis({
    ...options,
    sentinels: sentinel.sentinels,
    name: sentinel.name,
    role: 'master',
    db: target.db,
    ...(target.password ? { password: target.password } : {}),
    ...(sentinel.password ? { sentinelPassword: sentinel.password } : {}),
    failoverDetector: true,
    // Keep asking the sentinels while none answers (a sentinel restart), like retryStrategy does for a node.
    sentinelRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => (/^(READONLY|UNBLOCKED)\b/.test(err.message) ? 2 : false),
  });
}

/**
 * Connects a lazily created client at start-up. ioredis answers a refused first connection with
 * "Connection is closed." (and prints the cause as an unhandled error event): this keeps the
 * cause, so a process that cannot start says why in one line.
 */
export async function connectAtStart(redis: Redis): Promise<void> {
  let cause: Error | null = null;
  const remember = (err: Error) => (cause ??= err);
  redis.on('error', remember);
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`cannot connect to Redis: ${(cause ?? (err as Error)).message}`);
  } finally {
    redis.off('error', remember);
  }
}
