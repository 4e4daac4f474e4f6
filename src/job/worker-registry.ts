// Each job process says it is alive, so the dashboard can list workers: ZSET `workers` (member
// host:pid, score = last heartbeat ms) and HASH `worker:{host:pid}` (what it runs), every 5 s,
// the hash expiring after 30 s. Entries silent for an hour are pruned by any worker.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

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
  const startedAt = String(Date.now());
  const beat = async () => {
    const now = Date.now();
    await redis
      .multi()
      .zadd(keys.workers, now, id)
      .zremrangebyscore(keys.workers, '-inf', now - 3_600_000)
      .hset(workerInfoKey(keys.prefix, id), {
        host: hostname(),
        pid: String(process.pid),
        started_at: startedAt,
        consumers: String(info.consumers),
        concurrency: String(info.concurrency),
        backend: info.backend,
        types: info.types.join(','),
        inflight: String(inflight()),
      })
      .expire(workerInfoKey(keys.prefix, id), 30)
      .exec()
      .catch(() => {});
  };
  void beat();
  const timer = setInterval(() => void beat(), everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.multi().zrem(keys.workers, id).del(workerInfoKey(keys.prefix, id)).exec().catch(() => {});
  };
}
