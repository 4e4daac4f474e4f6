// `pushline start`: the whole local stack in one command. Without a configured Redis it runs
// its own redis-server (AOF on, data in .pushline/redis, port 6379 or a free one), then logic
// and job as child processes with dev settings, prints where everything is, and on Ctrl-C
// stops the children first (so in-flight tasks are handed back) and Redis last.
import { claimEarlySignals } from './early-signals.ts';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../config/schema.ts';
import { apiCredentials, readEnvironment } from '../config/load.ts';
import { ensureRedisServer, freePort, isPortFree, startRedisServer, type RunningRedis } from '../local/redis-server.ts';
import type { Logger } from '../util/log.ts';

const BIN = fileURLToPath(new URL('../../bin/pushline.js', import.meta.url));

export interface StackOptions {
  env: Env;
  log: Logger;
  logicPort: number;
  dataDir: string;
}

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<number | null>;
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
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  prefixLines(name, child.stdout, process.stdout);
  prefixLines(name, child.stderr, process.stderr);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return { name, process: child, exited };
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
    const port = (await isPortFree(6379)) ? 6379 : undefined;
    const dir = resolve(options.dataDir, 'redis');
    redis = await startRedisServer({ dir, binary, appendonly: true, ...(port ? { port } : {}) });
    redisHost = '127.0.0.1';
    redisPort = redis.port;
    log.info(`started redis-server on 127.0.0.1:${redis.port} (AOF on, data in ${dir})`);
  } else {
    log.info(`using the configured Redis (${raw.REDIS_URL ? 'REDIS_URL' : `${redisHost}:${redisPort}`})`);
  }

  const devEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PUSHLINE_DEV: 'true',
    LOG_PRETTY: raw.LOG_PRETTY ?? 'true',
    // Local receivers (http://localhost:...) are the usual webhook targets on a dev machine.
    WEBHOOK_ALLOW_PRIVATE: raw.WEBHOOK_ALLOW_PRIVATE ?? 'true',
    // ... and local file servers the usual audio sources (README: the seed request).
    AUDIO_ALLOW_PRIVATE: raw.AUDIO_ALLOW_PRIVATE ?? 'true',
    ...(externalRedis ? {} : { REDIS_HOST: redisHost, REDIS_PORT: String(redisPort) }),
    LOGIC_PORT: String(options.logicPort),
    // Dev credentials must not be reachable from the network.
    LOGIC_HOST: raw.LOGIC_HOST ?? '127.0.0.1',
    // One fresh token per run, shared by the comets and job: never the published dev token.
    COMET_GRPC_TOKEN: raw.COMET_GRPC_TOKEN || randomBytes(24).toString('base64url'),
  };

  // Two comets on the seed's ports (8082/50051 and 8083/50052), or free ones when taken.
  const pick = async (port: number) => ((await isPortFree(port)) ? port : freePort());
  const comets: { name: string; ws: number; grpc: number }[] = [];
  for (const [i, [ws, grpc]] of [[8082, 50051], [8083, 50052]].entries()) {
    comets.push({ name: `comet${i + 1}`, ws: await pick(ws!), grpc: await pick(grpc!) });
  }
  const children = [
    ...comets.map((c) =>
      spawnChild(c.name, ['comet'], {
        ...devEnv,
        COMET_HOST: raw.COMET_HOST ?? '127.0.0.1',
        COMET_WS_PORT: String(c.ws),
        COMET_GRPC_PORT: String(c.grpc),
        COMET_ID: `localhost:${c.grpc}`,
        COMET_PUBLIC_URL: `ws://localhost:${c.ws}`,
      }),
    ),
    spawnChild('logic', ['logic'], devEnv),
    spawnChild('job', ['job'], devEnv),
  ];
  const credentials = apiCredentials({ ...env, PUSHLINE_DEV: true });
  const base = `http://localhost:${options.logicPort}`;
  const banner = [
    '',
    'pushline local stack',
    `  API        ${base}   (user ${credentials.username}, password ${credentials.password})`,
    `  health     ${base}/health`,
    `  demo       ${base}/   (pick a name and a room; open it in two tabs)`,
    `  dashboard  ${base}/dashboard   (user ${credentials.username}, password ${credentials.password})`,
    `  API docs   ${base}/docs`,
    `  metrics    ${base}/metrics   (each comet: its ws port /metrics; job: JOB_METRICS_PORT, 9464)`,
    `  redis      redis-cli -h ${redisHost} -p ${redisPort}${redis ? '   (AOF on)' : ''}`,
    ...comets.map((c) => `  ${c.name.padEnd(10)} ws://localhost:${c.ws}   gRPC localhost:${c.grpc}`),
    `  token      curl -u ${credentials.username}:${credentials.password} -H 'Content-Type: application/json' -d '{"userId":"user_123","roomId":"video_123"}' ${base}/logic/token`,
    `  send       curl -u ${credentials.username}:${credentials.password} -H 'Content-Type: application/json' \\`,
    `               -d '{"roomId":"video_123","userId":123,"userName":"host","messages":[{"content":"hello"}]}' ${base}/logic/send`,
    `  queue      npx pushline queue status   (or scripts/check_redis_queue.sh)`,
    `  try        curl -u ${credentials.username}:${credentials.password} -H 'Content-Type: application/json' \\`,
    `               -d '{"type":"echo","payload":{"hello":"world"},"priority":5}' ${base}/generate`,
    '  stop       Ctrl-C',
    '',
  ];

  let shuttingDown = false;
  const shutdown = async (code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('stopping the local stack: job, logic and comets first, Redis last');
    for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGTERM');
    const killer = setTimeout(() => children.forEach((c) => c.process.kill('SIGKILL')), 20_000);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(killer);
    if (redis) await redis.stop();
    log.info('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  if (claimEarlySignals()) void shutdown(0);
  for (const c of children) {
    c.exited.then((code) => {
      if (!shuttingDown) {
        log.error(`${c.name} exited unexpectedly (code ${code}); stopping the stack`);
        void shutdown(1);
      }
    });
  }
  // The banner comes once logic answers, so the URLs it prints work when they are read.
  const deadline = Date.now() + 30_000;
  while (!shuttingDown && Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/health`);
      if (res.status === 200) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!shuttingDown) process.stdout.write(banner.join('\n') + '\n');
}
