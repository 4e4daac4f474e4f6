// Phase 1 of the push benchmark: room fan-out deliveries/s of ONE comet (a child process,
// bench/lib/push-comet.ts) to C WebSocket clients in the bench process, all in one room, messages
// sent over gRPC BroadcastRoom; plus comet CPU per delivery and memory per idle connection.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { DEV_COMET_GRPC_TOKEN } from '../../src/config/schema.ts';
import { messageBody, messageProto } from '../../src/contract/push-message.ts';
import { CometClients } from '../../src/job/comet-clients.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { FdLimitError, SECRET, closeAll, log, mib, openClient, tokens, type Report, type Row } from './push-common.ts';
import { childEnv, procCpuSeconds, procRssBytes, startChild, type Child } from './push-procs.ts';
import { fmtInt, pool, sleep, type Cleanup } from './util.ts';

export interface FanoutOptions {
  root: string;
  redisPort: number;
  conns: number;
  messages: number;
  inFlight: number;
  warmupMessages: number;
  connectInFlight: number;
  batchMs: number;
  timeoutS: number;
  /** Clients that JSON-parse every frame and check ids (the rest only count). */
  verifyClients: number;
}

/** What every serverMessages element of a frame contains (frames.ts builds it this way). */
const MARK = Buffer.from('"type":"serverMessages"');

const row = (metric: string, pushline: string, detail: string): Row => ({ metric, pushline, detail });

function countMarks(data: Buffer): number {
  let n = 0;
  let at = data.indexOf(MARK);
  while (at !== -1) {
    n++;
    at = data.indexOf(MARK, at + MARK.length);
  }
  return n;
}

async function statsOf(comet: Child): Promise<{ conns: number; slowConsumerCloses: number; duplicatesDropped: number }> {
  comet.send('stats');
  return JSON.parse(await comet.nextLine(10_000)) as { conns: number; slowConsumerCloses: number; duplicatesDropped: number };
}

interface Memory { rss: number; heapUsed: number; external: number }
async function memoryOf(comet: Child): Promise<Memory> {
  comet.send('memory');
  return JSON.parse(await comet.nextLine(10_000)) as Memory;
}

