// pushline as the end-to-end contender: `pushline comet` ×2, `pushline job` and `pushline logic`
// as child processes (node bin/pushline.js …, PUSHLINE_DEV=true, LOG_LEVEL=warn, loopback ports),
// measured viewers and idle room members as pushline WebSocket clients in the bench process.
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type WebSocket from 'ws';
import { freePort } from '../../src/local/redis-server.ts';
import { BASIC, SECRET, closeAll, log, openClient, tokens } from './push-common.ts';
import { childEnv, exitedChild, startChild, waitForHttp, type Child } from './push-procs.ts';
import type { BatchTotals, Receipts, Stack } from './push-scenario.ts';
import { pool } from './util.ts';

export interface PushlineStackOptions {
  root: string;
  dir: string;
  redisPort: number;
  keyPrefix: string;
  room: string;
  viewersPerComet: number;
  idleMembers: number;
  connectInFlight: number;
  /** JOB_CONSUMERS / JOB_CONCURRENCY; empty = pushline's defaults. */
  jobConsumers: string;
  jobConcurrency: string;
  /** LOG_LEVEL of every pushline process (warn: the bench measures the pipeline, not its logs). */
  logLevel: string;
}

/** The content of every serverMessages element of a frame (one frame may carry a JSON array of them). */
function contents(data: Buffer): string[] {
  const parsed = JSON.parse(data.toString()) as unknown;
  const out: string[] = [];
  for (const el of Array.isArray(parsed) ? parsed : [parsed]) {
    const e = el as { type?: string; payload?: { messages?: { content?: string }[] } };
    if (e.type === 'serverMessages') out.push(e.payload?.messages?.[0]?.content ?? '');
  }
  return out;
}

export async function startPushlineStack(o: PushlineStackOptions, receipts: Receipts): Promise<Stack> {
  const base = {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(o.redisPort), REDIS_KEY_PREFIX: o.keyPrefix, PUSHLINE_DEV: 'true', LOG_LEVEL: o.logLevel,
    AUTH_SECRET: SECRET, COMET_HOST: '127.0.0.1',
  };
  const bin = join(o.root, 'bin/pushline.js');
  const children: Child[] = [];
  const sockets: WebSocket[] = [];
  const redis = new Redis({ host: '127.0.0.1', port: o.redisPort, protocol: 2, lazyConnect: true });
  const stop = async () => {
    closeAll(sockets);
    redis.disconnect();
    // Reverse order: logic and job first, then the comets.
    for (const c of [...children].reverse()) await c.stop();
  };
  try {
    const spawnPushline = (name: string, sub: string, extra: Record<string, string>) => {
      const child = startChild(name, process.execPath, [bin, sub], { env: childEnv({ ...base, ...extra }), cwd: o.dir });
      children.push(child);
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
    const jobMetricsPort = await freePort();
    const job = spawnPushline('job', 'job', {
      JOB_METRICS_PORT: String(jobMetricsPort),
      ...(o.jobConsumers ? { JOB_CONSUMERS: o.jobConsumers } : {}),
      ...(o.jobConcurrency ? { JOB_CONCURRENCY: o.jobConcurrency } : {}),
    });
    for (const c of comets) await waitForHttp(`http://127.0.0.1:${c.wsPort}/health`, 60_000, c.child);
    await waitForHttp(`http://127.0.0.1:${logicPort}/health`, 60_000, logic);
    if (job.exited) throw new Error(`job exited while starting; stderr:\n${job.stderrTail()}`);
    await redis.connect();
    log(`  pushline: comets :${comets.map((c) => c.wsPort).join(', :')} (WebSocket), logic :${logicPort}, job pid ${job.pid}`);

    const viewers = o.viewersPerComet * 2;
    const toks = await tokens(viewers, o.room, 'viewer');
    for (let v = 0; v < viewers; v++) {
      const onFrame = (data: Buffer) => {
        for (const content of contents(data)) receipts.receive(v, content);
      };
      sockets.push(await openClient(comets[v % 2]!.wsPort, toks[v]!, onFrame));
    }
    if (o.idleMembers > 0) {
      const idle = await tokens(o.idleMembers, o.room, 'idle');
      await pool(o.idleMembers, o.connectInFlight, async (k) => {
        sockets.push(await openClient(comets[k % 2]!.wsPort, idle[k]!, () => {}));
      });
    }
    log(`  pushline: ${viewers} measured viewers + ${o.idleMembers} idle members in room ${o.room}, split over 2 comets`);
    return {
      label: 'pushline',
      origin: `http://127.0.0.1:${logicPort}`,
      path: '/logic/send',
      headers: { authorization: BASIC, 'content-type': 'application/json' },
      acceptedStatus: 202,
      body: (content) => JSON.stringify({ roomId: o.room, userId: 'bench', messages: [{ content }] }),
      viewers,
      procs: [['HTTP entry', logic.pid], ['job', job.pid], ['gateway 1', comets[0]!.child.pid], ['gateway 2', comets[1]!.child.pid]],
      redis,
      health: () => exitedChild(children),
      batchTotals: () => jobBatchTotals(jobMetricsPort),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The job's pushline_push_batch_messages histogram totals, read from its /metrics. */
async function jobBatchTotals(port: number): Promise<BatchTotals> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const read = (part: 'sum' | 'count', stage: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`pushline_push_batch_messages_${part}{`) && l.includes(`stage="${stage}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return {
    routing: { sum: read('sum', 'routing'), count: read('count', 'routing') },
    grpcCall: { sum: read('sum', 'grpc_call'), count: read('count', 'grpc_call') },
  };
}
