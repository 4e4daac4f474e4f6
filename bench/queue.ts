// Queue benchmark: pushline against BullMQ on ONE fresh redis-server (AOF on, as in production),
// in one run, FLUSHALL between phases. Measures only; nothing is asserted. See bench/README.md.
//
//   npm run bench:queue                       # = node --import tsx bench/queue.ts
//   node --import tsx bench/queue.ts --n=50000 --latency-s=20
//   BENCH_N=5000 BENCH_LATENCY_S=3 BENCH_MEMORY_N=20000 npm run bench:queue     # quick
//   node --import tsx bench/queue.ts --cluster --shards=3 --n=20000  # pushline on a 3-master Redis Cluster, 3 queue shards
//
// Phases: 1 enqueue/s (one call per task, bounded in flight; bulk batches), 2 completed/s
// (drain a pre-filled queue, several worker settings each, best reported), 3 add→start latency
// at a fixed rate with the worker in a child process, 4 Redis bytes per waiting task; and, only
// when asked (--phases=wait), the cost of REDIS_WAIT_REPLICAS=1 vs 0 (bench/lib/wait-phase.ts);
// 5 groups: completed/s with 100 groups under a per-group limit vs BullMQ's limiter (bench/lib/groups-phase.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/local/redis-server.ts';
import type { FromWorker, ToWorker } from './lib/latency-worker.ts';
import { phaseWait } from './lib/wait-phase.ts';
import { phaseGroups } from './lib/groups-phase.ts';
import { phaseScheduled } from './lib/scheduled-phase.ts';
import {
  describeConfig,
  LABEL,
  openPeer,
  parseWorkConfig,
  PEER_NAMES,
  type NewItem,
  type Peer,
  type PeerName,
  type PeerOptions,
  type WorkConfig,
  type Working,
} from './lib/peers.ts';
import {
  Cleanup,
  deferred,
  fmtInt,
  fmtMs,
  fmtRatio,
  listSetting,
  numberSetting,
  percentile,
  pool,
  runBench,
  seededRandom,
  sleep,
  withTimeout,
} from './lib/util.ts';

// ---------------------------------------------------------------- settings

const N = numberSetting('n', 20_000);
const IN_FLIGHT = numberSetting('in-flight', 256);
const BULK_SIZES = listSetting('bulk', '100,500').map(Number);
const BULK_IN_FLIGHT = numberSetting('bulk-in-flight', 4);
const WARMUP_N = numberSetting('warmup-n', 2000);
const PUSHLINE_CONFIGS = listSetting('pushline-configs', '4x64,4x256').map(parseWorkConfig);
const BULLMQ_CONFIGS = listSetting('bullmq-configs', '1x50,1x200,2x50,2x200,2x200+keep1000').map(parseWorkConfig);
const RATE = numberSetting('rate', 1000);
const LATENCY_S = numberSetting('latency-s', 10);
const LATENCY_WARMUP_S = numberSetting('latency-warmup-s', 1);
const LATENCY_CONFIG: Record<PeerName, WorkConfig> = {
  pushline: parseWorkConfig(listSetting('latency-pushline', '4x16')[0] ?? '4x16'),
  bullmq: parseWorkConfig(listSetting('latency-bullmq', '1x64')[0] ?? '1x64'),
};
const MEMORY_N = numberSetting('memory-n', 100_000);
const PHASES = new Set(listSetting('phases', 'enqueue,completed,latency,memory,groups,scheduled'));
/** Phase "scheduled": tasks added with this delay (delay_ms / BullMQ `delay`), N of them. */
const SCHEDULED_N = numberSetting('scheduled-n', 5000);
const SCHEDULED_DELAY_MS = numberSetting('scheduled-delay-ms', 1000);
const SEED = numberSetting('seed', 42);
/**
 * Enqueue and completed/s run this many times, alternating which queue goes first (best kept);
 * the latency phase is split into this many runs, alternating too (samples pooled).
 */
const REPEAT = Math.max(1, Math.floor(numberSetting('repeat', 2)));

if (N < 1 || BULK_SIZES.some((b) => !(b >= 1))) throw new Error('--n and --bulk sizes must be ≥ 1');

