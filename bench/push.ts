// Push benchmark: comet room fan-out, the push pipeline end to end against its peer (socket.io
// with @socket.io/redis-adapter), and logic's per-request work — on fresh redis-servers that it
// starts for the run, everything on loopback. Measures only; nothing is asserted. See bench/README.md.
//
//   ulimit -n 65536 && npm run bench:push         # = node --import tsx bench/push.ts
//   BENCH_CONNS=1000 BENCH_MESSAGES=200 BENCH_SATURATION_MESSAGES=5000 BENCH_LATENCY_S=3 npm run bench:push   # quick
//   npm run bench:logic                           # = bench/push.ts --phases=logic
//
// Phases: fanout — ONE comet's room fan-out to C clients (bench/lib/push-fanout.ts);
// saturation and latency — POST → … → viewers for pushline and then the peer (push-scenario.ts);
// logic — accepted requests/s and CPU per request of one logic process (push-logic.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer } from '../src/local/redis-server.ts';
import { describeLoopback, measureLoopback } from './lib/loopback-rtt.ts';
import { FdLimitError, Report, fdError, isEmfile, log, openFileLimit, type Row } from './lib/push-common.ts';
import { phaseFanout } from './lib/push-fanout.ts';
import { LOGIC_ROUTES, phaseLogic } from './lib/push-logic.ts';
import { startPushlineStack } from './lib/push-pushline.ts';
import { Receipts, runLatency, runSaturation, type ScenarioResult, type Stack } from './lib/push-scenario.ts';
import { PEER_LIMITS, startSocketioStack } from './lib/push-socketio.ts';
import { Cleanup, fmtInt, fmtMs, fmtRatio, listSetting, numberSetting, runBench, setting, withTimeout } from './lib/util.ts';

// ---------------------------------------------------------------- settings

const int = (name: string, fallback: number, min = 0) => Math.max(min, Math.floor(numberSetting(name, fallback)));
const PHASES = new Set(listSetting('phases', 'fanout,saturation,latency'));
const PEER = setting('peer', 'socketio');
const CONNS = int('conns', 5000, 1);
const CONNECT_IN_FLIGHT = int('connect-in-flight', 100, 1);
const HTTP_CONNECTIONS = int('http-connections', 32, 1);
const IDLE_MEMBERS = int('idle-members', 200);
const VIEWERS_PER_GATEWAY = int('viewers-per-comet', 2, 1);
const SATURATION_MESSAGES = int('saturation-messages', 20_000, 1);
const SATURATION_WARMUP = int('saturation-warmup', 1000);
const RATE = numberSetting('rate', 1000);
const LATENCY_S = numberSetting('latency-s', 10);
const LATENCY_WARMUP_S = numberSetting('latency-warmup-s', 1);
const TIMEOUT_S = numberSetting('timeout-s', 120);
if (RATE <= 0) throw new Error('--rate must be > 0');
if (!['socketio', 'none'].includes(PEER)) throw new Error(`--peer must be socketio or none, got "${PEER}"`);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROOM = 'video_123';

// ---------------------------------------------------------------- run state

const cleanup = new Cleanup();
const report = new Report();
let redisPort = 0;
let dir = '';

// ---------------------------------------------------------------- end to end, pushline vs the peer

interface Contender {
  label: string;
  start(receipts: Receipts): Promise<Stack>;
}

const contenders: Contender[] = [
  {
    label: 'pushline',
    start: (receipts) =>
      startPushlineStack(
        {
          root: ROOT, dir, redisPort, keyPrefix: 'bench2:', room: ROOM, viewersPerComet: VIEWERS_PER_GATEWAY, idleMembers: IDLE_MEMBERS,
          connectInFlight: CONNECT_IN_FLIGHT, jobConsumers: setting('job-consumers', ''), jobConcurrency: setting('job-concurrency', ''),
          logLevel: setting('log-level', 'warn'),
        },
        receipts,
      ),
  },
  ...(PEER === 'socketio'
    ? [{
        label: 'socket.io',
        start: (receipts: Receipts) =>
          startSocketioStack({ root: ROOT, dir, room: ROOM, viewersPerNode: VIEWERS_PER_GATEWAY, idleMembers: IDLE_MEMBERS, connectInFlight: CONNECT_IN_FLIGHT }, receipts),
      }]
    : []),
];

const ROLES: [role: string, label: string][] = [
  ['HTTP entry', 'HTTP entry (logic | endpoint)'],
  ['job', 'job (pushline only)'],
  ['gateway 1', 'gateway 1 (comet | socket.io node)'],
  ['gateway 2', 'gateway 2'],
  ['redis-server', 'redis-server (INFO cpu)'],
  ['bench', 'bench process (HTTP client, viewers, idle members)'],
];

