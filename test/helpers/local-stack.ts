// `pushline start` as a user runs it from a terminal: its own process group (so a test can send
// SIGINT to the whole group, as Ctrl-C does), its own working folder (where it writes .pushline/),
// every port free-picked by the process that binds it unless the test says otherwise; the ports
// read from .pushline/env as the CLI and scripts read them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, exitedWithOutput } from './processes.ts';
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

export async function startLocalStack(options: { args?: string[]; env?: Record<string, string>; dotenv?: string } = {}): Promise<LocalStack> {
  const cwd = mkdtempSync(join(tmpdir(), 'pushline-stack-'));
  if (options.dotenv !== undefined) writeFileSync(join(cwd, '.env'), options.dotenv);
  const toolEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  // Port 0 everywhere: each process binds a free port itself and the stack reports it.
  const args = ['start', '--port', '0', '--redis-port', '0', '--comet-ports', '0:0,0:0', '--job-metrics-port', '0', ...(options.args ?? [])];
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...toolEnv, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = exitedWithOutput(child);
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
    logicUrl: `http://127.0.0.1:${file.LOGIC_PORT}`,
    redisPort: Number(file.REDIS_PORT),
    comets: [1, 2].map((i) => ({ ws: Number(file[`COMET${i}_WS_PORT`]), grpc: Number(file[`COMET${i}_GRPC_PORT`]) })),
    jobMetricsPort: Number(file.JOB_METRICS_PORT),
    toolEnv,
  };
}

/** The processes `pid` started (from /proc; children only, not grandchildren). */
export function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

/** The environment a running process was started with (from /proc). */
export function processEnvironment(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
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
