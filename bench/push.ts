// Push benchmark: comet room fan-out and end-to-end push latency, on ONE fresh redis-server that it
// starts for the run, everything on loopback. Measures only; nothing is asserted. See bench/README.md.
//
//   ulimit -n 65536 && npm run bench:push         # = node --import tsx bench/push.ts
//   node --import tsx bench/push.ts --conns=10000 --messages=500
//   BENCH_CONNS=1000 BENCH_MESSAGES=200 BENCH_LATENCY_S=3 npm run bench:push      # quick
//
// Phases: 1 room fan-out deliveries/s of ONE comet (a child process) to C WebSocket clients (this
// process) in one room, messages sent over gRPC BroadcastRoom, plus comet CPU per delivery and
// memory per idle connection; 2 end-to-end latency POST /logic/send → WebSocket receipt at a fixed
// rate through logic, Redis, job and 2 comets, each its own `pushline` child process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { signConnectionToken } from '../src/auth/token.ts';
import { DEV_COMET_GRPC_TOKEN } from '../src/config/schema.ts';
import { CometClients } from '../src/job/comet-clients.ts';
import { freePort, startRedisServer } from '../src/local/redis-server.ts';
import { describeLoopback, measureLoopback } from './lib/loopback-rtt.ts';
import { childEnv, procCpuSeconds, procRssBytes, startChild, waitForHttp, type Child } from './lib/push-procs.ts';
import { Cleanup, fmtInt, fmtMs, listSetting, numberSetting, percentile, pool, runBench, setting, sleep, withTimeout } from './lib/util.ts';

// ---------------------------------------------------------------- settings

const CONNS = Math.floor(numberSetting('conns', 5000));
const MESSAGES = Math.floor(numberSetting('messages', 1000));
const IN_FLIGHT = Math.max(1, Math.floor(numberSetting('in-flight', 16)));
const WARMUP_MESSAGES = Math.floor(numberSetting('warmup-messages', 50));
const CONNECT_IN_FLIGHT = Math.max(1, Math.floor(numberSetting('connect-in-flight', 100)));
const BATCH_MS = Math.floor(numberSetting('batch-ms', 2));
const FANOUT_TIMEOUT_S = numberSetting('fanout-timeout-s', 60);
/** Clients of phase 1 that JSON-parse every frame and check ids (the rest only count). */
const VERIFY_CLIENTS = Math.floor(numberSetting('verify-clients', 3));
const RATE = numberSetting('rate', 1000);
const LATENCY_S = numberSetting('latency-s', 10);
const LATENCY_WARMUP_S = numberSetting('latency-warmup-s', 1);
const LATENCY_CLIENTS_PER_COMET = Math.max(1, Math.floor(numberSetting('latency-clients-per-comet', 2)));
/** JOB_CONSUMERS / JOB_CONCURRENCY for the job child in phase 2; empty = pushline's defaults (4 × 16). */
const JOB_CONSUMERS = setting('job-consumers', '');
const JOB_CONCURRENCY = setting('job-concurrency', '');
/** Extra idle members of the phase 2 room (split over the 2 comets): they receive but are not measured. */
const LATENCY_EXTRA_MEMBERS = Math.floor(numberSetting('latency-extra-members', 0));
const HTTP_CONNECTIONS = Math.max(1, Math.floor(numberSetting('http-connections', 16)));
const PHASES = new Set(listSetting('phases', 'fanout,latency'));

if (CONNS < 1 || MESSAGES < 1 || RATE <= 0) throw new Error('--conns, --messages and --rate must be ≥ 1');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'bench-push-auth-secret-0123456789';
const BASIC = `Basic ${Buffer.from('admin:password').toString('base64')}`;
/** What every serverMessages element of a frame contains (frames.ts builds it this way). */
const MARK = Buffer.from('"type":"serverMessages"');

// ---------------------------------------------------------------- run state

const cleanup = new Cleanup();
let redisPort = 0;
let redisPid = 0;
let dir = '';

