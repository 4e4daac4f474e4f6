// `pushline start` as a user runs it from a terminal: its own process group (so a test can send
// SIGINT to the whole group, as Ctrl-C does), its own working folder (where it writes .pushline/),
// every port free-picked unless the test says otherwise; the banner parsed into addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/local/redis-server.ts';
import { BIN } from './processes.ts';
import { waitFor } from './wait.ts';

export interface LocalStack {
  child: ChildProcess;
  /** The working folder: .pushline/ is in here. */
  cwd: string;
  output: () => string;
  exited: Promise<number | null>;
  logicUrl: string;
  redisPort: number;
  comets: { ws: number; grpc: number }[];
  jobMetricsPort: number;
  /** The environment a tool run in `cwd` gets: no REDIS_* of its own. */
  toolEnv: Record<string, string>;
}

export async function startLocalStack(options: { args?: string[]; env?: Record<string, string> } = {}): Promise<LocalStack> {
  const cwd = mkdtempSync(join(tmpdir(), 'pushline-stack-'));
  const toolEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  const port = await freePort();
  const args = ['start', '--port', String(port), '--redis-port', '0', '--comet-ports', '0:0,0:0', '--job-metrics-port', '0', ...(options.args ?? [])];
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...toolEnv, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(() => out.includes('pushline local stack') || child.exitCode !== null, 'the banner', 60_000, 100);
  if (!out.includes('pushline local stack')) throw new Error(`pushline start exited:\n${out}`);
  // The ports as the stack wrote them for the CLI and scripts.
  const file = Object.fromEntries(
    readFileSync(join(cwd, '.pushline/env'), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => l.split('=') as [string, string]),
  );
  return {
    child,
    cwd,
    output: () => out,
    exited,
    logicUrl: `http://127.0.0.1:${port}`,
    redisPort: Number(file.REDIS_PORT),
    comets: [1, 2].map((i) => ({ ws: Number(file[`COMET${i}_WS_PORT`]), grpc: Number(file[`COMET${i}_GRPC_PORT`]) })),
    jobMetricsPort: Number(file.JOB_METRICS_PORT),
    toolEnv,
  };
}

/** The local address a TCP port listens on (from /proc/net/tcp): '127.0.0.1', '0.0.0.0', or null. */
export function listenAddress(port: number): string | null {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (!local || state !== '0A') continue; // 0A: LISTEN
    const [hexIp, hexPort] = local.split(':');
    if (parseInt(hexPort!, 16) !== port) continue;
    return (hexIp!.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)).join('.');
  }
  return null;
}

/** True while something accepts TCP connections on 127.0.0.1:port. */
export async function listening(port: number): Promise<boolean> {
  return listenAddress(port) !== null;
}