// One priority sequence (random 1..5, seeded) shared by both queues and every phase.
const PRIORITIES = (() => {
  const rnd = seededRandom(SEED);
  return Uint8Array.from({ length: Math.max(N, MEMORY_N, WARMUP_N, Math.ceil(RATE * (LATENCY_S + LATENCY_WARMUP_S))) }, () => 1 + Math.floor(rnd() * 5));
})();
const item = (i: number): NewItem => ({ priority: PRIORITIES[i % PRIORITIES.length]!, data: { i } });

// ---------------------------------------------------------------- run state

const cleanup = new Cleanup();
let admin: Redis;
let port = 0;

type Row = [metric: string, pushline: string, bullmq: string, ratio: string];
const rows: Row[] = [];
const cpuRows: Row[] = [];
const notes: string[] = [];

function bullmqVersion(): string {
  try {
    return (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

function log(line: string): void {
  console.log(line);
}

async function persistence(): Promise<{ inProgress: boolean; rewrites: number }> {
  const info = await admin.info('persistence');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { inProgress: field('aof_rewrite_in_progress') === 1 || field('aof_rewrite_scheduled') === 1, rewrites: field('aof_rewrites') };
}

async function waitForRewrite(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await persistence()).inProgress && Date.now() < deadline) await sleep(20);
}

/**
 * FLUSHALL, then rewrite the (now empty) AOF. AOF stays on as in production, but the automatic
 * rewrite (a fork, at 64 MB of growth) is then due only after 64 MB of new writes instead of
 * landing in the middle of a later measurement because of earlier phases' writes.
 */
async function flushall(): Promise<void> {
  await admin.flushall();
  await waitForRewrite();
  await admin.bgrewriteaof();
  await sleep(20);
  await waitForRewrite();
}

/** Redis main-process CPU seconds (user + sys; AOF rewrite children excluded). */
async function redisCpu(): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

interface Measured {
  /** Tasks per second (wall clock). */
  rate: number;
  /** Redis main-thread CPU per task, µs. */
  cpuUs: number;
}

/** Times fn (n tasks) and reads Redis CPU around it; notes an AOF rewrite that ran meanwhile. */
async function measure(n: number, what: string, fn: () => Promise<unknown>): Promise<Measured> {
  const rewrites = (await persistence()).rewrites;
  const cpu0 = await redisCpu();
  const start = process.hrtime.bigint();
  await fn();
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu1 = await redisCpu();
  if ((await persistence()).rewrites !== rewrites) notes.push(`an automatic AOF rewrite ran during: ${what}`);
  return { rate: n / elapsed, cpuUs: ((cpu1 - cpu0) / n) * 1e6 };
}

/** Peers in the order of repetition `rep`: pushline first on even runs, BullMQ first on odd. */
function order(rep: number): PeerName[] {
  return rep % 2 === 0 ? [...PEER_NAMES] : [...PEER_NAMES].reverse();
}

/** Keeps the best rate and the lowest Redis CPU seen for one measurement over repetitions. */
class Best {
  private readonly all = new Map<string, Measured[]>();
  put(key: string, m: Measured): void {
    const list = this.all.get(key) ?? [];
    list.push(m);
    this.all.set(key, list);
  }
  rate(key: string): number {
    return Math.max(...(this.all.get(key) ?? []).map((m) => m.rate));
  }
  cpu(key: string): number {
    return Math.min(...(this.all.get(key) ?? []).map((m) => m.cpuUs));
  }
  rates(key: string): string {
    return (this.all.get(key) ?? []).map((m) => fmtInt(m.rate)).join(', ');
  }
}

async function peer(name: PeerName, extra: Omit<PeerOptions, 'port'> = {}): Promise<Peer> {
  const p = await openPeer(name, { port, ...extra });
  const remove = cleanup.add(`close ${name} producer`, () => p.close());
  const close = p.close.bind(p);
  p.close = async () => {
    remove();
    await close();
  };
  return p;
}

async function addSingles(p: Peer, n: number): Promise<void> {
  await pool(n, IN_FLIGHT, (i) => p.add(item(i)));
}

async function addBulk(p: Peer, n: number, size: number, inFlight = BULK_IN_FLIGHT): Promise<void> {
  const batches = Math.ceil(n / size);
  await pool(batches, inFlight, (b) => {
    const from = b * size;
    return p.addBulk(Array.from({ length: Math.min(size, n - from) }, (_, k) => item(from + k)));
  });
}

/** JIT and script-cache warm-up on a fresh connection, then wiped: not measured. */
async function warmUp(p: Peer): Promise<void> {
  await addSingles(p, WARMUP_N);
  await addBulk(p, WARMUP_N, 100);
  await flushall();
}

// ---------------------------------------------------------------- phase 1: enqueue/s

async function phaseEnqueue(): Promise<void> {
  log(
    `\n## 1. enqueue/s — N=${N}; single adds with ${IN_FLIGHT} in flight; bulk ${BULK_SIZES.join('/')} per call, ` +
      `${BULK_IN_FLIGHT} calls in flight; ${REPEAT} run(s), alternating order, best kept`,
  );
  const best = new Best();
  const key = (name: PeerName | 'bullmq-auto', what: string) => `${name}:${what}`;
  for (let rep = 0; rep < REPEAT; rep++) {
    for (const name of order(rep)) {
      const p = await peer(name);
      await flushall();
      await warmUp(p);
      const single = await measure(N, `${LABEL[name]} single enqueue`, () => addSingles(p, N));
      best.put(key(name, 'single'), single);
      const line = [`single ${fmtInt(single.rate)}/s (${single.cpuUs.toFixed(1)} µs Redis CPU/task)`];
      for (const size of BULK_SIZES) {
        await flushall();
        const bulk = await measure(N, `${LABEL[name]} bulk ×${size} enqueue`, () => addBulk(p, N, size));
        best.put(key(name, `bulk${size}`), bulk);
        line.push(`bulk ×${size} ${fmtInt(bulk.rate)}/s (${bulk.cpuUs.toFixed(1)} µs)`);
      }
      await p.close();
      await flushall();
      if (name === 'bullmq') {
        // Fairness check: pushline's command connection auto-pipelines; BullMQ's does not by default.
        const bp = await peer('bullmq', { autoPipelining: true });
        await warmUp(bp);
        const auto = await measure(N, 'BullMQ (auto-pipelining) single enqueue', () => addSingles(bp, N));
        best.put(key('bullmq-auto', 'single'), auto);
        line.push(`single with enableAutoPipelining ${fmtInt(auto.rate)}/s`);
        await bp.close();
        await flushall();
      }
      log(`  run ${rep + 1} ${LABEL[name]}: ${line.join(', ')}`);
    }
  }

  const row = (metric: string, what: string, other: PeerName | 'bullmq-auto' = 'bullmq') => {
    const a = best.rate(key('pushline', what));
    const b = best.rate(key(other, what));
    rows.push([metric, fmtInt(a), fmtInt(b), fmtRatio(a, b)]);
  };
  row(`enqueue/s, one call per task, ${IN_FLIGHT} in flight (↑)`, 'single');
  row(`  same, BullMQ connection with enableAutoPipelining (↑)`, 'single', 'bullmq-auto');
  for (const size of BULK_SIZES) row(`enqueue/s, bulk ×${size} (enqueue / addBulk), ${BULK_IN_FLIGHT} in flight (↑)`, `bulk${size}`);
  for (const what of ['single', ...BULK_SIZES.map((b) => `bulk${b}`)]) {
    const a = best.cpu(key('pushline', what));
    const b = best.cpu(key('bullmq', what));
    cpuRows.push([`Redis CPU µs per task, enqueue ${what === 'single' ? 'one call per task' : `bulk ×${what.slice(4)}`} (↓)`, a.toFixed(1), b.toFixed(1), fmtRatio(a, b)]);
  }
  if (REPEAT > 1) {
    for (const name of PEER_NAMES) {
      notes.push(`enqueue/s ${LABEL[name]} per run — single: ${best.rates(key(name, 'single'))}; ${BULK_SIZES.map((b) => `bulk ×${b}: ${best.rates(key(name, `bulk${b}`))}`).join('; ')}`);
    }
  }
}

// ---------------------------------------------------------------- phase 2: completed/s

async function drainOnce(name: PeerName, cfg: WorkConfig): Promise<Measured> {
  await flushall();
  const p = await peer(name);
  await addBulk(p, N, 500);
  const waiting = await p.waiting();
  if (waiting !== N) throw new Error(`${LABEL[name]}: pre-fill left ${waiting} waiting tasks, expected ${N}`);
  await sleep(300); // let the AOF write of the pre-fill settle before the clock starts

  let completed = 0;
  const all = deferred();
  let working: Working | null = null;
  let removeStop = () => {};
  // The clock includes starting the workers (connecting): a few ms for both.
  const result = await measure(N, `${LABEL[name]} completed/s, ${describeConfig(name, cfg)}`, async () => {
    working = await p.work(
      cfg,
      () => {},
      () => {
        if (++completed === N) all.resolve();
      },
    );
    const w = working;
    removeStop = cleanup.add(`stop ${name} workers`, () => w.stop());
    await withTimeout(all.promise, 300_000, `${LABEL[name]} completing ${N} tasks`);
  });
  removeStop();
  await (working as Working | null)?.stop();
  const left = await p.unfinished();
  if (left !== 0) notes.push(`WARNING: ${LABEL[name]} (${describeConfig(name, cfg)}) left ${left} unfinished tasks after ${N} completions`);
  await p.close();
  return result;
}

async function phaseCompleted(): Promise<void> {
  log(`\n## 2. completed/s — pre-fill N=${N} (not timed), start workers, time until all N completed; ${REPEAT} run(s) per config, best kept`);
  const configs: Record<PeerName, WorkConfig[]> = { pushline: PUSHLINE_CONFIGS, bullmq: BULLMQ_CONFIGS };
  const best = new Best();
  const key = (name: PeerName, cfg: WorkConfig) => `${name}:${describeConfig(name, cfg)}`;
  for (let rep = 0; rep < REPEAT; rep++) {
    for (const name of order(rep)) {
      for (const cfg of configs[name]) {
        const m = await drainOnce(name, cfg);
        best.put(key(name, cfg), m);
        log(`  run ${rep + 1} ${LABEL[name]}, ${describeConfig(name, cfg)}: ${fmtInt(m.rate)}/s (${m.cpuUs.toFixed(1)} µs Redis CPU/task)`);
      }
    }
  }
  await flushall();
  const winner = {} as Record<PeerName, WorkConfig>;
  for (const name of PEER_NAMES) {
    let top = configs[name][0]!;
    for (const cfg of configs[name]) {
      if (best.rate(key(name, cfg)) > best.rate(key(name, top))) top = cfg;
      notes.push(`completed/s ${LABEL[name]}, ${describeConfig(name, cfg)}: ${best.rates(key(name, cfg))} (Redis CPU ${best.cpu(key(name, cfg)).toFixed(1)} µs/task)`);
    }
    winner[name] = top;
  }
  const a = best.rate(key('pushline', winner.pushline));
  const b = best.rate(key('bullmq', winner.bullmq));
  rows.push(['completed/s, drain pre-filled queue, best config (↑)', fmtInt(a), fmtInt(b), fmtRatio(a, b)]);
  const ca = best.cpu(key('pushline', winner.pushline));
  const cb = best.cpu(key('bullmq', winner.bullmq));
  cpuRows.push(['Redis CPU µs per completed task, best config (↓)', ca.toFixed(1), cb.toFixed(1), fmtRatio(ca, cb)]);
  notes.push(`completed/s best config — pushline: ${describeConfig('pushline', winner.pushline)}; BullMQ: ${describeConfig('bullmq', winner.bullmq)}`);
}

// ---------------------------------------------------------------- phase 3: add→start latency

interface LatencyRun {
  /** add→start ms of every measured (post-warm-up) task that started. */
  samples: number[];
  /** How far behind its schedule each measured add was issued, ms. */
  lags: number[];
  missing: number;
  sendRate: number;
}

function forkWorker(name: PeerName, total: number, cfg: WorkConfig): { child: ChildProcess; ready: Promise<void>; result: Promise<Extract<FromWorker, { type: 'result' }>> } {
  const script = fileURLToPath(new URL('./lib/latency-worker.ts', import.meta.url));
  const cfgText = `${cfg.workers}x${cfg.concurrency}${cfg.removeOnComplete !== undefined ? `+keep${cfg.removeOnComplete}` : ''}`;
  const child = fork(script, [name, String(port), String(total), cfgText], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = deferred<number | null>();
  child.once('exit', (code) => exited.resolve(code));
  child.on('error', (err) => console.error(`[bench] ${LABEL[name]} latency worker: ${String(err)}`));
  cleanup.add(`kill ${name} latency worker`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const code = await Promise.race([exited.promise, sleep(3000).then(() => 'timeout' as const)]);
    if (code === 'timeout') child.kill('SIGKILL');
  });
  const ready = deferred();
  const result = deferred<Extract<FromWorker, { type: 'result' }>>();
  // Either may reject with nobody waiting on it yet (the child died early): not a crash.
  ready.promise.catch(() => {});
  result.promise.catch(() => {});
  child.on('message', (m: FromWorker) => {
    if (m.type === 'ready') ready.resolve();
    else if (m.type === 'result') result.resolve(m);
  });
  void exited.promise.then((code) => {
    const err = new Error(`${LABEL[name]} latency worker exited (code ${code}) before reporting`);
    ready.reject(err);
    result.reject(err);
  });
  return { child, ready: ready.promise, result: result.promise };
}

async function latencyOnce(name: PeerName, seconds: number): Promise<LatencyRun> {
  await flushall();
  const warm = Math.round(RATE * LATENCY_WARMUP_S);
  const measured = Math.round(RATE * seconds);
  const total = warm + measured;
  const worker = forkWorker(name, total, LATENCY_CONFIG[name]);
  await withTimeout(worker.ready, 60_000, `${LABEL[name]} latency worker start`);
  const p = await peer(name);
  await sleep(200);

  // Producer: task i is due at start + i/RATE (absolute schedule: lateness does not accumulate);
  // every task already due is sent at once. The add time is read right before each add call.
  const intervalNs = 1e9 / RATE;
  const lags = new Float64Array(total);
  const sends: Promise<unknown>[] = [];
  let failures = 0;
  const start = process.hrtime.bigint();
  let i = 0;
  while (i < total) {
    const nowNs = Number(process.hrtime.bigint() - start);
    while (i < total && i * intervalNs <= nowNs) {
      const t = process.hrtime.bigint();
      lags[i] = (Number(t - start) - i * intervalNs) / 1e6;
      sends.push(p.add({ priority: PRIORITIES[i % PRIORITIES.length]!, data: { i, t: t.toString() } }).catch(() => void failures++));
      i++;
    }
    if (i < total) {
      const waitMs = (i * intervalNs - Number(process.hrtime.bigint() - start)) / 1e6;
      await sleep(Math.max(0, waitMs));
    }
  }
  const sendSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(sends);
  if (failures > 0) notes.push(`WARNING: ${LABEL[name]} latency producer: ${failures} adds failed`);

  let result;
  try {
    result = await withTimeout(worker.result, 30_000, `${LABEL[name]} latency worker seeing all ${total} tasks`);
  } catch (err) {
    if (!worker.child.connected) throw err;
    // Ask for what it has; a missing task is reported, not hidden.
    worker.child.send({ type: 'stop' } satisfies ToWorker);
    result = await withTimeout(worker.result, 10_000, `${LABEL[name]} latency worker partial result`);
    notes.push(`WARNING: ${LABEL[name]} latency: ${String(err)}`);
  }
  await p.close();
  await withTimeout(new Promise((r) => (worker.child.exitCode !== null ? r(null) : worker.child.once('exit', r))), 15_000, `${LABEL[name]} latency worker exit`);
  if (result.duplicates > 0) notes.push(`${LABEL[name]} latency: ${result.duplicates} tasks started more than once`);

  const samples = result.latencies.slice(warm).filter((v) => v >= 0);
  return { samples, lags: Array.from(lags.slice(warm)), missing: measured - samples.length, sendRate: total / sendSeconds };
}

async function phaseLatency(): Promise<void> {
  const runs = REPEAT;
  const perRun = LATENCY_S / runs;
  log(
    `\n## 3. add→start latency — ${RATE}/s for ${LATENCY_S} s per queue, as ${runs} run(s) of ${perRun} s in alternating order ` +
      `(each after ${LATENCY_WARMUP_S} s of warm-up, discarded), samples pooled; worker in a child process ` +
      `(pushline ${describeConfig('pushline', LATENCY_CONFIG.pushline)}; BullMQ ${describeConfig('bullmq', LATENCY_CONFIG.bullmq)})`,
  );
  const pooled: Record<PeerName, { samples: number[]; lags: number[]; missing: number; rates: number[] }> = {
    pushline: { samples: [], lags: [], missing: 0, rates: [] },
    bullmq: { samples: [], lags: [], missing: 0, rates: [] },
  };
  const summary = (values: number[]) => {
    const sorted = Float64Array.from(values).sort();
    return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
  };
  for (let rep = 0; rep < runs; rep++) {
    for (const name of order(rep)) {
      const run = await latencyOnce(name, perRun);
      const into = pooled[name];
      into.samples.push(...run.samples);
      into.lags.push(...run.lags);
      into.missing += run.missing;
      into.rates.push(run.sendRate);
      const s = summary(run.samples);
      const lag = summary(run.lags);
      log(
        `  run ${rep + 1} ${LABEL[name]}: p50 ${fmtMs(s.p50)} p90 ${fmtMs(s.p90)} p99 ${fmtMs(s.p99)} max ${fmtMs(s.max)} ms ` +
          `(${run.samples.length} samples, ${run.missing} missing; producer ${fmtInt(run.sendRate)}/s, behind schedule p99 ${fmtMs(lag.p99)} max ${fmtMs(lag.max)} ms)`,
      );
    }
  }
  await flushall();
  const res = { pushline: summary(pooled.pushline.samples), bullmq: summary(pooled.bullmq.samples) };
  for (const name of PEER_NAMES) {
    const p = pooled[name];
    const lag = summary(p.lags);
    notes.push(
      `latency ${LABEL[name]}: ${p.samples.length} samples pooled over ${runs} run(s), ${p.missing} missing; producer ${p.rates.map(fmtInt).join(', ')}/s, ` +
        `adds behind schedule p99 ${fmtMs(lag.p99)} ms, max ${fmtMs(lag.max)} ms`,
    );
  }
  for (const k of ['p50', 'p90', 'p99', 'max'] as const) {
    rows.push([`add→start latency ${k}, ms, at ${RATE}/s (↓)`, fmtMs(res.pushline[k]), fmtMs(res.bullmq[k]), fmtRatio(res.pushline[k], res.bullmq[k])]);
  }
}

// ---------------------------------------------------------------- phase 4: memory per waiting task

async function usedMemory(): Promise<number> {
  const info = await admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

async function memoryOnce(name: PeerName): Promise<number> {
  await flushall();
  const p = await peer(name);
  // Load the scripts (script cache is not freed by FLUSHALL) and any one-time state, then wipe.
  await p.add(item(0));
  await p.addBulk([item(1), item(2)]);
  await flushall();
  await sleep(500);
  const before = await usedMemory();
  await addBulk(p, MEMORY_N, 500);
  await sleep(500); // AOF buffer and client buffers drained
  const after = await usedMemory();
  const waiting = await p.waiting();
  if (waiting !== MEMORY_N) notes.push(`WARNING: ${LABEL[name]} memory phase: ${waiting} waiting, expected ${MEMORY_N}`);
  const parts: string[] = [];
  for (const { label, key } of await p.memoryKeys(admin)) {
    const bytes = Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    parts.push(`${label} ${fmtInt(bytes)} B`);
  }
  notes.push(`memory ${LABEL[name]}: used_memory ${fmtInt(before)} → ${fmtInt(after)} for ${MEMORY_N} waiting; MEMORY USAGE: ${parts.join(', ')}`);
  await p.close();
  await flushall();
  return (after - before) / MEMORY_N;
}

async function phaseMemory(): Promise<void> {
  log(`\n## 4. Redis memory per waiting task — ${MEMORY_N} tasks enqueued (bulk ×500), no workers; Δused_memory / N`);
  const res = {} as Record<PeerName, number>;
  for (const name of PEER_NAMES) {
    res[name] = await memoryOnce(name);
    log(`  ${LABEL[name]}: ${fmtInt(res[name])} bytes per waiting task`);
  }
  rows.push(['Redis bytes per waiting task (↓)', fmtInt(res.pushline), fmtInt(res.bullmq), fmtRatio(res.pushline, res.bullmq)]);
}

// ---------------------------------------------------------------- main

const startedAt = Date.now();
const loadAtStart = loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-bench-'));
  cleanup.add('remove temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const server = await startRedisServer({ dir, appendonly: true });
  cleanup.add('stop redis-server', () => withTimeout(server.stop(), 10_000, 'redis-server SIGTERM').catch(() => server.kill()));
  port = server.port;
  admin = new Redis({ host: '127.0.0.1', port, protocol: 2, maxRetriesPerRequest: null, connectionName: 'bench-admin' });
  cleanup.add('close admin connection', () => admin.quit().catch(() => admin.disconnect()));

  const version = /^redis_version:(\S+)/m.exec(await admin.info('server'))?.[1] ?? '?';
  const cpuModel = cpus()[0]?.model.trim() ?? '?';
  const header =
    `pushline vs BullMQ ${bullmqVersion()} — redis-server ${version} (appendonly yes, appendfsync everysec) on 127.0.0.1:${port}, ` +
    `node ${process.version}, ${availableParallelism()} CPUs (${cpuModel}); ` +
    `N=${N} (enqueue, completed), latency ${RATE}/s × ${LATENCY_S} s, memory N=${MEMORY_N}; priorities random 1..5 (seed ${SEED}), BullMQ priority = 6 − p`;
  log(header);
  log(`load average at start ${loadAtStart}${loadavg()[0]! > availableParallelism() ? ' — WARNING: the machine is busy; numbers will be noisy' : ''}`);

  if (PHASES.has('enqueue')) await phaseEnqueue();
  if (PHASES.has('completed')) await phaseCompleted();
  if (PHASES.has('latency')) await phaseLatency();
  if (PHASES.has('memory')) await phaseMemory();
  // 100 groups under a per-group limit vs BullMQ's (queue-wide) rate limiter (bench/lib/groups-phase.ts).
  if (PHASES.has('groups')) await phaseGroups({ port, n: N, log, measure, flushall, rows, cpuRows, notes });
  if (PHASES.has('scheduled')) {
    const configs = { pushline: PUSHLINE_CONFIGS[0]!, bullmq: BULLMQ_CONFIGS[BULLMQ_CONFIGS.length > 3 ? 3 : 0]! };
    cpuRows.push(...(await phaseScheduled({ port, admin, n: SCHEDULED_N, delayMs: SCHEDULED_DELAY_MS, configs, redisCpu, flushall, log })));
  }
  // Not in the default phases: it starts a master + replica of its own (bench/lib/wait-phase.ts).
  if (PHASES.has('wait')) await phaseWait(log);

  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  log('\n' + header);
  log(`load average at start ${loadAtStart}, at end ${load}; bench wall time ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
  const all: Row[] = [...rows, ...cpuRows];
  const table: Row[] = [['metric', 'pushline', 'BullMQ', 'ratio (pushline / BullMQ)'], ...all];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...table.map((r) => r[c]!.length)));
  const line = (r: Row) => `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  log(line(table[0]!));
  log(`|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of all) log(line(r));
  log('\n(↑ higher is better, ↓ lower is better; throughput = best of the runs, Redis CPU = lowest of the runs)');
  for (const n of notes) log(`- ${n}`);
}

// --cluster: pushline alone on a local 3-master Redis Cluster, --shards=N queue shards (bench/lib/cluster.ts).
if (process.argv.includes('--cluster') || process.env.BENCH_CLUSTER === '1') {
  const { runClusterBench } = await import('./lib/cluster.ts');
  const cfg = parseWorkConfig(listSetting('pushline-configs', '4x64')[0] ?? '4x64');
  await runBench(cleanup, () => runClusterBench({ shards: numberSetting('shards', 1), n: N, workers: cfg.workers, concurrency: cfg.concurrency, log }));
} else {
  await runBench(cleanup, main);
}