type Row = [metric: string, value: string, detail: string];
const rows: Row[] = [];
const notes: string[] = [];

function log(line: string): void {
  console.log(line);
}

class FdLimitError extends Error {}

function openFileLimit(): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return line === undefined || line === 'unlimited' ? Infinity : Number(line);
}

function fdError(where: string): FdLimitError {
  return new FdLimitError(
    `EMFILE (too many open files) ${where}: the open-file limit is ${openFileLimit()} and ${CONNS} connections need ` +
      `about ${CONNS + 200} descriptors in this process and as many in the comet child. ` +
      `Raise it in the shell first (ulimit -n 65536) or lower --conns.`,
  );
}

const isEmfile = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code === 'EMFILE' || /EMFILE/.test(String(err));

async function tokens(n: number, room: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await signConnectionToken({ userId: `${prefix}${i}`, roomId: room }, SECRET, 3600)).token);
  return out;
}

/** Opens a socket and resolves when the comet's `connected` frame arrived; onFrame gets every later frame. */
function openClient(wsPort: number, token: string, onFrame: (data: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/?token=${token}`, { perMessageDeflate: false });
    let open = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no connected frame within 30 s'));
    }, 30_000);
    ws.on('message', (data: Buffer) => {
      if (open) return onFrame(data);
      if (data.includes('"type":"connected"')) {
        open = true;
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!open) reject(isEmfile(err) ? fdError('opening a client socket') : err);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      if (!open) reject(new Error(`closed before connected: ${code} ${reason.toString()}`));
    });
  });
}

function countMarks(data: Buffer): number {
  let n = 0;
  let at = data.indexOf(MARK);
  while (at !== -1) {
    n++;
    at = data.indexOf(MARK, at + MARK.length);
  }
  return n;
}

function closeAll(sockets: WebSocket[]): void {
  for (const ws of sockets) ws.terminate();
}

function summary(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  return { n: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

// ---------------------------------------------------------------- phase 1: room fan-out

async function statsOf(comet: Child): Promise<{ conns: number; slowConsumerCloses: number; duplicatesDropped: number }> {
  comet.send('stats');
  return JSON.parse(await comet.nextLine(10_000)) as { conns: number; slowConsumerCloses: number; duplicatesDropped: number };
}

interface Memory { rss: number; heapUsed: number; external: number }
async function memoryOf(comet: Child): Promise<Memory> {
  comet.send('memory');
  return JSON.parse(await comet.nextLine(10_000)) as Memory;
}

async function phaseFanout(): Promise<void> {
  log(
    `\n## 1. room fan-out — ONE comet in a child process (COMET_BATCH_MS=${BATCH_MS}); ${fmtInt(CONNS)} WebSocket clients in this process, ` +
      `all in one room; ${fmtInt(MESSAGES)} gRPC BroadcastRoom calls, ${IN_FLIGHT} in flight (after ${WARMUP_MESSAGES} warm-up messages)`,
  );
  const grpcPort = await freePort();
  const cometId = `127.0.0.1:${grpcPort}`;
  const env = {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort), REDIS_KEY_PREFIX: 'bench1:', AUTH_SECRET: SECRET, PUSHLINE_DEV: 'true',
    LOG_LEVEL: 'warn', COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: String(grpcPort), COMET_ID: cometId,
    COMET_BATCH_MS: String(BATCH_MS),
  };
  const comet = startChild('comet child', process.execPath, ['--expose-gc', '--import', 'tsx', join(ROOT, 'bench/lib/push-comet.ts'), JSON.stringify(env)], {
    env: childEnv({}),
    cwd: ROOT, // `--import tsx` resolves from here; push-comet.ts reads no .env
  });
  const removeComet = cleanup.add('stop the comet child', () => comet.stop());
  const ready = JSON.parse(await comet.nextLine(60_000)) as { wsPort: number; grpcPort: number; pid: number };
  const pid = comet.pid;
  log(`  comet child pid ${pid}: WebSocket :${ready.wsPort}, gRPC :${ready.grpcPort}`);

  const room = 'bench_room';
  const toks = await tokens(CONNS, room, 'u');
  await sleep(1000);
  const rssIdle = procRssBytes(pid);
  const memIdle = await memoryOf(comet);

  // Counters shared by all clients: total serverMessages elements, frames, time of the last one.
  let received = 0;
  let frames = 0;
  let lastAt = 0;
  let counting = true;
  const perClient = new Uint32Array(CONNS);
  const verified: Map<string, number>[] = Array.from({ length: Math.min(VERIFY_CLIENTS, CONNS) }, () => new Map());
  const sockets: WebSocket[] = [];
  cleanup.add('close phase 1 client sockets', () => closeAll(sockets));

  const connectStart = performance.now();
  let connectErrors = 0;
  let firstError: unknown = null;
  await pool(CONNS, CONNECT_IN_FLIGHT, async (i) => {
    const onFrame = (data: Buffer) => {
      if (!counting) return;
      const n = countMarks(data);
      received += n;
      perClient[i]! += n;
      frames++;
      lastAt = performance.now();
      const seen = verified[i];
      if (seen) {
        const parsed = JSON.parse(data.toString()) as unknown;
        for (const el of Array.isArray(parsed) ? parsed : [parsed]) {
          const e = el as { type?: string; payload?: { id?: string } };
          if (e.type === 'serverMessages' && e.payload?.id !== undefined) seen.set(e.payload.id, (seen.get(e.payload.id) ?? 0) + 1);
        }
      }
    };
    try {
      sockets.push(await openClient(ready.wsPort, toks[i]!, onFrame));
    } catch (err) {
      if (err instanceof FdLimitError) throw err;
      connectErrors++;
      firstError ??= err;
    }
  });
  const connectS = (performance.now() - connectStart) / 1000;
  if (connectErrors > 0) throw new Error(`${connectErrors} of ${CONNS} clients could not connect; first error: ${String(firstError)}`);
  const afterConnect = await statsOf(comet);
  log(`  ${fmtInt(sockets.length)} clients connected in ${connectS.toFixed(1)} s (${fmtInt(CONNS / connectS)}/s, ${CONNECT_IN_FLIGHT} in flight); comet counts ${fmtInt(afterConnect.conns)}`);
  await sleep(2000);
  const rssConnected = procRssBytes(pid);
  const perConn = (rssConnected - rssIdle) / CONNS;
  log(`  comet RSS ${mib(rssIdle)} MiB idle → ${mib(rssConnected)} MiB with ${fmtInt(CONNS)} idle connections: ${fmtInt(perConn)} B per connection`);
  const memConnected = await memoryOf(comet);
  const perConnGc = {
    rss: (memConnected.rss - memIdle.rss) / CONNS,
    heap: (memConnected.heapUsed - memIdle.heapUsed) / CONNS,
    external: (memConnected.external - memIdle.external) / CONNS,
  };
  log(`  after a full GC: RSS ${fmtInt(perConnGc.rss)} B, JS heap ${fmtInt(perConnGc.heap)} B, buffers ${fmtInt(perConnGc.external)} B per connection`);

  const rpc = new CometClients({ deadlineMs: 30_000, token: DEV_COMET_GRPC_TOKEN }); // the comet runs with PUSHLINE_DEV
  cleanup.add('close gRPC channel', () => rpc.close());
  const body = (id: string) => ({ ver: 1, op: 4, seq: 0, body: Buffer.from(JSON.stringify({ id, text: 'hello room' })) });
  let notDelivered = 0;
  const send = async (id: string) => {
    const res = await rpc.broadcastRoom(cometId, room, body(id));
    if (res.delivered !== CONNS) notDelivered++;
  };
  const waitAll = async (target: number, timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    while (received < target && performance.now() < deadline) await sleep(5);
  };

  // Warm-up (JIT, gRPC channel): sent and received in full, then the counters are reset.
  await pool(WARMUP_MESSAGES, IN_FLIGHT, (i) => send(`w${i}`));
  await waitAll(WARMUP_MESSAGES * CONNS, 30_000);
  if (received < WARMUP_MESSAGES * CONNS) notes.push(`phase 1 warm-up: only ${fmtInt(received)} of ${fmtInt(WARMUP_MESSAGES * CONNS)} deliveries arrived within 30 s`);
  await sleep(200);
  received = 0;
  frames = 0;
  perClient.fill(0);
  for (const m of verified) m.clear();
  notDelivered = 0;

  const expected = MESSAGES * CONNS;
  const cpuChild0 = procCpuSeconds(pid);
  const cpuSelf0 = process.cpuUsage();
  const t0 = performance.now();
  lastAt = t0;
  await pool(MESSAGES, IN_FLIGHT, (i) => send(`m${i}`));
  const sentAt = performance.now();
  await waitAll(expected, FANOUT_TIMEOUT_S * 1000);
  const timedOut = received < expected;
  counting = false;
  const cpuChild = procCpuSeconds(pid) - cpuChild0;
  const cpuSelfUs = process.cpuUsage(cpuSelf0);
  const cpuSelf = (cpuSelfUs.user + cpuSelfUs.system) / 1e6;
  const elapsed = (lastAt - t0) / 1000;
  const rate = received / elapsed;
  const stats = await statsOf(comet);
  const rssBusy = procRssBytes(pid);

  let short = 0;
  for (const n of perClient) if (n < MESSAGES) short++;
  let idProblems = 0;
  for (const seen of verified) {
    for (let i = 0; i < MESSAGES; i++) if (seen.get(`m${i}`) !== 1) idProblems++;
  }

  log(
    `  sent ${fmtInt(MESSAGES)} in ${((sentAt - t0) / 1000).toFixed(2)} s (${fmtInt(MESSAGES / ((sentAt - t0) / 1000))} calls/s); ` +
      `received ${fmtInt(received)} of ${fmtInt(expected)} deliveries in ${elapsed.toFixed(2)} s${timedOut ? ` (TIMED OUT after ${FANOUT_TIMEOUT_S} s)` : ''}: ${fmtInt(rate)} deliveries/s`,
  );
  log(
    `  ${fmtInt(frames)} frames, ${(received / Math.max(1, frames)).toFixed(1)} messages per frame; comet CPU ${cpuChild.toFixed(2)} s ` +
      `(${((cpuChild / elapsed) * 100).toFixed(0)}% of one core), client process CPU ${cpuSelf.toFixed(2)} s (${((cpuSelf / elapsed) * 100).toFixed(0)}% of one core)`,
  );

  rows.push(['room fan-out, deliveries/s, one comet (↑)', fmtInt(rate), `${fmtInt(CONNS)} clients × ${fmtInt(MESSAGES)} messages in ${elapsed.toFixed(2)} s`]);
  rows.push(['  missing deliveries', fmtInt(expected - received), `${short} clients got fewer than ${MESSAGES}; slow-consumer closes ${stats.slowConsumerCloses}`]);
  rows.push(['  messages per WebSocket frame (batching)', (received / Math.max(1, frames)).toFixed(1), `${fmtInt(frames)} frames, COMET_BATCH_MS=${BATCH_MS}`]);
  rows.push(['  gRPC BroadcastRoom calls/s (send side)', fmtInt(MESSAGES / ((sentAt - t0) / 1000)), `${IN_FLIGHT} in flight`]);
  rows.push(['comet CPU µs per delivery (↓)', ((cpuChild / Math.max(1, received)) * 1e6).toFixed(2), `${cpuChild.toFixed(2)} s CPU = ${((cpuChild / elapsed) * 100).toFixed(0)}% of one core over the run`]);
  rows.push([
    '  comet deliveries/s per core, CPU-bound estimate',
    fmtInt(received / Math.max(1e-9, cpuChild)),
    '= 1 / CPU per delivery; what the comet would reach if the clients kept up',
  ]);
  rows.push(['client process CPU, % of one core', `${((cpuSelf / elapsed) * 100).toFixed(0)}%`, `${cpuSelf.toFixed(2)} s; near 100% = the clients are the bottleneck`]);
  rows.push(['comet RSS per idle connection (↓)', `${fmtInt(perConn)} B`, `${mib(rssIdle)} → ${mib(rssConnected)} MiB for ${fmtInt(CONNS)} (after run ${mib(rssBusy)} MiB)`]);
  if (VERIFY_CLIENTS > 0) notes.push(`phase 1: ${verified.length} clients parsed every frame and checked ids m0..m${MESSAGES - 1}: ${idProblems} missing or duplicated (the others count "serverMessages" elements without parsing)`);
  if (notDelivered > 0) notes.push(`phase 1: ${notDelivered} BroadcastRoom answers reported delivered ≠ ${CONNS}`);
  if (stats.duplicatesDropped > 0) notes.push(`phase 1: comet dropped ${stats.duplicatesDropped} duplicate ids`);
  notes.push(
    `phase 1: this process (the ${fmtInt(CONNS)} clients) and the comet share ${availableParallelism()} cores; client CPU ${((cpuSelf / elapsed) * 100).toFixed(0)}% and comet CPU ` +
      `${((cpuChild / elapsed) * 100).toFixed(0)}% of one core each — if the client is near 100%, the measured rate is a lower bound on what the comet can do`,
  );

  closeAll(sockets);
  sockets.length = 0;
  rpc.close();
  await sleep(500);
  removeComet();
  await comet.stop();
}

