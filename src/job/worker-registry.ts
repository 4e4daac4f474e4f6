// Each job process says it is alive, so the dashboard can list workers: ZSET `workers` (member
// host:pid, score = last heartbeat ms) and HASH `worker:{host:pid}` (what it runs), every 5 s,
// the hash expiring after 30 s. Entries silent for an hour are pruned by any worker.
//
// The two keys hash to different slots on a Redis Cluster (the worker id's `{…}` is a hash tag
// of its own), so they are written as per-slot batches, not one MULTI: a heartbeat half-written
// is harmless (the next one rewrites both, the dashboard shows a worker without details).
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { perSlot } from '../redis/batch.ts';

export interface WorkerInfo {
  consumers: number;
  concurrency: number;
  backend: string;
  types: string[];
}

export function workerInfoKey(prefix: string, id: string): string {
  return `${prefix}worker:${id}`;
}

export function startWorkerHeartbeat(redis: Redis, keys: { prefix: string; workers: string }, info: WorkerInfo, inflight: () => number, everyMs = 5000): () => Promise<void> {
  const id = `${hostname()}:${process.pid}`;
  const infoKey = workerInfoKey(keys.prefix, id);
  const startedAt = String(Date.now());
  const beat = async () => {
    const now = Date.now();
    await perSlot(redis, [
      { key: keys.workers, add: (p) => p.zadd(keys.workers, now, id).zremrangebyscore(keys.workers, '-inf', now - 3_600_000) },
      {
        key: infoKey,
        add: (p) =>
          p
            .hset(infoKey, {
              host: hostname(),
              pid: String(process.pid),
              started_at: startedAt,
              consumers: String(info.consumers),
              concurrency: String(info.concurrency),
              backend: info.backend,
              types: info.types.join(','),
              inflight: String(inflight()),
            })
            .expire(infoKey, 30),
      },
    ]).catch(() => {}); // Redis away: the next beat tries again; the dashboard shows the gap meanwhile.
  };
  void beat();
  const timer = setInterval(() => void beat(), everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await perSlot(redis, [
      { key: keys.workers, add: (p) => p.zrem(keys.workers, id) },
      { key: infoKey, add: (p) => p.del(infoKey) },
    ]).catch(() => {});
  };
}
