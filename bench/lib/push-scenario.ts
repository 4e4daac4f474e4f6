// The end-to-end scenario both contenders run (pushline and the socket.io peer): an HTTP POST per
// room message, measured viewers that record every receipt, idle room members that only
// receive, and CPU per message of every process and of redis-server. Two phases:
//   saturation — N messages posted as fast as `connections` keep-alive connections allow;
//                sustained messages/s until the last viewer has the last message;
//   latency    — a fixed rate (each send at its absolute scheduled time), receipt − send.
// Message content is "<tag>:<index>:<performance.now() at send>" (tags: p probe, w warm-up,
// s saturation, m latency), so sender and receivers read the same clock.
import type { Redis } from 'ioredis';
import { Pool } from 'undici';
import { CpuMeter, redisCommandCalls, summary } from './push-common.ts';
import { deferred, pool, sleep } from './util.ts';

/** A running contender: where to POST, who to measure, which processes to bill. */
export interface Stack {
  readonly label: string;
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly acceptedStatus: number;
  body(content: string): string;
  readonly viewers: number;
  /** Processes whose CPU is billed to the messages; the bench process is added by the scenario. */
  readonly procs: readonly (readonly [name: string, pid: number])[];
  /** A connection to the redis-server this stack uses (INFO cpu). */
  readonly redis: Redis;
  /** Why a probe may not arrive (a child exited), or null. */
  health(): string | null;
  /** pushline: running totals of the job's pushline_push_batch_messages histogram (sum and count per stage). */
  batchTotals?(): Promise<BatchTotals>;
  stop(): Promise<void>;
}

export interface BatchTotals {
  routing: { sum: number; count: number };
  grpcCall: { sum: number; count: number };
}

/** Mean messages per routing read and per gRPC call between two readings of the totals. */
function batchMeans(before: BatchTotals | undefined, after: BatchTotals | undefined): ScenarioResult['batches'] {
  if (!before || !after) return undefined;
  const mean = (a: { sum: number; count: number }, b: { sum: number; count: number }) => (b.count > a.count ? (b.sum - a.sum) / (b.count - a.count) : 0);
  return { routing: mean(before.routing, after.routing), grpcCall: mean(before.grpcCall, after.grpcCall) };
}

interface Run {
  tag: string;
  total: number;
  got: Uint8Array[];
  expected: number;
  received: number;
  duplicates: number;
  lastAt: number;
  samples: number[];
  /** Latency samples by the second of sending (fixed-rate runs only). */
  bySecond: number[][];
  perSecond: number;
  done: ReturnType<typeof deferred<undefined>>;
}

/** Every viewer's receipts; the stacks call receive() for each message content a viewer got. */
export class Receipts {
  probes = 0;
  private run: Run | null = null;
  constructor(readonly viewers: number) {}

  start(tag: string, total: number, perSecond = Infinity): Run {
    const run: Run = {
      tag, total, got: Array.from({ length: this.viewers }, () => new Uint8Array(total)), expected: total * this.viewers,
      received: 0, duplicates: 0, lastAt: 0, samples: [], bySecond: [], perSecond, done: deferred<undefined>(),
    };
    if (run.expected === 0) run.done.resolve(undefined);
    this.run = run;
    return run;
  }

  receive(viewer: number, content: string): void {
    const now = performance.now();
    const [tag, index, sentAt] = content.split(':');
    if (tag === 'p') {
      this.probes++;
      return;
    }
    const r = this.run;
    if (!r || tag !== r.tag) return;
    const i = Number(index);
    const seen = r.got[viewer];
    if (!seen || !(i >= 0 && i < r.total)) return;
    if (seen[i]) {
      r.duplicates++;
      return;
    }
    seen[i] = 1;
    r.lastAt = now;
    const ms = now - Number(sentAt);
    r.samples.push(ms);
    if (Number.isFinite(r.perSecond)) (r.bySecond[Math.floor(i / r.perSecond)] ??= []).push(ms);
    if (++r.received === r.expected) r.done.resolve(undefined);
  }
}

