// Phase "scheduled" of bench/queue.ts: the cost of a delayed task, pushline's delay_ms against
// BullMQ's `delay` option, in the same run on the same redis-server. Workers run first (idle);
// N tasks are added with a delay (bulk), and the clock runs until all N completed. Reported:
// Redis CPU µs and bench-process CPU µs (adding + the in-process workers: the "job") per task,
// and how long after its due time the last task completed.
import type { Redis } from 'ioredis';
import { describeConfig, LABEL, openPeer, PEER_NAMES, type NewItem, type PeerName, type WorkConfig } from './peers.ts';
import { deferred, fmtInt, fmtRatio, withTimeout } from './util.ts';

type Row = [metric: string, pushline: string, bullmq: string, ratio: string];

export interface ScheduledPhaseOptions {
  port: number;
  admin: Redis;
  n: number;
  delayMs: number;
  configs: Record<PeerName, WorkConfig>;
  redisCpu: () => Promise<number>;
  flushall: () => Promise<void>;
  log: (line: string) => void;
}

interface Cost {
  redisUs: number;
  processUs: number;
  /** ms from the (last) due time to the last completion. */
  lateMs: number;
}

async function runOne(name: PeerName, o: ScheduledPhaseOptions): Promise<Cost> {
  await o.flushall();
  const peer = await openPeer(name, { port: o.port });
  let completed = 0;
  const all = deferred();
  const working = await peer.work(o.configs[name], () => {}, () => {
    if (++completed === o.n) all.resolve();
  });
  const cpu0 = await o.redisCpu();
  const proc0 = process.cpuUsage();
  const items: NewItem[] = Array.from({ length: o.n }, (_, i) => ({ priority: 1 + (i % 5), data: { i }, delayMs: o.delayMs }));
  for (let i = 0; i < items.length; i += 500) await peer.addBulk(items.slice(i, i + 500));
  const lastDue = Date.now() + o.delayMs;
  await withTimeout(all.promise, 300_000, `${LABEL[name]} completing ${o.n} delayed tasks`);
  const lateMs = Date.now() - lastDue;
  const proc = process.cpuUsage(proc0);
  const cpu1 = await o.redisCpu();
  await working.stop();
  await peer.close();
  return { redisUs: ((cpu1 - cpu0) / o.n) * 1e6, processUs: ((proc.user + proc.system) / o.n), lateMs };
}

export async function phaseScheduled(o: ScheduledPhaseOptions): Promise<Row[]> {
  o.log(`\n## scheduled — N=${o.n} tasks added with a ${o.delayMs} ms delay to idle workers (pushline ${describeConfig('pushline', o.configs.pushline)}; BullMQ ${describeConfig('bullmq', o.configs.bullmq)}), until all completed`);
  const cost = {} as Record<PeerName, Cost>;
  for (const name of PEER_NAMES) {
    cost[name] = await runOne(name, o);
    o.log(`  ${LABEL[name]}: ${cost[name].redisUs.toFixed(1)} µs Redis CPU/task, ${cost[name].processUs.toFixed(1)} µs bench-process CPU/task, last completed ${fmtInt(cost[name].lateMs)} ms after the last due time`);
  }
  await o.flushall();
  const p = cost.pushline;
  const b = cost.bullmq;
  return [
    ['delayed task add→completed, Redis CPU µs per task (↓)', p.redisUs.toFixed(1), b.redisUs.toFixed(1), fmtRatio(p.redisUs, b.redisUs)],
    ['delayed task add→completed, adding + worker process CPU µs per task (↓)', p.processUs.toFixed(1), b.processUs.toFixed(1), fmtRatio(p.processUs, b.processUs)],
    ['delayed tasks: last completion after the last due time, ms (↓)', fmtInt(p.lateMs), fmtInt(b.lateMs), fmtRatio(p.lateMs, b.lateMs)],
  ];
}
