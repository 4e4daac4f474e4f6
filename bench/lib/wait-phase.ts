// The cost of REDIS_WAIT_REPLICAS (docs/durability.md): one master and one replica of its own
// (AOF on both), the same enqueue path logic uses (enqueueOne, batched, 2 calls in flight),
// measured with WAIT 1 and without, alternating, in one run. Measures only.
//
//   node --import tsx bench/queue.ts --phases=wait [--wait-n=20000 --wait-rate=500 --wait-s=5 --wait-repeat=2]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { Redis } from 'ioredis';
import { JobRunner } from '../../src/job/runner.ts';
import { ProcessorRegistry } from '../../src/job/processor.ts';
import { startRedisServer, type RunningRedis } from '../../src/local/redis-server.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { ReplicationWait } from '../../src/queue/replication-wait.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis, type RedisTarget } from '../../src/redis/connect.ts';
import { benchRunnerDefaults } from './peers.ts';
import { fmtInt, fmtMs, numberSetting, percentile, pool, sleep } from './util.ts';

const N = numberSetting('wait-n', 20_000);
const IN_FLIGHT = numberSetting('wait-in-flight', 256);
const RATE = numberSetting('wait-rate', 500);
const SECONDS = numberSetting('wait-s', 5);
const REPEAT = Math.max(1, Math.floor(numberSetting('wait-repeat', 2)));
const TIMEOUT_MS = numberSetting('wait-timeout-ms', 250);

interface Setup {
  master: RunningRedis;
  replica: RunningRedis;
  admin: Redis;
  target: RedisTarget;
}

async function startPair(dir: string): Promise<Setup> {
  const master = await startRedisServer({ dir: join(dir, 'master'), appendonly: true });
  const replica = await startRedisServer({ dir: join(dir, 'replica'), appendonly: true });
  const admin = new Redis({ host: '127.0.0.1', port: master.port, protocol: 2, maxRetriesPerRequest: null });
  const toReplica = new Redis({ host: '127.0.0.1', port: replica.port, protocol: 2, maxRetriesPerRequest: null });
  await admin.config('SET', 'repl-diskless-sync-delay', '0');
  await toReplica.replicaof('127.0.0.1', String(master.port));
  toReplica.disconnect();
  for (let i = 0; i < 600; i++) {
    if (/^slave0:.*state=online/m.test(await admin.info('replication'))) break;
    await sleep(50);
  }
  return { master, replica, admin, target: { host: '127.0.0.1', port: master.port, db: 0, password: '' } };
}

/** A queue as logic builds it: its api connection, plus the WAIT connection when replicas > 0. */
async function logicQueue(s: Setup, replicas: number, prefix: string) {
  const api = createRedis(s.target, 'api', 'bench-wait-logic');
  await api.connect();
  let replication: ReplicationWait | undefined;
  if (replicas > 0) {
    const waitConn = createRedis(s.target, 'api', 'bench-wait');
    await waitConn.connect();
    replication = new ReplicationWait(waitConn, { replicas, timeoutMs: TIMEOUT_MS });
  }
  const keys = queueKeys({ keyPrefix: prefix });
  const queue = new TaskQueue(api, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 3600, ...(replication ? { replication } : {}) });
  return {
    queue,
    keys,
    close() {
      api.disconnect();
      replication?.redis.disconnect();
    },
  };
}

async function enqueueRate(s: Setup, replicas: number, run: number): Promise<{ perSec: number; refused: number }> {
  const q = await logicQueue(s, replicas, `w${run}e${replicas}:`);
  let refused = 0;
  const started = performance.now();
  await pool(N, IN_FLIGHT, () => q.queue.enqueueOne({ type: 'bench', priority: 3, payload: '{}' }).catch(() => void refused++));
  const seconds = (performance.now() - started) / 1000;
  q.close();
  return { perSec: N / seconds, refused };
}