/** POSTs one message and records its answer time; errors are counted, never thrown. */
class Poster {
  readonly http: Pool;
  errors = 0;
  firstError = '';
  times: number[] = [];
  constructor(private readonly stack: Stack, connections: number) {
    this.http = new Pool(stack.origin, { connections });
  }
  async post(content: string, record: boolean): Promise<void> {
    const started = performance.now();
    try {
      const res = await this.http.request({ path: this.stack.path, method: 'POST', headers: this.stack.headers, body: this.stack.body(content) });
      const text = await res.body.text();
      if (res.statusCode !== this.stack.acceptedStatus) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      if (record) this.times.push(performance.now() - started);
    } catch (err) {
      this.errors++;
      this.firstError ||= String(err);
    }
  }
  close(): Promise<void> {
    return this.http.close();
  }
}

/** Sends probes until one reaches every viewer (job connected, comets registered, rooms joined). */
export async function waitUntilReady(stack: Stack, receipts: Receipts, poster: Poster, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  receipts.probes = 0;
  while (receipts.probes < stack.viewers) {
    const problem = stack.health();
    if (problem) throw new Error(`${stack.label}: ${problem}`);
    if (performance.now() > deadline) throw new Error(`${stack.label}: no probe message reached all ${stack.viewers} viewers within ${timeoutMs / 1000} s`);
    await poster.post(`p:0:${performance.now()}`, false);
    await sleep(200);
  }
}

export interface CpuShare { name: string; usPerMessage: number; seconds: number }

export interface ScenarioResult {
  messages: number;
  seconds: number;
  /** Messages per second until the last viewer had the last message. */
  rate: number;
  missing: number;
  duplicates: number;
  httpErrors: number;
  firstHttpError: string;
  http: ReturnType<typeof summary>;
  latency: ReturnType<typeof summary>;
  latencyBySecond: number[];
  cpu: CpuShare[];
  cpuTotalUs: number;
  /** Fixed-rate runs: how far behind schedule sends went out. */
  sendLag?: ReturnType<typeof summary>;
  /** pushline: mean room messages per routing read and per gRPC call over the measured run. */
  batches?: { routing: number; grpcCall: number };
  /** Redis commands per message over the measured run, most called first (INFO commandstats). */
  redisCommands: { total: number; top: [command: string, perMessage: number][] };
}

/** Commands per message between two readings of INFO commandstats (the readings themselves left out). */
function commandsPerMessage(before: Map<string, number>, after: Map<string, number>, messages: number): ScenarioResult['redisCommands'] {
  const per = [...after]
    .filter(([command]) => command !== 'info')
    .map(([command, calls]) => [command, (calls - (before.get(command) ?? 0)) / Math.max(1, messages)] as [string, number])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  return { total: per.reduce((a, [, n]) => a + n, 0), top: per.slice(0, 8) };
}

function cpuShares(used: { name: string; seconds: number }[], messages: number): { cpu: CpuShare[]; total: number } {
  const cpu = used.map((u) => ({ name: u.name, seconds: u.seconds, usPerMessage: (u.seconds / Math.max(1, messages)) * 1e6 }));
  return { cpu, total: cpu.reduce((a, c) => a + c.usPerMessage, 0) };
}

function meterFor(stack: Stack): CpuMeter {
  return new CpuMeter([...stack.procs, ['bench', process.pid]], stack.redis);
}

async function finish(run: Run, timeoutMs: number): Promise<void> {
  await Promise.race([run.done.promise, sleep(timeoutMs)]);
}

