// Queue benchmark: pushline against BullMQ on the same redis-server in the same run.
//   npm run bench:queue                      (defaults: N=50000, latency 10 s at 1000/s)
//   BENCH_N=20000 BENCH_LATENCY_S=5 npm run bench:queue
// Phases: enqueue/s (one call per task, and bulk), completed/s (drain a pre-filled queue),
// add→start latency at a fixed rate (worker in a child process), Redis memory per waiting task.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/local/redis-server.ts';
import { PEERS, type Peer, type PeerName } from './lib/peers.ts';

const N = Number(process.env.BENCH_N ?? 50_000);
const MEMORY_N = Number(process.env.BENCH_MEMORY_N ?? 100_000);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_S ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const IN_FLIGHT = 256;
const BULK = 500;
/** Worker settings tried for completed/s; the best of each peer is reported. */
const CONFIGS: Record<PeerName, [number, number][]> = {
  pushline: [[4, 64], [4, 256]],
  bullmq: [[1, 50], [1, 200], [2, 200]],
};

const dir = mkdtempSync(join(tmpdir(), 'pushline-bench-'));
const redis = await startRedisServer({ dir, appendonly: true });
const admin = new Redis({ port: redis.port, host: '127.0.0.1', protocol: 2 });
const rows: [string, string, string, string][] = [];
const priority = (i: number) => 1 + (i % 5);

async function flush() {
  await admin.flushall();
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

async function addSingles(peer: Peer, n: number) {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        const i = next++;
        await peer.add(priority(i), { i });
      }
    }),
  );
}

async function addBulk(peer: Peer, n: number) {
  for (let i = 0; i < n; i += BULK) {
    const size = Math.min(BULK, n - i);
    await peer.addBulk(Array.from({ length: size }, (_, k) => ({ priority: priority(i + k), data: { i: i + k } })));
  }
}

async function enqueueRates(name: PeerName) {
  const peer = await PEERS[name]({ port: redis.port, consumers: 1, concurrency: 1 });
  await flush();
  const single = N / (await timed(() => addSingles(peer, N)));
  await flush();
  const bulk = N / (await timed(() => addBulk(peer, N)));
  await peer.close();
  return { single, bulk };
}

async function completedRate(name: PeerName) {
  let best = { rate: 0, settings: '' };
  for (const [consumers, concurrency] of CONFIGS[name]) {
    await flush();
    const peer = await PEERS[name]({ port: redis.port, consumers, concurrency });
    await addBulk(peer, N);
    let done = 0;
    let finish!: () => void;
    const all = new Promise<void>((resolve) => (finish = resolve));
    const seconds = await timed(async () => {
      await peer.work(() => {}, () => {
        if (++done === N) finish();
      });
      await all;
    });
    await peer.stopWork();
    await peer.close();
    const rate = N / seconds;
    console.log(`  ${name} completed/s with ${peer.settings}: ${Math.round(rate)}`);
    if (rate > best.rate) best = { rate, settings: peer.settings };
  }
  return best;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function latency(name: PeerName) {
  await flush();
  const total = RATE * LATENCY_SECONDS;
  const [consumers, concurrency] = name === 'pushline' ? [4, 16] : [1, 50];
  const child = fork(fileURLToPath(new URL('./lib/latency-worker.ts', import.meta.url)), [name, String(redis.port), String(total), String(consumers), String(concurrency)], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  const messages: { ready?: boolean; latencies?: number[] }[] = [];
  const waitMessage = (key: 'ready' | 'latencies') =>
    new Promise<void>((resolve, reject) => {
      const check = () => (messages.some((m) => m[key]) ? resolve() : undefined);
      child.on('message', (m) => (messages.push(m as never), check()));
      child.once('exit', (code) => (messages.some((m) => m[key]) ? resolve() : reject(new Error(`worker exited ${code}`))));
    });
  const ready = waitMessage('ready');
  const result = waitMessage('latencies');
  await ready;
  const peer = await PEERS[name]({ port: redis.port, consumers: 1, concurrency: 1 });
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    // Absolute schedule: a late send does not push every later one back.
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    void peer.add(priority(i), { t: process.hrtime.bigint().toString() });
  }
  await result;
  await peer.close();
  const sorted = messages.find((m) => m.latencies)!.latencies!.sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[sorted.length - 1]! };
}

async function memoryPerTask(name: PeerName) {
  await flush();
  const peer = await PEERS[name]({ port: redis.port, consumers: 1, concurrency: 1 });
  await peer.add(3, { i: 0 }); // scripts loaded, connections set up: not counted
  const used = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
  const before = await used();
  await addBulk(peer, MEMORY_N);
  const after = await used();
  await peer.close();
  return (after - before) / MEMORY_N;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

try {
  const info = await admin.info('server');
  console.log(
    `pushline vs BullMQ — redis ${/redis_version:(\S+)/.exec(info)![1]} (AOF on), node ${process.version}, ${cpus().length} CPUs, ` +
      `N=${N}, memory N=${MEMORY_N}, latency ${LATENCY_SECONDS} s at ${RATE}/s`,
  );
  const enq = { pushline: await enqueueRates('pushline'), bullmq: await enqueueRates('bullmq') };
  rows.push(['enqueue/s, one call per task (256 in flight)', fmt(enq.pushline.single), fmt(enq.bullmq.single), ratio(enq.pushline.single, enq.bullmq.single)]);
  rows.push([`enqueue/s, bulk of ${BULK}`, fmt(enq.pushline.bulk), fmt(enq.bullmq.bulk), ratio(enq.pushline.bulk, enq.bullmq.bulk)]);
  const done = { pushline: await completedRate('pushline'), bullmq: await completedRate('bullmq') };
  rows.push(['completed/s (drain pre-filled queue, best config)', fmt(done.pushline.rate), fmt(done.bullmq.rate), ratio(done.pushline.rate, done.bullmq.rate)]);
  const lat = { pushline: await latency('pushline'), bullmq: await latency('bullmq') };
  for (const k of ['p50', 'p90', 'p99', 'max'] as const) {
    rows.push([`add→start ${k} ms at ${RATE}/s`, fmt(lat.pushline[k], 3), fmt(lat.bullmq[k], 3), ratio(lat.pushline[k], lat.bullmq[k])]);
  }
  const mem = { pushline: await memoryPerTask('pushline'), bullmq: await memoryPerTask('bullmq') };
  rows.push(['Redis bytes per waiting task', fmt(mem.pushline), fmt(mem.bullmq), ratio(mem.pushline, mem.bullmq)]);

  console.log('');
  console.log(`| metric | pushline | BullMQ | pushline / BullMQ |`);
  console.log(`|---|---:|---:|---:|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('');
  console.log(`completed/s settings — pushline: ${done.pushline.settings}; BullMQ: ${done.bullmq.settings}`);
} finally {
  admin.disconnect();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