export async function phaseFanout(o: FanoutOptions, report: Report, cleanup: Cleanup): Promise<void> {
  log(
    `\n## 1. room fan-out — ONE comet in a child process (COMET_BATCH_MS=${o.batchMs}); ${fmtInt(o.conns)} WebSocket clients in this process, ` +
      `all in one room; ${fmtInt(o.messages)} gRPC BroadcastRoom calls, ${o.inFlight} in flight (after ${o.warmupMessages} warm-up messages)`,
  );
  const grpcPort = await freePort();
  const cometId = `127.0.0.1:${grpcPort}`;
  const env = {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(o.redisPort), REDIS_KEY_PREFIX: 'bench1:', AUTH_SECRET: SECRET, PUSHLINE_DEV: 'true',
    LOG_LEVEL: 'warn', COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: String(grpcPort), COMET_ID: cometId,
    COMET_BATCH_MS: String(o.batchMs),
  };
  const comet = startChild('comet child', process.execPath, ['--expose-gc', '--import', 'tsx', join(o.root, 'bench/lib/push-comet.ts'), JSON.stringify(env)], {
    env: childEnv({}),
    cwd: o.root, // `--import tsx` resolves from here; push-comet.ts reads no .env
  });
  const removeComet = cleanup.add('stop the comet child', () => comet.stop());
  const ready = JSON.parse(await comet.nextLine(60_000)) as { wsPort: number; grpcPort: number; pid: number };
  const pid = comet.pid;
  log(`  comet child pid ${pid}: WebSocket :${ready.wsPort}, gRPC :${ready.grpcPort}`);

  const room = 'bench_room';
  const toks = await tokens(o.conns, room, 'u');
  await sleep(1000);
  const rssIdle = procRssBytes(pid);
  const memIdle = await memoryOf(comet);

  // Counters shared by all clients: total serverMessages elements, frames, time of the last one.
  let received = 0;
  let frames = 0;
  let lastAt = 0;
  let counting = true;
  const perClient = new Uint32Array(o.conns);
  const verified: Map<string, number>[] = Array.from({ length: Math.min(o.verifyClients, o.conns) }, () => new Map());
  const sockets: WebSocket[] = [];
  cleanup.add('close phase 1 client sockets', () => closeAll(sockets));

  const connectStart = performance.now();
  let connectErrors = 0;
  let firstError: unknown = null;
  await pool(o.conns, o.connectInFlight, async (i) => {
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
  if (connectErrors > 0) throw new Error(`${connectErrors} of ${o.conns} clients could not connect; first error: ${String(firstError)}`);
  const afterConnect = await statsOf(comet);
  log(`  ${fmtInt(sockets.length)} clients connected in ${connectS.toFixed(1)} s (${fmtInt(o.conns / connectS)}/s, ${o.connectInFlight} in flight); comet counts ${fmtInt(afterConnect.conns)}`);
  await sleep(2000);
  const rssConnected = procRssBytes(pid);
  const perConn = (rssConnected - rssIdle) / o.conns;
  log(`  comet RSS ${mib(rssIdle)} MiB idle → ${mib(rssConnected)} MiB with ${fmtInt(o.conns)} idle connections: ${fmtInt(perConn)} B per connection`);
  const memConnected = await memoryOf(comet);
  const perConnGc = {
    rss: (memConnected.rss - memIdle.rss) / o.conns,
    heap: (memConnected.heapUsed - memIdle.heapUsed) / o.conns,
    external: (memConnected.external - memIdle.external) / o.conns,
  };
  log(`  after a full GC: RSS ${fmtInt(perConnGc.rss)} B, JS heap ${fmtInt(perConnGc.heap)} B, buffers ${fmtInt(perConnGc.external)} B per connection`);

  const rpc = new CometClients({ deadlineMs: 30_000, token: DEV_COMET_GRPC_TOKEN }); // the comet runs with PUSHLINE_DEV
  cleanup.add('close gRPC channel', () => rpc.close());
  // The Proto job sends (the push contract): the id in the body and beside it.
  const body = (id: string) => messageProto(id, 0, messageBody(id, 0, { text: 'hello room' }));
  let notDelivered = 0;
  const send = async (id: string) => {
    const res = await rpc.broadcastRoom(cometId, room, body(id));
    if (res.delivered !== o.conns) notDelivered++;
  };
  const waitAll = async (target: number, timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    while (received < target && performance.now() < deadline) await sleep(5);
  };

  // Warm-up (JIT, gRPC channel): sent and received in full, then the counters are reset.
  await pool(o.warmupMessages, o.inFlight, (i) => send(`w${i}`));
  await waitAll(o.warmupMessages * o.conns, 30_000);
  if (received < o.warmupMessages * o.conns) report.note(`phase 1 warm-up: only ${fmtInt(received)} of ${fmtInt(o.warmupMessages * o.conns)} deliveries arrived within 30 s`);
  await sleep(200);
  received = 0;
  frames = 0;
  perClient.fill(0);
  for (const m of verified) m.clear();
  notDelivered = 0;

  const expected = o.messages * o.conns;
  const cpuChild0 = procCpuSeconds(pid);
  const cpuSelf0 = process.cpuUsage();
  const t0 = performance.now();
  lastAt = t0;
  await pool(o.messages, o.inFlight, (i) => send(`m${i}`));
  const sentAt = performance.now();
  await waitAll(expected, o.timeoutS * 1000);
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
  for (const n of perClient) if (n < o.messages) short++;
  let idProblems = 0;
  for (const seen of verified) {
    for (let i = 0; i < o.messages; i++) if (seen.get(`m${i}`) !== 1) idProblems++;
  }

  log(
    `  sent ${fmtInt(o.messages)} in ${((sentAt - t0) / 1000).toFixed(2)} s (${fmtInt(o.messages / ((sentAt - t0) / 1000))} calls/s); ` +
      `received ${fmtInt(received)} of ${fmtInt(expected)} deliveries in ${elapsed.toFixed(2)} s${timedOut ? ` (TIMED OUT after ${o.timeoutS} s)` : ''}: ${fmtInt(rate)} deliveries/s`,
  );
  log(
    `  ${fmtInt(frames)} frames, ${(received / Math.max(1, frames)).toFixed(1)} messages per frame; comet CPU ${cpuChild.toFixed(2)} s ` +
      `(${((cpuChild / elapsed) * 100).toFixed(0)}% of one core), client process CPU ${cpuSelf.toFixed(2)} s (${((cpuSelf / elapsed) * 100).toFixed(0)}% of one core)`,
  );

  report.row(row('room fan-out, deliveries/s, one comet (↑)', fmtInt(rate), `${fmtInt(o.conns)} clients × ${fmtInt(o.messages)} messages in ${elapsed.toFixed(2)} s`));
  report.row(row('  missing deliveries', fmtInt(expected - received), `${short} clients got fewer than ${o.messages}; slow-consumer closes ${stats.slowConsumerCloses}`));
  report.row(row('  messages per WebSocket frame (batching)', (received / Math.max(1, frames)).toFixed(1), `${fmtInt(frames)} frames, COMET_BATCH_MS=${o.batchMs}`));
  report.row(row('  gRPC BroadcastRoom calls/s (send side)', fmtInt(o.messages / ((sentAt - t0) / 1000)), `${o.inFlight} in flight`));
  report.row(row('comet CPU µs per delivery (↓)', ((cpuChild / Math.max(1, received)) * 1e6).toFixed(2), `${cpuChild.toFixed(2)} s CPU = ${((cpuChild / elapsed) * 100).toFixed(0)}% of one core over the run`));
  report.row(row(
    '  comet deliveries/s per core, CPU-bound estimate',
    fmtInt(received / Math.max(1e-9, cpuChild)),
    '= 1 / CPU per delivery; what the comet would reach if the clients kept up',
  ));
  report.row(row('client process CPU, % of one core', `${((cpuSelf / elapsed) * 100).toFixed(0)}%`, `${cpuSelf.toFixed(2)} s; near 100% = the clients are the bottleneck`));
  report.row(row('comet RSS per idle connection (↓)', `${fmtInt(perConn)} B`, `${mib(rssIdle)} → ${mib(rssConnected)} MiB for ${fmtInt(o.conns)} (after run ${mib(rssBusy)} MiB)`));
  if (o.verifyClients > 0) report.note(`phase 1: ${verified.length} clients parsed every frame and checked ids m0..m${o.messages - 1}: ${idProblems} missing or duplicated (the others count "serverMessages" elements without parsing)`);
  if (notDelivered > 0) report.note(`phase 1: ${notDelivered} BroadcastRoom answers reported delivered ≠ ${o.conns}`);
  if (stats.duplicatesDropped > 0) report.note(`phase 1: comet dropped ${stats.duplicatesDropped} duplicate ids`);
  report.note(
    `phase 1: this process (the ${fmtInt(o.conns)} clients) and the comet share ${availableParallelism()} cores; client CPU ${((cpuSelf / elapsed) * 100).toFixed(0)}% and comet CPU ` +
      `${((cpuChild / elapsed) * 100).toFixed(0)}% of one core each — if the client is near 100%, the measured rate is a lower bound on what the comet can do`,
  );

  closeAll(sockets);
  sockets.length = 0;
  rpc.close();
  await sleep(500);
  removeComet();
  await comet.stop();
}