/** Saturation: `messages` posted by `connections` lanes back to back; clock stops at the last receipt. */
export async function runSaturation(
  stack: Stack, receipts: Receipts, opts: { messages: number; warmup: number; connections: number; timeoutS: number },
): Promise<ScenarioResult> {
  const poster = new Poster(stack, opts.connections);
  try {
    await waitUntilReady(stack, receipts, poster);
    const warm = receipts.start('w', opts.warmup);
    await pool(opts.warmup, opts.connections, (i) => poster.post(`w:${i}:${performance.now()}`, false));
    await finish(warm, opts.timeoutS * 1000);
    poster.errors = 0;
    poster.firstError = '';

    const run = receipts.start('s', opts.messages);
    const meter = meterFor(stack);
    const batchesBefore = await stack.batchTotals?.();
    const commandsBefore = await redisCommandCalls(stack.redis);
    await meter.start();
    const t0 = performance.now();
    await pool(opts.messages, opts.connections, (i) => poster.post(`s:${i}:${performance.now()}`, true));
    await finish(run, opts.timeoutS * 1000);
    const end = run.received === run.expected ? run.lastAt : performance.now();
    const { cpu, total } = cpuShares(await meter.stop(), opts.messages);
    const redisCommands = commandsPerMessage(commandsBefore, await redisCommandCalls(stack.redis), opts.messages);
    const batches = batchMeans(batchesBefore, await stack.batchTotals?.());
    const seconds = (end - t0) / 1000;
    return {
      messages: opts.messages, seconds, rate: opts.messages / seconds, missing: run.expected - run.received, duplicates: run.duplicates,
      httpErrors: poster.errors, firstHttpError: poster.firstError, http: summary(poster.times), latency: summary(run.samples),
      latencyBySecond: [], cpu, cpuTotalUs: total, redisCommands, ...(batches ? { batches } : {}),
    };
  } finally {
    await poster.close();
  }
}

/** Fixed rate: each send at its absolute time; late sends do not shift later ones. */
async function produce(poster: Poster, n: number, rate: number, tag: string, record: boolean) {
  const lags: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now() + 5;
  const gap = 1000 / rate;
  for (let i = 0; i < n; ) {
    const now = performance.now();
    const due = start + i * gap;
    if (now < due) {
      await sleep(Math.max(0, Math.floor(due - now)));
      continue;
    }
    while (i < n && start + i * gap <= now) {
      const at = performance.now();
      lags.push(at - (start + i * gap));
      pending.push(poster.post(`${tag}:${i}:${at}`, record));
      i++;
    }
  }
  await Promise.all(pending);
  return { lags, seconds: (performance.now() - start) / 1000 };
}

/** Latency at a fixed rate; CPU is billed from the first measured send until the last receipt. */
export async function runLatency(
  stack: Stack, receipts: Receipts, opts: { rate: number; seconds: number; warmupS: number; connections: number; timeoutS: number },
): Promise<ScenarioResult> {
  const poster = new Poster(stack, opts.connections);
  try {
    await waitUntilReady(stack, receipts, poster);
    const warmN = Math.round(opts.rate * opts.warmupS);
    const warm = receipts.start('w', warmN);
    await produce(poster, warmN, opts.rate, 'w', false);
    await finish(warm, opts.timeoutS * 1000);
    poster.errors = 0;
    poster.firstError = '';

    const total = Math.round(opts.rate * opts.seconds);
    const run = receipts.start('m', total, opts.rate);
    const meter = meterFor(stack);
    const batchesBefore = await stack.batchTotals?.();
    const commandsBefore = await redisCommandCalls(stack.redis);
    await meter.start();
    const t0 = performance.now();
    const sent = await produce(poster, total, opts.rate, 'm', true);
    await finish(run, opts.timeoutS * 1000);
    const end = run.received === run.expected ? run.lastAt : performance.now();
    const { cpu, total: cpuTotal } = cpuShares(await meter.stop(), total);
    const redisCommands = commandsPerMessage(commandsBefore, await redisCommandCalls(stack.redis), total);
    const batches = batchMeans(batchesBefore, await stack.batchTotals?.());
    return {
      messages: total, seconds: (end - t0) / 1000, rate: total / sent.seconds, missing: run.expected - run.received, duplicates: run.duplicates,
      httpErrors: poster.errors, firstHttpError: poster.firstError, http: summary(poster.times), latency: summary(run.samples),
      latencyBySecond: run.bySecond.map((v) => summary(v).p50), cpu, cpuTotalUs: cpuTotal, sendLag: summary(sent.lags), redisCommands, ...(batches ? { batches } : {}),
    };
  } finally {
    await poster.close();
  }
}
