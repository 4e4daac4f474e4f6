// Sentinel failover under load, all real processes: a master, two replicas and three
// sentinels; pushline logic, job and a comet started as users start them (REDIS_SENTINELS). Tasks are
// posted steadily while the master is SIGKILLed. With REDIS_WAIT_REPLICAS=1 every 202 must
// complete (its webhook arrives), no task id may be handed out twice, and logic must accept
// tasks again (and room pushes reach WebSocket clients) without any pushline process being restarted. Without WAIT the same run records
// (does not assert) how many acknowledged tasks were lost, for docs/durability.md.
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_AUTH_SECRET } from '../../src/config/schema.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { connectClient, serverMessages, type WsClient } from '../helpers/ws.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startReplicatedRedis, type ReplicatedRedis } from '../helpers/redis-sentinel.ts';
import { waitFor } from '../helpers/wait.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const AUTH = `Basic ${Buffer.from('admin:password').toString('base64')}`;
/** Where the figures of every run are appended (one JSON line each), besides the console. */
export const FIGURES_FILE = join(tmpdir(), 'pushline-failover-figures.jsonl');

interface Posted {
  i: number;
  at: number;
  status: number;
  taskId?: string;
  error?: string;
}

interface Figures {
  how: 'kill' | 'demote';
  waitReplicas: number;
  posted: number;
  accepted: number;
  refused: number;
  lost: number;
  duplicateIds: number;
  secondsToRecover: number;
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  cleanup = [];
});