function describe(label: string, what: string, r: ScenarioResult): void {
  const cpu = r.cpu.map((c) => `${c.name} ${fmtInt(c.usPerMessage)}`).join(', ');
  log(
    `  ${label} ${what}: ${fmtInt(r.messages)} messages in ${r.seconds.toFixed(2)} s = ${fmtInt(r.messages / r.seconds)}/s; ` +
      `${r.missing} missing, ${r.duplicates} duplicates, ${r.httpErrors} HTTP errors${r.firstHttpError ? ` (first: ${r.firstHttpError})` : ''}; ` +
      `receipt − send p50 ${fmtMs(r.latency.p50)} p99 ${fmtMs(r.latency.p99)} max ${fmtMs(r.latency.max)} ms; POST answer p50 ${fmtMs(r.http.p50)} p99 ${fmtMs(r.http.p99)} ms`,
  );
  log(`    CPU µs per message: ${cpu}; total ${fmtInt(r.cpuTotalUs)}`);
  log(`    Redis commands per message: ${r.redisCommands.total.toFixed(2)} (${r.redisCommands.top.map(([c, n]) => `${c} ${n.toFixed(2)}`).join(', ')}; commands run by scripts count too)`);
  if (r.batches) log(`    batches: ${r.batches.routing.toFixed(1)} messages per routing read, ${r.batches.grpcCall.toFixed(1)} per gRPC call (job's pushline_push_batch_messages)`);
}

/** Rows of one phase: pushline beside the peer (blank when the peer did not run). */
function compare(phase: string, results: Map<string, ScenarioResult>, headline: [string, (r: ScenarioResult) => number, (n: number) => string][]): void {
  const a = results.get('pushline');
  const b = results.get('socket.io');
  const row = (metric: string, f: (r: ScenarioResult) => number, fmt: (n: number) => string) => {
    const x = a ? f(a) : NaN;
    const y = b ? f(b) : NaN;
    report.row({ metric, pushline: fmt(x), peer: b ? fmt(y) : '', ratio: b ? fmtRatio(x, y) : '' });
  };
  for (const [metric, f, fmt] of headline) row(`${phase}: ${metric}`, f, fmt);
  row('  missing receipts (↓)', (r) => r.missing, fmtInt);
  row('  CPU µs per message, all processes (↓)', (r) => r.cpuTotalUs, fmtInt);
  for (const [role, label] of ROLES) {
    row(`    ${label}`, (r) => r.cpu.find((c) => c.name === role)?.usPerMessage ?? NaN, (n) => (Number.isFinite(n) ? fmtInt(n) : '—'));
  }
  row('  POST answer time p50, ms (↓)', (r) => r.http.p50, fmtMs);
  row('  POST answer time p99, ms (↓)', (r) => r.http.p99, fmtMs);
}

async function phasesEndToEnd(): Promise<void> {
  const viewers = VIEWERS_PER_GATEWAY * 2;
  log(
    `\n## end to end — POST → HTTP entry → Redis → (pushline: job → gRPC) → 2 gateways → ${viewers} measured viewers + ${IDLE_MEMBERS} idle members ` +
      `in one room; ${HTTP_CONNECTIONS} keep-alive HTTP connections; saturation ${fmtInt(SATURATION_MESSAGES)} messages, latency ${RATE}/s × ${LATENCY_S} s`,
  );
  const saturation = new Map<string, ScenarioResult>();
  const latency = new Map<string, ScenarioResult>();
  for (const c of contenders) {
    const receipts = new Receipts(viewers);
    const stack = await c.start(receipts);
    const remove = cleanup.add(`stop ${c.label}`, () => stack.stop());
    try {
      if (PHASES.has('saturation')) {
        const r = await runSaturation(stack, receipts, { messages: SATURATION_MESSAGES, warmup: SATURATION_WARMUP, connections: HTTP_CONNECTIONS, timeoutS: TIMEOUT_S });
        describe(c.label, 'saturation', r);
        saturation.set(c.label, r);
      }
      if (PHASES.has('latency')) {
        const r = await runLatency(stack, receipts, { rate: RATE, seconds: LATENCY_S, warmupS: LATENCY_WARMUP_S, connections: HTTP_CONNECTIONS, timeoutS: TIMEOUT_S });
        describe(c.label, `latency at ${RATE}/s`, r);
        latency.set(c.label, r);
        report.note(
          `${c.label} latency: p50 by second of sending ${r.latencyBySecond.map((p, k) => `${k + 1}s ${fmtMs(p)}`).join(', ')} ms (rising = backlog); ` +
            `sends behind schedule p99 ${fmtMs(r.sendLag!.p99)} ms, producer ${fmtInt(r.rate)}/s`,
        );
      }
    } finally {
      remove();
      await stack.stop();
    }
  }
  if (saturation.size) compare('saturation', saturation, [['messages/s until the last viewer has the last (↑)', (r) => r.messages / r.seconds, fmtInt]]);
  if (latency.size) {
    compare(`latency at ${RATE}/s`, latency, [
      ['receipt − send p50, ms (↓)', (r) => r.latency.p50, fmtMs],
      ['receipt − send p99, ms (↓)', (r) => r.latency.p99, fmtMs],
      ['receipt − send max, ms (↓)', (r) => r.latency.max, fmtMs],
    ]);
  }
  if (PEER === 'socketio') report.note(PEER_LIMITS);
  report.note('CPU per message = CPU seconds of each process (/proc/<pid>/stat) and of redis-server (INFO cpu) from the first measured POST until the last viewer had the last message, ÷ messages');
}