// ---------------------------------------------------------------- phase 2: end-to-end latency

async function phaseLatency(): Promise<void> {
  const total = Math.round(RATE * LATENCY_S);
  const warm = Math.round(RATE * LATENCY_WARMUP_S);
  log(
    `\n## 2. end-to-end latency — POST /logic/send → logic → Redis queue → job → gRPC → 2 comets → WebSocket; ` +
      `${RATE}/s for ${LATENCY_S} s (after ${LATENCY_WARMUP_S} s warm-up, discarded); ${LATENCY_CLIENTS_PER_COMET * 2} clients in one room, ` +
      `${LATENCY_CLIENTS_PER_COMET} per comet; logic, job (JOB_CONSUMERS=${JOB_CONSUMERS || '4'} × JOB_CONCURRENCY=${JOB_CONCURRENCY || '16'}) ` +
      `and each comet a \`pushline\` child process`,
  );
  const base = {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort), REDIS_KEY_PREFIX: 'bench2:', PUSHLINE_DEV: 'true', LOG_LEVEL: 'warn',
    AUTH_SECRET: SECRET, COMET_HOST: '127.0.0.1',
  };
  const bin = join(ROOT, 'bin/pushline.js');
  const children: Child[] = [];
  const spawnPushline = (name: string, sub: string, extra: Record<string, string>) => {
    const child = startChild(name, process.execPath, [bin, sub], { env: childEnv({ ...base, ...extra }), cwd: dir });
    children.push(child);
    cleanup.add(`stop ${name}`, () => child.stop());
    return child;
  };
  const comets: { wsPort: number; child: Child }[] = [];
  for (let k = 0; k < 2; k++) {
    const [wsPort, grpcPort] = [await freePort(), await freePort()];
    const child = spawnPushline(`comet ${k + 1}`, 'comet', { COMET_WS_PORT: String(wsPort), COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}` });
    comets.push({ wsPort, child });
  }
  const logicPort = await freePort();
  const logic = spawnPushline('logic', 'logic', { LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(logicPort) });
  const job = spawnPushline('job', 'job', {
    ...(JOB_CONSUMERS ? { JOB_CONSUMERS } : {}),
    ...(JOB_CONCURRENCY ? { JOB_CONCURRENCY } : {}),
  });
  for (const c of comets) await waitForHttp(`http://127.0.0.1:${c.wsPort}/health`, 60_000, c.child);
  await waitForHttp(`http://127.0.0.1:${logicPort}/health`, 60_000, logic);
  if (job.exited) throw new Error(`job exited while starting; stderr:\n${job.stderrTail()}`);
  log(`  comets :${comets.map((c) => c.wsPort).join(', :')} (WebSocket), logic :${logicPort}, job pid ${job.pid}`);

  // Receivers: content is "<phase>:<i>:<send time>", send time from performance.now() in this process.
  const room = 'latency_room';
  const nClients = LATENCY_CLIENTS_PER_COMET * 2;
  const toks = await tokens(nClients, room, 'viewer');
  const got: Uint8Array[] = Array.from({ length: nClients }, () => new Uint8Array(total));
  const samples: number[] = [];
  /** Latency samples by the second (of the measured run) in which the message was sent. */
  const bySecond: number[][] = [];
  let duplicates = 0;
  let probes = 0;
  let warmGot = 0;
  const sockets: WebSocket[] = [];
  cleanup.add('close phase 2 client sockets', () => closeAll(sockets));
  for (let c = 0; c < nClients; c++) {
    const onFrame = (data: Buffer) => {
      const now = performance.now();
      const parsed = JSON.parse(data.toString()) as unknown;
      for (const el of Array.isArray(parsed) ? parsed : [parsed]) {
        const e = el as { type?: string; payload?: { messages?: { content?: string }[] } };
        if (e.type !== 'serverMessages') continue;
        const [phase, index, sentAt] = (e.payload?.messages?.[0]?.content ?? '').split(':');
        if (phase === 'p') probes++;
        else if (phase === 'w') warmGot++;
        else if (phase === 'm') {
          const i = Number(index);
          if (got[c]![i]) duplicates++;
          else {
            got[c]![i] = 1;
            samples.push(now - Number(sentAt));
            (bySecond[Math.floor(i / RATE)] ??= []).push(now - Number(sentAt));
          }
        }
      }
    };
    sockets.push(await openClient(comets[c % 2]!.wsPort, toks[c]!, onFrame));
  }

  if (LATENCY_EXTRA_MEMBERS > 0) {
    const extra = await tokens(LATENCY_EXTRA_MEMBERS, room, 'idle');
    await pool(LATENCY_EXTRA_MEMBERS, CONNECT_IN_FLIGHT, async (k) => {
      sockets.push(await openClient(comets[k % 2]!.wsPort, extra[k]!, () => {}));
    });
    log(`  + ${fmtInt(LATENCY_EXTRA_MEMBERS)} idle room members (not measured)`);
  }

  const http = new Pool(`http://127.0.0.1:${logicPort}`, { connections: HTTP_CONNECTIONS });
  const removeHttp = cleanup.add('close HTTP pool', () => http.close());
  let httpErrors = 0;
  let firstHttpError = '';
  const httpTimes: number[] = [];
  const post = async (content: string, record: boolean) => {
    const started = performance.now();
    try {
      const res = await http.request({
        path: '/logic/send',
        method: 'POST',
        headers: { authorization: BASIC, 'content-type': 'application/json' },
        body: JSON.stringify({ roomId: room, userId: 'bench', messages: [{ content }] }),
      });
      const text = await res.body.text();
      if (res.statusCode !== 202) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      if (record) httpTimes.push(performance.now() - started);
    } catch (err) {
      httpErrors++;
      firstHttpError ||= String(err);
    }
  };

  // Ready when a probe goes all the way through (job connected, comets registered).
  const readyBy = performance.now() + 60_000;
  while (probes < nClients) {
    if (performance.now() > readyBy) throw new Error(`no probe message reached all clients within 60 s; job stderr:\n${job.stderrTail()}`);
    if (job.exited) throw new Error(`job exited; stderr:\n${job.stderrTail()}`);
    await post(`p:0:${performance.now()}`, false);
    await sleep(200);
  }

  /** Sends n messages at RATE, each at its absolute scheduled time; returns how far behind schedule each went out. */
  const produce = async (n: number, phase: string, record: boolean) => {
    const lags: number[] = [];
    const pending: Promise<void>[] = [];
    const start = performance.now() + 5;
    const gap = 1000 / RATE;
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
        pending.push(post(`${phase}:${i}:${at}`, record));
        i++;
      }
    }
    await Promise.all(pending);
    return { lags, seconds: (performance.now() - start) / 1000 };
  };

  await produce(warm, 'w', false);
  const cpuPids: [string, number][] = [...children.map((c): [string, number] => [c.name, c.pid]), ['redis-server', redisPid], ['bench (producer + clients)', process.pid]];
  const cpu0 = cpuPids.map(([, pid]) => procCpuSeconds(pid));
  // Queue depth while sending, from logic's GET /health (what the job has not taken yet).
  const health: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(1000);
      if (!sampling) break;
      try {
        const res = await fetch(`http://127.0.0.1:${logicPort}/health`, { signal: AbortSignal.timeout(2000) });
        health.push(await res.text());
      } catch (err) {
        health.push(`error ${String(err)}`);
      }
    }
  })();
  const sent = await produce(total, 'm', true);
  sampling = false;
  await sampler;
  const cpuUsed = cpuPids.map(([, pid], k) => procCpuSeconds(pid) - cpu0[k]!);
  const cpuShares = cpuPids.map(([name], k) => `${name} ${((cpuUsed[k]! / sent.seconds) * 100).toFixed(0)}% (${fmtInt((cpuUsed[k]! / total) * 1e6)} µs/message)`);
  const cpuTotal = cpuUsed.reduce((a, b) => a + b, 0);
  const expected = total * nClients;
  const waitUntil = performance.now() + 15_000;
  while (samples.length < expected && performance.now() < waitUntil) await sleep(20);
  const missing = expected - samples.length;

  const s = summary(samples);
  const lag = summary(sent.lags);
  const h = summary(httpTimes);
  log(
    `  ${fmtInt(s.n)} receipts of ${fmtInt(expected)}: p50 ${fmtMs(s.p50)} p90 ${fmtMs(s.p90)} p99 ${fmtMs(s.p99)} max ${fmtMs(s.max)} ms; ` +
      `${missing} missing, ${duplicates} duplicates; HTTP 202 p50 ${fmtMs(h.p50)} p99 ${fmtMs(h.p99)} ms, ${httpErrors} errors`,
  );
  for (const k of ['p50', 'p90', 'p99', 'max'] as const) {
    rows.push([`end-to-end latency ${k}, ms, at ${RATE}/s (↓)`, fmtMs(s[k]), k === 'p50' ? `${fmtInt(s.n)} receipts (${fmtInt(total)} messages × ${nClients} clients)` : '']);
  }
  rows.push(['  missing receipts', fmtInt(missing), `${duplicates} duplicates; ${httpErrors} HTTP errors${firstHttpError ? ` (first: ${firstHttpError})` : ''}`]);
  rows.push([
    '  CPU per message, all processes, µs (↓)',
    fmtInt((cpuTotal / total) * 1e6),
    `${((cpuTotal / sent.seconds) * 100).toFixed(0)}% of one core while sending, of ${availableParallelism() * 100}% → at most ~${fmtInt(availableParallelism() / (cpuTotal / total))} messages/s on this machine`,
  ]);
  rows.push(['  POST /logic/send answer time p50 / p99, ms', `${fmtMs(h.p50)} / ${fmtMs(h.p99)}`, `${HTTP_CONNECTIONS} keep-alive connections`]);
  const depth = health.map((text, k) => {
    try {
      const h = JSON.parse(text) as { queues?: Record<string, { queued: number; processing: number }>; oldest_waiting_age_ms?: number | null };
      const q = h.queues?.['bench2:uvr_tasks'];
      return `${k + 1}s ${q ? `${q.queued}+${q.processing}` : '?'} (oldest ${h.oldest_waiting_age_ms ?? 0} ms)`;
    } catch {
      return `${k + 1}s ?`;
    }
  });
  notes.push(`phase 2: task queue while sending, queued+processing (oldest waiting), from logic GET /health each second: ${depth.join(', ')}`);
  notes.push(`phase 2: CPU while sending, % of one core (µs per message sent): ${cpuShares.join(', ')}`);
  notes.push(
    `phase 2: latency p50 by second of sending: ${bySecond.map((v, k) => `${k + 1}s ${fmtMs(summary(v).p50)}`).join(', ')} ms` +
      ' (rising = the pipeline runs slower than the offered rate and a backlog builds)',
  );
  notes.push(
    `phase 2: producer sent ${fmtInt(total)} in ${sent.seconds.toFixed(2)} s (${fmtInt(total / sent.seconds)}/s); sends behind schedule p99 ${fmtMs(lag.p99)} ms, max ${fmtMs(lag.max)} ms; ` +
      `warm-up: ${fmtInt(warmGot)} of ${fmtInt(warm * nClients)} receipts`,
  );

  closeAll(sockets);
  sockets.length = 0;
  removeHttp();
  await http.close();
  // Reverse order: logic and job first, then the comets.
  for (const c of [...children].reverse()) await c.stop();
}