async function failoverRun(waitReplicas: number, how: 'kill' | 'demote' = 'kill'): Promise<{ figures: Figures; posted: Posted[]; receiver: Receiver; rr: ReplicatedRedis; procs: Proc[]; newMaster: number; logicUrl: string; wsPort: number; before: WsClient }> {
  const rr = await startReplicatedRedis({ replicas: 2, sentinels: 3, downAfterMs: 1000 });
  cleanup.push(() => rr.close());
  const receiver = await startReceiver();
  cleanup.push(() => receiver.close());
  const [wsPort, grpcPort] = [await freePort(), await freePort()];
  const env = {
    COMET_HOST: '127.0.0.1',
    COMET_WS_PORT: String(wsPort),
    COMET_GRPC_PORT: String(grpcPort),
    COMET_ID: `127.0.0.1:${grpcPort}`,
    REDIS_SENTINELS: rr.sentinelList,
    REDIS_WAIT_REPLICAS: String(waitReplicas),
    REDIS_WAIT_TIMEOUT_MS: '250',
    PUSHLINE_DEV: 'true',
    LOG_LEVEL: 'info',
    LOGIC_HOST: '127.0.0.1',
    LOGIC_PORT: '0',
    JOB_METRICS_HOST: '127.0.0.1',
    JOB_METRICS_PORT: '0',
    JOB_CONSUMERS: '2',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_BACKOFF_MS: '50',
    WEBHOOK_BACKOFF_MAX_MS: '500',
    WEBHOOK_MAX_ATTEMPTS: '100',
    TASK_VISIBILITY_TIMEOUT_MS: '2000',
    REAPER_INTERVAL_MS: '250',
    TASK_BACKOFF_MS: '50',
    TASK_BACKOFF_MAX_MS: '500',
    TASK_MAX_ATTEMPTS: '100',
  };
  const logic = spawnPushline(['logic'], env);
  const job = spawnPushline(['job'], env);
  const comet = spawnPushline(['comet'], env);
  const procs = [logic, job, comet];
  cleanup.push(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
  });
  const logicUrl = await waitFor(() => /logic listening on (http:\/\/[0-9.:]+)/.exec(logic.output())?.[1], 'logic listening', 30_000, 50);
  await waitFor(() => job.output().includes('Consumer 1 started successfully'), 'job consuming', 30_000, 50);
  await waitFor(() => comet.output().includes('serving WebSocket'), 'comet serving', 30_000, 50);
  // A viewer connected before the failover: its routing was written on the old master.
  const before = await connectClient(wsPort, DEV_AUTH_SECRET, 'viewer_before', 'failover_room');
  cleanup.push(async () => before.ws.close());

  const posted: Posted[] = [];
  let n = 0;
  const post = async () => {
    const i = n++;
    const at = Date.now();
    try {
      const res = await fetch(`${logicUrl}/generate`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'echo', payload: { i }, hook_url: `${receiver.url}/hook/${i}` }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json()) as { task_id?: string; error?: string };
      posted.push({ i, at, status: res.status, ...(body.task_id ? { taskId: body.task_id } : {}), ...(body.error ? { error: body.error } : {}) });
    } catch (err) {
      posted.push({ i, at, status: 0, error: String(err) });
    }
  };
  // About 100 tasks/s, a few in flight at any time, until told to stop.
  let producing = true;
  const inFlight = new Set<Promise<void>>();
  const producer = (async () => {
    while (producing) {
      for (let k = 0; k < 2; k++) {
        const p = post().finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(20);
    }
    await Promise.all(inFlight);
  })();

  const oldMaster = rr.nodes[0]!.port;
  await waitFor(() => posted.filter((p) => p.status === 202).length >= 100, '100 tasks accepted before the failover', 30_000, 50);
  const killedAt = Date.now();
  if (how === 'kill') await rr.kill(oldMaster);
  // SENTINEL FAILOVER: the old master stays up and becomes a replica; connections to it stay
  // open and its writes answer READONLY (and, had it been cut off, it would accept writes that
  // its resync later discards).
  else await rr.client(rr.sentinels[0]!.port).call('SENTINEL', 'FAILOVER', 'mymaster');
  const newMaster = await rr.waitForNewMaster(oldMaster);
  // Service is back once logic accepts tasks again; then keep the load on a little longer.
  const promotedAt = Date.now();
  await waitFor(() => posted.filter((p) => p.at > promotedAt && p.status === 202).length >= 100, '100 tasks accepted after the failover', 60_000, 50);
  producing = false;
  await producer;

  // Settled: nothing waits, runs or retries any more on the new master, tasks or webhooks.
  const master = rr.client(newMaster);
  const queues = ['uvr_tasks', 'uvr_tasks:processing', 'uvr_tasks:delayed', 'uvr_results', 'uvr_results:processing', 'uvr_results:delayed'];
  await waitFor(async () => {
    // One transaction: a task that moves between two sets (a lease requeued) cannot slip
    // between separate reads and make the queues look empty for a moment.
    const sizes = (await master.multi(queues.map((q) => ['zcard', q])).exec()) ?? [];
    return sizes.length === queues.length && sizes.every(([err, n]) => !err && n === 0);
  }, 'the queues on the new master to drain', 90_000, 250);

  const accepted = posted.filter((p) => p.status === 202);
  const hooked = new Map<string, Set<number>>(); // task id → request numbers its webhooks named
  for (const r of receiver.received) {
    const i = Number(r.path.split('/').pop());
    const body = JSON.parse(r.body) as { task_id: string; status: string };
    if (body.status !== 'completed') continue;
    hooked.set(body.task_id, (hooked.get(body.task_id) ?? new Set()).add(i));
  }
  const byId = new Map<string, number[]>();
  for (const p of accepted) byId.set(p.taskId!, [...(byId.get(p.taskId!) ?? []), p.i]);
  const lost = accepted.filter((p) => !hooked.get(p.taskId!)?.has(p.i)).length;
  // An id handed out twice: two requests got it, or its webhooks name more than one request.
  const duplicateIds = [...new Set([...byId.keys(), ...hooked.keys()])].filter((id) => (byId.get(id)?.length ?? 0) > 1 || (hooked.get(id)?.size ?? 0) > 1).length;
  // The outage: from the kill to the first 202 after the last refusal.
  const lastRefused = posted.filter((p) => p.at >= killedAt && p.status !== 202).sort((a, b) => a.at - b.at).at(-1);
  const firstBack = lastRefused ? posted.filter((p) => p.at > lastRefused.at && p.status === 202).sort((a, b) => a.at - b.at)[0]! : { at: killedAt };
  const figures: Figures = {
    how,
    waitReplicas,
    posted: posted.length,
    accepted: accepted.length,
    refused: posted.length - accepted.length,
    lost,
    duplicateIds,
    secondsToRecover: Math.round((firstBack.at - killedAt) / 100) / 10,
  };
  if (process.env.FAILOVER_DEBUG) {
    const buckets = new Map<string, number>();
    for (const p of posted) {
      const k = `${Math.floor((p.at - killedAt) / 1000)}s ${p.status} ${p.error ?? ''}`;
      buckets.set(k, (buckets.get(k) ?? 0) + 1);
    }
    console.log([...buckets].sort((a, b) => parseInt(a[0]) - parseInt(b[0])).map(([k, v]) => `${k}: ${v}`).join('\n'));
  }
  console.log(`sentinel failover (${how}), REDIS_WAIT_REPLICAS=${waitReplicas}: ${JSON.stringify(figures)}`);
  appendFileSync(FIGURES_FILE, `${JSON.stringify({ at: new Date().toISOString(), ...figures })}\n`);
  return { figures, posted, receiver, rr, procs, newMaster, logicUrl, wsPort, before };
}