// ---------------------------------------------------------------- main

const startedAt = Date.now();
const loadAtStart = loadavg().map((l) => l.toFixed(2)).join(' ');

function printTable(): void {
  const peer = report.rows.some((r) => r.peer !== undefined && r.peer !== '');
  const header: Row = { metric: 'metric', pushline: 'pushline', peer: 'socket.io', ratio: 'ratio (pushline / socket.io)', detail: 'detail' };
  const cells = (r: Row) => (peer ? [r.metric, r.pushline, r.peer ?? '', r.ratio ?? '', r.detail ?? ''] : [r.metric, r.pushline, r.detail ?? '']);
  const table = [header, ...report.rows].map(cells);
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  const right = (c: number) => c > 0 && c < widths.length - 1;
  const line = (r: string[]) => `| ${r.map((cell, c) => (right(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ')} |`;
  log(line(table[0]!));
  log(`|${widths.map((w, c) => (right(c) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
  for (const r of table.slice(1)) log(line(r));
}

async function main(): Promise<void> {
  const limit = openFileLimit();
  const need = CONNS + 500;
  if (PHASES.has('fanout') && limit < need) {
    throw new FdLimitError(
      `the open-file limit (ulimit -n) is ${limit}, but ${fmtInt(CONNS)} connections need about ${fmtInt(need)} descriptors in this process ` +
        `and as many in the comet child. Raise it in the shell first: ulimit -n 65536 (or lower --conns, or leave out --phases=fanout).`,
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'pushline-bench-push-'));
  cleanup.add('remove temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const server = await startRedisServer({ dir, appendonly: true });
  cleanup.add('stop redis-server', () => withTimeout(server.stop(), 10_000, 'redis-server SIGTERM').catch(() => server.kill()));
  redisPort = server.port;

  const cpuModel = cpus()[0]?.model.trim() ?? '?';
  const header =
    `pushline push benchmark — redis-server (appendonly yes) on 127.0.0.1:${redisPort}, node ${process.version}, ` +
    `${availableParallelism()} CPUs (${cpuModel}), open-file limit ${limit}; phases ${[...PHASES].join(',')}; peer ${PEER}`;
  log(header);
  log(`load average at start ${loadAtStart}${loadavg()[0]! > availableParallelism() ? ' — WARNING: the machine is busy; numbers will be noisy' : ''}`);

  if (PHASES.has('fanout')) {
    await phaseFanout(
      {
        root: ROOT, redisPort, conns: CONNS, messages: int('messages', 1000, 1), inFlight: int('in-flight', 16, 1), warmupMessages: int('warmup-messages', 50),
        connectInFlight: CONNECT_IN_FLIGHT, batchMs: int('batch-ms', 2), timeoutS: numberSetting('fanout-timeout-s', 60), verifyClients: int('verify-clients', 3),
      },
      report,
      cleanup,
    );
  }
  if (PHASES.has('saturation') || PHASES.has('latency')) {
    const calibration = describeLoopback(await measureLoopback());
    log(calibration);
    report.note(calibration);
    await phasesEndToEnd();
  }
  if (PHASES.has('logic')) {
    await phaseLogic(
      {
        root: ROOT, logicRoots: listSetting('logic-roots', ROOT), rounds: int('logic-rounds', 1, 1), dir, redisPort, connections: int('logic-connections', 64, 1), seconds: numberSetting('logic-s', 5),
        warmupS: numberSetting('logic-warmup-s', 2), routes: listSetting('logic-routes', LOGIC_ROUTES.join(',')),
      },
      report,
    );
  }

  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  log('\n' + header);
  log(`load average at start ${loadAtStart}, at end ${load}; bench wall time ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
  printTable();
  log('\n(↑ higher is better, ↓ lower is better)');
  if (report.notes.length) log('');
  for (const n of report.notes) log(`- ${n}`);
}

await runBench(cleanup, main, (err) => {
  if (err instanceof FdLimitError) return err.message;
  if (isEmfile(err)) return fdError('', CONNS).message;
  return null;
});
