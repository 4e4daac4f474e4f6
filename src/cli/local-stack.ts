// `pushline start`: the whole local stack in one command. Without a configured Redis it runs
// its own redis-server (AOF on, data in .pushline/redis, port 6379 or a free one), then two
// comets, logic and job as child processes with dev settings, prints where everything is (and
// writes it to .pushline/env for the CLI and scripts), and on Ctrl-C stops them one by one —
// logic, job (in-flight tasks handed back), comets (clients get 1001) — and Redis last.
//
// Every child runs in a process group of its own, so a terminal's Ctrl-C (SIGINT to the whole
// foreground group) reaches only this process, which then sends each child exactly one SIGTERM
// in order. Children watch this process through an IPC channel and stop by themselves when it
// dies without stopping them (src/cli/lifecycle.ts; the Redis guard in src/local/redis-server.ts).
import { claimEarlySignals } from './early-signals.ts';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../config/schema.ts';
import { apiCredentials, readEnvironment, webhookSecret } from '../config/load.ts';
import { ensureRedisServer, isPortFree, startRedisServer, type RunningRedis } from '../local/redis-server.ts';
import { awaitListening, type ListeningPorts } from '../local/listening-report.ts';
import { describeTarget, redisTarget } from '../redis/connect.ts';
import { removeStackFile, stackFilePath, writeStackFile } from '../local/stack-file.ts';
import { useColour } from '../util/log.ts';
import type { Logger } from '../util/log.ts';

const BIN = fileURLToPath(new URL('../../bin/pushline.js', import.meta.url));

export interface CometPorts {
  ws: number;
  grpc: number;
}

export interface StackOptions {
  env: Env;
  log: Logger;
  dataDir: string;
  /** Preferred port of our own redis-server; a free one when taken; 0 = any free port. */
  redisPort: number;
  /** Preferred port of logic's HTTP API; a free one when taken; 0 = any free port. */
  logicPort: number;
  /** Preferred ports of each comet; each taken one is replaced by a free one; 0 = any free port. */
  comets: CometPorts[];
  /** Preferred port of the job's /metrics; 0 = any free port. */
  jobMetricsPort: number;
}

export const DEFAULT_COMET_PORTS: CometPorts[] = [
  { ws: 8082, grpc: 50051 },
  { ws: 8083, grpc: 50052 },
];

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<number | null>;
  /** The ports it reports once it listens; null when it exits first. */
  listening: Promise<ListeningPorts | null>;
  /** Set once `listening` has settled. */
  reported: boolean;
}
function prefixLines(name: string, stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream): void {
  if (!stream) return;
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      out.write(`[${name}] ${buffer.slice(0, nl)}\n`);
      buffer = buffer.slice(nl + 1);
    }
  });
}

function spawnChild(name: string, args: string[], env: NodeJS.ProcessEnv): Child {
  // detached: a group of its own (see above); 'ipc': the channel the child watches us through.
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
  prefixLines(name, child.stdout, process.stdout);
  prefixLines(name, child.stderr, process.stderr);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const spawned: Child = { name, process: child, exited, listening: awaitListening(child), reported: false };
  void spawned.listening.then(() => (spawned.reported = true));
  return spawned;
}

/**
 * The preferred port when it is free, else 0 = any free port, chosen where it is bound: a child
 * binds one itself and reports it (src/local/listening-report.ts), so nobody can take it between
 * a guess and the bind; our redis-server tries free ports until one starts (startOnAPort).
 */
async function portOrAny(port: number, what: string, log: Logger): Promise<number> {
  if (port === 0) return 0;
  if (await isPortFree(port)) return port;
  log.warn(`port ${port} is taken: ${what} gets a free one (the banner says which)`);
  return 0;
}

/** Each child's longest orderly stop before it is killed: the job waits for its running tasks first. */
function stopLimitMs(name: string, env: Env): number {
  return name === 'job' ? env.JOB_SHUTDOWN_TIMEOUT_MS + 15_000 : 15_000;
}