/** After the failover: a room push reaches the viewer from before it and one who connects now. */
async function pushStillWorks(run: { logicUrl: string; wsPort: number; before: WsClient }): Promise<void> {
  const after = await connectClient(run.wsPort, DEV_AUTH_SECRET, 'viewer_after', 'failover_room');
  cleanup.push(async () => after.ws.close());
  const sent = await waitFor(async () => {
    const res = await fetch(`${run.logicUrl}/logic/send`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ roomId: 'failover_room', userId: 'host', messages: [{ content: 'still here' }] }),
    });
    return res.status === 202 ? ((await res.json()) as { task_id: string }) : null;
  }, 'a room push accepted after the failover');
  for (const viewer of [run.before, after]) {
    await waitFor(() => serverMessages(viewer).some((m) => m.id === sent.task_id), 'the push delivered through the comet', 30_000, 50);
  }
}

describe('Sentinel failover (master SIGKILLed under load)', () => {
  it('with REDIS_WAIT_REPLICAS=1: every 202 completes, no id twice, service back without restarts', { timeout: 300_000 }, async () => {
    const run = await failoverRun(1);
    const { figures, procs, logicUrl, newMaster } = run;
    // At least the 100 before and the 100 after the failover it waited for.
    expect(figures.accepted).toBeGreaterThanOrEqual(200);
    expect(figures.lost).toBe(0);
    expect(figures.duplicateIds).toBe(0);
    // Neither process was restarted, and both are still running.
    for (const p of procs) expect(p.child.exitCode).toBeNull();
    const health = await fetch(`${logicUrl}/health`);
    expect(health.status).toBe(200);
    const redis = ((await health.json()) as { redis: { role: string } }).redis;
    expect(redis.role).toBe('master');
    expect(newMaster).toBeGreaterThan(0);
    // The comet followed too: routing, gRPC delivery and WebSocket clients work on the new master.
    await pushStillWorks(run);
  });

  it('a demoted master that stays up (SENTINEL FAILOVER): every connection leaves it, every 202 completes', { timeout: 300_000 }, async () => {
    const run = await failoverRun(1, 'demote');
    const { figures, procs, logicUrl } = run;
    // At least the 100 before and the 100 after the failover it waited for.
    expect(figures.accepted).toBeGreaterThanOrEqual(200);
    expect(figures.lost).toBe(0);
    expect(figures.duplicateIds).toBe(0);
    for (const p of procs) expect(p.child.exitCode).toBeNull();
    const health = await fetch(`${logicUrl}/health`);
    expect(health.status).toBe(200);
    await pushStillWorks(run);
  });

  it.each(['kill', 'demote'] as const)('without WAIT (%s): records how many acknowledged tasks were lost (not asserted)', { timeout: 300_000 }, async (how) => {
    const { figures, procs } = await failoverRun(0, how);
    // At least the 100 before and the 100 after the failover it waited for.
    expect(figures.accepted).toBeGreaterThanOrEqual(200);
    for (const p of procs) expect(p.child.exitCode).toBeNull();
  });
});