/** Tasks at a fixed rate, one worker (4×16) in this process: add→202 and add→start, in ms. */
async function latencies(s: Setup, replicas: number, run: number): Promise<{ ack: number[]; start: number[]; refused: number }> {
  const prefix = `w${run}l${replicas}:`;
  const q = await logicQueue(s, replicas, prefix);
  const command = createRedis(s.target, 'command', 'bench-wait-job');
  await command.connect();
  const jobQueue = new TaskQueue(command, q.keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 3600 });
  const ack: number[] = [];
  const start: number[] = [];
  let refused = 0;
  const dispatcher = new Agent();
  const runner = new JobRunner({
    queue: jobQueue,
    blockingConnection: (n) => createRedis(s.target, 'blocking', `bench-wait-${n}`),
    registry: new ProcessorRegistry([
      {
        type: 'bench',
        async process(ctx) {
          start.push(Date.now() - (ctx.payload as { t: number }).t);
          return null;
        },
      },
    ]),
    consumers: 4,
    concurrency: 16,
    ...benchRunnerDefaults(dispatcher),
  });
  await runner.start();
  const total = Math.round(RATE * SECONDS);
  const began = Date.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = began + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 1) await sleep(wait);
    const t = Date.now();
    pending.push(
      q.queue.enqueueOne({ type: 'bench', priority: 3, payload: JSON.stringify({ t }) }).then(
        () => void ack.push(Date.now() - t),
        () => void refused++,
      ),
    );
  }
  await Promise.all(pending);
  for (let i = 0; i < 400 && start.length < ack.length; i++) await sleep(25);
  await runner.stop();
  await dispatcher.close();
  command.disconnect();
  q.close();
  return { ack, start, refused };
}

export async function phaseWait(log: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-bench-wait-'));
  const s = await startPair(dir);
  try {
    log(`\n[wait] REDIS_WAIT_REPLICAS 1 vs 0 on master :${s.master.port} + replica :${s.replica.port} (AOF on both); enqueue N=${N} (${IN_FLIGHT} in flight), latency ${RATE}/s × ${SECONDS} s, WAIT timeout ${TIMEOUT_MS} ms, ${REPEAT} runs each, alternating`);
    const best = new Map<number, number>();
    const acks = new Map<number, number[]>();
    const starts = new Map<number, number[]>();
    const refusals = new Map<number, number>();
    for (let run = 0; run < REPEAT; run++) {
      for (const replicas of run % 2 === 0 ? [0, 1] : [1, 0]) {
        const e = await enqueueRate(s, replicas, run);
        best.set(replicas, Math.max(best.get(replicas) ?? 0, e.perSec));
        const l = await latencies(s, replicas, run);
        acks.set(replicas, [...(acks.get(replicas) ?? []), ...l.ack]);
        starts.set(replicas, [...(starts.get(replicas) ?? []), ...l.start]);
        refusals.set(replicas, (refusals.get(replicas) ?? 0) + e.refused + l.refused);
        log(`[wait] run ${run + 1} WAIT ${replicas}: enqueue ${fmtInt(e.perSec)}/s, add→202 p99 ${fmtMs(percentile(l.ack.sort((a, b) => a - b), 99))}, add→start p99 ${fmtMs(percentile(l.start.sort((a, b) => a - b), 99))}`);
      }
    }
    const p = (xs: number[] | undefined, q: number) => fmtMs(percentile([...(xs ?? [])].sort((a, b) => a - b), q));
    log('\n| REDIS_WAIT_REPLICAS | enqueue/s (best) | add→202 p50 | add→202 p99 | add→start p50 | add→start p99 | refused (503) |');
    log('|---|---:|---:|---:|---:|---:|---:|');
    for (const replicas of [0, 1]) {
      log(`| ${replicas} | ${fmtInt(best.get(replicas)!)} | ${p(acks.get(replicas), 50)} | ${p(acks.get(replicas), 99)} | ${p(starts.get(replicas), 50)} | ${p(starts.get(replicas), 99)} | ${refusals.get(replicas)} |`);
    }
  } finally {
    s.admin.disconnect();
    await s.replica.stop();
    await s.master.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
