// Finds, installs (Debian, as root) and starts a private redis-server. Used by `pushline start`
// for the local stack and by the tests, which each run their own Redis on a free port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'];

export function findRedisServer(): string | null {
  const fromPath = (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, 'redis-server'));
  for (const candidate of [...fromPath, ...CANDIDATES]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}

/** Returns the redis-server binary, installing Debian's package first when allowed and needed. */
export function ensureRedisServer(log: (line: string) => void = () => {}): string {
  const found = findRedisServer();
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error('redis-server is not installed; run `sudo apt-get install -y redis-server` or set REDIS_HOST');
  }
  log('redis-server not found: installing Debian package redis-server (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'redis-server']]) {
    const run = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (run.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed with status ${run.status}`);
  }
  const installed = findRedisServer();
  if (!installed) throw new Error('redis-server still not found after apt-get install');
  return installed;
}

export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The lowest port the kernel hands out for bind(0) and outgoing connections (Linux), or null. */
function ephemeralLow(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : null;
  } catch {
    return null; // not Linux
  }
}

const QUIET_RANGE_START = 10_000;

/**
 * A port that is free now, for a process that binds it a moment later (a redis-server, a cluster
 * node, a test's child). Picked at random below the kernel's ephemeral range when there is room:
 * no bind(0) and no outgoing connection is ever given a port from there, so in the gap before the
 * bind only a process choosing the very same number could take it. A port from bind(0) itself
 * goes back into the pool everyone draws from the moment it is closed (CI once lost a comet to
 * EADDRINUSE that way). Where processes can bind port 0 themselves, they should
 * (src/local/listening-report.ts).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const low = ephemeralLow();
  if (low !== null && low > QUIET_RANGE_START + 1000) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = QUIET_RANGE_START + Math.floor(Math.random() * (low - QUIET_RANGE_START));
      if (await isPortFree(port, host)) return port;
    }
  }
  return systemPickedPort(host);
}

function systemPickedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True once something on host:port answers PING with PONG. */
export async function pingRedis(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

export interface RedisServerOptions {
  /** Data folder (AOF lives here). Created when missing. */
  dir: string;
  /** Port to bind; a free one is picked when omitted. */
  port?: number;
  appendonly?: boolean;
  binary?: string;
  /** Where redis-server's own log goes; inherited stdio would interleave with ours. */
  stdio?: 'ignore' | 'inherit' | 'pipe';
  /**
   * Run it in a process group of its own behind a small guard (the local stack): a terminal's
   * Ctrl-C then reaches only our process, which stops Redis last, after the processes that still
   * write to it; and when our process dies without stopping it (SIGKILL), the guard sees its IPC
   * channel close and stops Redis instead of leaving it running.
   */
  guarded?: boolean;
}

// The guard: plain JavaScript run by node itself, so it starts in milliseconds. It passes a
// SIGTERM on, stops Redis when its parent goes away, and exits with Redis.
const GUARD = `
const { spawn } = require('node:child_process');
const [binary, ...args] = process.argv.slice(1);
const redis = spawn(binary, args, { stdio: 'ignore' });
const stop = () => redis.kill('SIGTERM');
process.on('SIGTERM', stop);
process.on('SIGINT', () => {});
process.on('disconnect', stop);
redis.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`;

/**
 * redis-server behind the guard, in a process group of its own (see `guarded`). SIGTERM to the
 * returned process stops Redis; SIGKILL to the group (-pid) kills both at once.
 */
export function spawnGuarded(binary: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['-e', GUARD, binary, ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true });
}

export interface RunningRedis {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** SHUTDOWN-like stop: SIGTERM makes redis-server flush the AOF and exit. */
  stop(): Promise<void>;
  /** Crash it (SIGKILL). */
  kill(): Promise<void>;
}

export async function startRedisServer(options: RedisServerOptions): Promise<RunningRedis> {
  const binary = options.binary ?? ensureRedisServer();
  mkdirSync(options.dir, { recursive: true });
  return startOnAPort(options.port, (port) => launch(binary, port, options));
}

/**
 * `start` on `port`, or, when none is given, on free ports until it starts on one (up to 5): a
 * free port can still be taken before the server binds it, and a cluster node also needs port +
 * 10000 for its bus. A given port that fails will not start working: its error is thrown at once.
 */
export async function startOnAPort<T>(port: number | undefined, start: (port: number) => Promise<T>, host = '127.0.0.1'): Promise<T> {
  if (port !== undefined) return start(port);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await start(await freePort(host));
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function launch(binary: string, port: number, options: RedisServerOptions): Promise<RunningRedis> {
  const host = '127.0.0.1';
  const args = [
    '--port', String(port),
    '--bind', host,
    '--dir', options.dir,
    '--daemonize', 'no',
    '--save', '',
    '--appendonly', options.appendonly === false ? 'no' : 'yes',
    '--appendfsync', 'everysec',
    '--protected-mode', 'yes',
  ];
  const child = options.guarded ? spawnGuarded(binary, args) : spawn(binary, args, { stdio: options.stdio ?? 'ignore' });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 15_000;
  while (!(await pingRedis(port, host))) {
    if (exited) throw new Error(`redis-server exited while starting on port ${port}`);
    if (Date.now() > deadline) {
      if (options.guarded) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
      throw new Error(`redis-server did not answer PING on port ${port} within 15 s`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const waitExit = async (signal: NodeJS.Signals) => {
    if (exited) return;
    // A guarded Redis is the guard's child in the guard's own group: SIGKILL goes to both.
    if (options.guarded && signal === 'SIGKILL') process.kill(-child.pid!, signal);
    else child.kill(signal);
    await exitPromise;
  };
  return {
    host,
    port,
    dir: options.dir,
    process: child,
    stop: () => waitExit('SIGTERM'),
    kill: () => waitExit('SIGKILL'),
  };
}