// ---------------------------------------------------------------- main

const startedAt = Date.now();
const loadAtStart = loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const limit = openFileLimit();
  const need = CONNS + 500;
  if (PHASES.has('fanout') && limit < need) {
    throw new FdLimitError(
      `the open-file limit (ulimit -n) is ${limit}, but ${fmtInt(CONNS)} connections need about ${fmtInt(need)} descriptors in this process ` +
        `and as many in the comet child. Raise it in the shell first: ulimit -n 65536 (or lower --conns).`,
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'pushline-bench-push-'));
  cleanup.add('remove temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const server = await startRedisServer({ dir, appendonly: true });
  cleanup.add('stop redis-server', () => withTimeout(server.stop(), 10_000, 'redis-server SIGTERM').catch(() => server.kill()));
  redisPort = server.port;
  redisPid = server.process.pid ?? 0;

  const cpuModel = cpus()[0]?.model.trim() ?? '?';
  const header =
    `pushline push benchmark — redis-server (appendonly yes) on 127.0.0.1:${redisPort}, node ${process.version}, ` +
    `${availableParallelism()} CPUs (${cpuModel}), open-file limit ${limit}; fan-out C=${fmtInt(CONNS)} × M=${fmtInt(MESSAGES)}, latency ${RATE}/s × ${LATENCY_S} s`;
  log(header);
  log(`load average at start ${loadAtStart}${loadavg()[0]! > availableParallelism() ? ' — WARNING: the machine is busy; numbers will be noisy' : ''}`);

  if (PHASES.has('fanout')) await phaseFanout();
  if (PHASES.has('latency')) {
    const calibration = describeLoopback(await measureLoopback());
    log(calibration);
    notes.push(calibration);
    await phaseLatency();
  }

  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  log('\n' + header);
  log(`load average at start ${loadAtStart}, at end ${load}; bench wall time ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
  const table: Row[] = [['metric', 'pushline (measured)', 'detail'], ...rows];
  const widths = [0, 1, 2].map((c) => Math.max(...table.map((r) => r[c]!.length)));
  const line = (r: Row) => `| ${r.map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ')} |`;
  log(line(table[0]!));
  log(`|${widths.map((w, c) => (c === 1 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
  for (const r of rows) log(line(r));
  log('\n(↑ higher is better, ↓ lower is better)');
  log('\nReference numbers from the issue — NOT measured in this run (no external peer installed; goim is Go):');
  log('- reference: goim published ~1.6 M deliveries/s per core');
  log('- reference: naive per-socket ws.send loop ~90 k/s here');
  log('- reference: batching 10/frame ~650 k/s');
  if (notes.length) log('');
  for (const n of notes) log(`- ${n}`);
}

await runBench(cleanup, main, (err) => {
  if (err instanceof FdLimitError) return err.message;
  if (isEmfile(err)) return fdError('').message;
  return null;
});