export async function runLocalStack(options: StackOptions): Promise<void> {
  const { env, log } = options;
  const raw = readEnvironment();
  const externalRedis = Boolean(raw.REDIS_URL || raw.REDIS_HOST);
  let redis: RunningRedis | null = null;
  let redisHost = env.REDIS_HOST;
  let redisPort = env.REDIS_PORT;

  if (!externalRedis) {
    const binary = ensureRedisServer((line) => log.info(line));
    const port = await portOrAny(options.redisPort, 'our redis-server', log);
    const dir = resolve(options.dataDir, 'redis');
    redis = await startRedisServer({ dir, binary, appendonly: true, guarded: true, ...(port ? { port } : {}) });
    redisHost = '127.0.0.1';
    redisPort = redis.port;
    log.info(`started redis-server on 127.0.0.1:${redis.port} (AOF on, data in ${dir})`);
  } else {
    log.info(`using the configured Redis (${raw.REDIS_URL ? 'REDIS_URL' : describeTarget(redisTarget(env))})`);
  }

  // Colours are decided here, where stdout may be a terminal; the children's stdout is our pipe.
  const colour = useColour(env);
  const cometPorts: CometPorts[] = [];
  for (const [i, c] of options.comets.entries()) {
    cometPorts.push({ ws: await portOrAny(c.ws, `comet${i + 1}'s WebSocket`, log), grpc: await portOrAny(c.grpc, `comet${i + 1}'s gRPC`, log) });
  }

  const devEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PUSHLINE_DEV: 'true',
    LOG_PRETTY: raw.LOG_PRETTY ?? 'true',
    FORCE_COLOR: colour ? '1' : '0',
    // Local receivers (http://localhost:...) are the usual webhook targets on a dev machine.
    WEBHOOK_ALLOW_PRIVATE: raw.WEBHOOK_ALLOW_PRIVATE ?? 'true',
    // ... and local file servers the usual audio sources (README: the seed request).
    AUDIO_ALLOW_PRIVATE: raw.AUDIO_ALLOW_PRIVATE ?? 'true',
    ...(externalRedis ? {} : { REDIS_HOST: redisHost, REDIS_PORT: String(redisPort) }),
    LOGIC_PORT: String(await portOrAny(options.logicPort, 'logic', log)),
    // Dev credentials must not be reachable from the network: everything on loopback.
    LOGIC_HOST: raw.LOGIC_HOST ?? '127.0.0.1',
    JOB_METRICS_HOST: raw.JOB_METRICS_HOST ?? '127.0.0.1',
    JOB_METRICS_PORT: String(await portOrAny(options.jobMetricsPort, "the job's /metrics", log)),
    // One fresh token per run, shared by the comets and job: never the published dev token.
    COMET_GRPC_TOKEN: raw.COMET_GRPC_TOKEN || randomBytes(24).toString('base64url'),
  };

  // Each comet names itself after the ports it bound (COMET_ID localhost:<grpc>, public URL
  // ws://localhost:<ws>), known only once it has bound them. Empty values count as unset and the
  // environment wins over .env: a COMET_ID of the user's would give both comets one identity.
  const cometChildren = cometPorts.map((c, i) =>
    spawnChild(`comet${i + 1}`, ['comet'], {
      ...devEnv,
      COMET_HOST: raw.COMET_HOST ?? '127.0.0.1',
      COMET_WS_PORT: String(c.ws),
      COMET_GRPC_PORT: String(c.grpc),
      COMET_ID: '',
      COMET_PUBLIC_URL: '',
    }),
  );
  const logic = spawnChild('logic', ['logic'], devEnv);
  const job = spawnChild('job', ['job'], devEnv);
  const children = [...cometChildren, logic, job];

  let stopping = false;
  // One orderly stop: logic (no new work), job (finishes or hands back its tasks, and may still
  // push through the comets meanwhile), the comets (clients get 1001), Redis last. Each child
  // gets exactly one SIGTERM, and the next one only once it has exited.
  const shutdown = async (code: number) => {
    stopping = true;
    log.info('stopping the local stack: logic, job, comets, then Redis');
    for (const c of [logic, job, ...cometChildren]) {
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGTERM');
      const killer = setTimeout(() => {
        log.warn(`${c.name} did not stop within ${stopLimitMs(c.name, env)} ms: killing it`);
        c.process.kill('SIGKILL');
      }, stopLimitMs(c.name, env));
      await c.exited;
      clearTimeout(killer);
    }
    if (redis) await redis.stop();
    removeStackFile(options.dataDir);
    log.info('stopped');
    process.exit(code);
  };
  // A second Ctrl-C from the user means "now": kill the children, stop Redis (SIGTERM flushes
  // its AOF in a moment), exit. Only the user's signals count: the children are in groups of
  // their own and never send us anything.
  const hardStop = async (signal: NodeJS.Signals) => {
    log.warn(`${signal} again: killing the stack now`);
    for (const c of children) c.process.kill('SIGKILL');
    if (redis) await redis.stop();
    removeStackFile(options.dataDir);
    process.exit(130);
  };
  const onSignal = (signal: NodeJS.Signals) => void (stopping ? hardStop(signal) : shutdown(0));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const early = claimEarlySignals();
  if (early) onSignal(early);
  for (const c of children) {
    c.exited.then((code) => {
      if (!stopping) {
        log.error(`${c.name} exited unexpectedly (code ${code}); stopping the stack`);
        void shutdown(1);
      }
    });
  }

  // The ports each child bound; a child that exits first has already started the stop above.
  // One that neither listens nor exits (its Redis still loading a large AOF) is named, not hidden.
  const slow = setTimeout(() => {
    const waiting = children.filter((c) => !c.reported).map((c) => c.name);
    if (waiting.length > 0 && !stopping) log.warn(`still waiting for ${waiting.join(', ')} to listen (their log lines above say why)`);
  }, 30_000);
  const [logicPorts, jobPorts, ...cometReports] = await Promise.all([logic.listening, job.listening, ...cometChildren.map((c) => c.listening)]);
  clearTimeout(slow);
  if (stopping || !logicPorts || !jobPorts || cometReports.some((r) => !r)) return;
  const ports: StackPorts = {
    logic: logicPorts.http!,
    jobMetrics: jobPorts.metrics!,
    comets: cometReports.map((r, i) => ({ name: `comet${i + 1}`, ws: r!.ws!, grpc: r!.grpc! })),
  };

  // Where the CLI and scripts find this stack while it runs (the Redis port may not be 6379; a
  // cluster, `--cluster`, is on free ports nobody could guess).
  const clusterNodes = env.REDIS_CLUSTER_NODES;
  const clusterEnv = clusterNodes ? { REDIS_CLUSTER_NODES: clusterNodes, ...(env.REDIS_QUEUE_SHARDS > 1 ? { REDIS_QUEUE_SHARDS: env.REDIS_QUEUE_SHARDS } : {}) } : null;
  writeStackFile(options.dataDir, {
    ...(clusterEnv ?? (externalRedis ? {} : { REDIS_HOST: redisHost, REDIS_PORT: redisPort })),
    LOGIC_PORT: ports.logic,
    JOB_METRICS_PORT: ports.jobMetrics,
    ...Object.fromEntries(ports.comets.flatMap((c, i) => [[`COMET${i + 1}_WS_PORT`, c.ws], [`COMET${i + 1}_GRPC_PORT`, c.grpc]])),
  });

  // The banner comes once logic and every comet answer, so the URLs it prints work when read.
  const deadline = Date.now() + 30_000;
  const healthUrls = [`http://127.0.0.1:${ports.logic}/health`, ...ports.comets.map((c) => `http://127.0.0.1:${c.ws}/health`)];
  const answers = async (url: string) => {
    try {
      return (await fetch(url)).status === 200;
    } catch {
      return false; // not up yet
    }
  };
  while (!stopping && Date.now() < deadline) {
    if ((await Promise.all(healthUrls.map(answers))).every(Boolean)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (stopping) return;
  const redisAt = clusterNodes ? { cluster: clusterNodes, env: clusterEnv! } : raw.REDIS_URL ? { url: true as const } : { host: redisHost, port: redisPort, ownAof: redis !== null };
  process.stdout.write(bannerLines({ env, ports, redisAt, grpcToken: devEnv.COMET_GRPC_TOKEN!, dataDir: options.dataDir }).join('\n') + '\n');
}

interface StackPorts {
  logic: number;
  jobMetrics: number;
  comets: { name: string; ws: number; grpc: number }[];
}

type RedisAt =
  | { cluster: string; env: Record<string, string | number> }
  | { url: true }
  | { host: string; port: number; ownAof: boolean };

/** What the stack prints once it answers: where everything is, and the exact commands to try. */
function bannerLines(o: { env: Env; ports: StackPorts; redisAt: RedisAt; grpcToken: string; dataDir: string }): string[] {
  const { env, ports, redisAt } = o;
  const devEnvParsed = { ...env, PUSHLINE_DEV: true };
  const credentials = apiCredentials(devEnvParsed);
  const secret = webhookSecret(devEnvParsed);
  const base = `http://localhost:${ports.logic}`;
  const user = `${credentials.username}:${credentials.password}`;
  // The exact commands, with this stack's address: its Redis may not be on 6379, a cluster is
  // reached through any of its nodes with redis-cli -c (it follows MOVED to the slot's master).
  let redisEnv: string;
  let redisLine: string;
  if ('cluster' in redisAt) {
    redisEnv = `${Object.entries(redisAt.env).map(([k, v]) => `${k}=${v}`).join(' ')} `;
    const first = redisAt.cluster.split(',')[0]!;
    const colon = first.lastIndexOf(':');
    redisLine = `redis-cli -c -h ${first.slice(0, colon)} -p ${first.slice(colon + 1)}   (Redis Cluster ${redisAt.cluster}; tagged key names, docs/scaling.md)`;
  } else if ('url' in redisAt) {
    redisEnv = '';
    redisLine = '(REDIS_URL)';
  } else {
    redisEnv = `REDIS_HOST=${redisAt.host} REDIS_PORT=${redisAt.port} `;
    redisLine = `redis-cli -h ${redisAt.host} -p ${redisAt.port}${redisAt.ownAof ? '   (AOF on)' : ''}`;
  }
  return [
    '',
    'pushline local stack',
    `  API        ${base}   (user ${credentials.username}, password ${credentials.password})`,
    `  health     ${base}/health`,
    `  demo       ${base}/   (pick a name and a room; open it in two tabs)`,
    `  dashboard  ${base}/dashboard   (user ${credentials.username}, password ${credentials.password})`,
    `  API docs   ${base}/docs`,
    `  metrics    ${base}/metrics   job http://localhost:${ports.jobMetrics}/metrics   each comet: its ws port /metrics`,
    `  webhooks   signed with WEBHOOK_SECRET ${env.WEBHOOK_SECRET ? '(yours, from the environment)' : `"${secret}"`}: header X-Pushline-Signature: sha256=<HMAC-SHA256 of the body>`,
    `  redis      ${redisLine}`,
    ...ports.comets.map((c) => `  ${c.name.padEnd(10)} ws://localhost:${c.ws}   gRPC localhost:${c.grpc}`),
    `  gRPC auth  -H 'authorization: Bearer ${o.grpcToken}'   (comets refuse calls without it; README: grpcurl)`,
    `  token      curl -u ${user} -H 'Content-Type: application/json' -d '{"userId":"user_123","roomId":"video_123"}' ${base}/logic/token`,
    `  send       curl -u ${user} -H 'Content-Type: application/json' \\`,
    `               -d '{"roomId":"video_123","userId":123,"userName":"host","messages":[{"content":"hello"}]}' ${base}/logic/send`,
    `  queue      npx pushline queue status   or   ${redisEnv}./scripts/check_redis_queue.sh`,
    `  test data  ${redisEnv}./scripts/setup_redis_test_data.sh   (then ${redisEnv}./scripts/check_redis_routing.sh)`,
    `  try        curl -u ${user} -H 'Content-Type: application/json' \\`,
    `               -d '{"type":"echo","payload":{"hello":"world"},"priority":5}' ${base}/generate`,
    `  stop       Ctrl-C   (${stackFilePath(o.dataDir)} lists these ports while the stack runs)`,
    '',
  ];
}
