// Child processes and /proc readings for the push benchmark (bench/push.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { envSchema } from '../../src/config/schema.ts';
import { sleep, withTimeout } from './util.ts';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux build in practice). */
const CLK_TCK = 100;

/** User + system CPU seconds of a process, from /proc/<pid>/stat (utime, stime). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may hold spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** Resident set size in bytes, from VmRSS in /proc/<pid>/status. */
export function procRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? NaN : Number(kb) * 1024;
}

/**
 * The parent's environment without any variable pushline reads (a developer's REDIS_URL or
 * LOG_LEVEL must not leak into the children), plus `extra`.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const known = new Set(envSchema.keyof().options as readonly string[]);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!known.has(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** The next line on stdout (lines are queued until read). */
  nextLine(timeoutMs: number): Promise<string>;
  /** Writes one line to stdin. */
  send(line: string): void;
  /** Last lines the child wrote on stderr, for error messages. */
  stderrTail(): string;
  readonly exited: boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

/** The first of `children` that exited, with its stderr tail; null while all run (a system's health check). */
export function exitedChild(children: readonly Child[]): string | null {
  const dead = children.find((c) => c.exited);
  return dead ? `${dead.name} exited; stderr:\n${dead.stderrTail()}` : null;
}

export function startChild(name: string, command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string }): Child {
  // BENCH_CPU_PROF=<dir>: every Node child writes a V8 CPU profile there when it exits (node --cpu-prof),
  // for finding where a process's µs per message go.
  const profileDir = process.env.BENCH_CPU_PROF;
  if (profileDir && command === process.execPath) args = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`, ...args];
  const proc = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let exited = false;
  let exitInfo = '';
  const exitPromise = new Promise<void>((resolve) =>
    proc.once('exit', (code, signal) => {
      exited = true;
      exitInfo = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    }),
  );
  proc.once('error', (err) => {
    exitInfo = `could not start: ${err.message}`;
  });
  proc.stdin!.on('error', () => {}); // EPIPE when it already exited
  const tail: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else lines.push(line);
  });
  return {
    name,
    process: proc,
    pid: proc.pid ?? -1,
    get exited() {
      return exited;
    },
    nextLine(timeoutMs) {
      const queued = lines.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      const line = new Promise<string>((resolve, reject) => {
        waiters.push(resolve);
        void exitPromise.then(() => reject(new Error(`${name} ${exitInfo}; stderr:\n${tail.join('\n')}`)));
      });
      return withTimeout(line, timeoutMs, `${name}: waiting for a line on stdout; stderr so far:\n${tail.join('\n')}`);
    },
    send(line) {
      if (!exited) proc.stdin!.write(line + '\n');
    },
    stderrTail: () => tail.join('\n'),
    async stop(graceMs = 8000) {
      if (exited) return;
      proc.kill('SIGTERM');
      const killed = await Promise.race([exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
      if (!killed && !exited) {
        proc.kill('SIGKILL');
        await exitPromise;
      }
    },
  };
}

/** Polls an HTTP URL until it answers 2xx. */
export async function waitForHttp(url: string, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child?.exited) throw new Error(`${child.name} exited while starting; stderr:\n${child.stderrTail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${Math.round(timeoutMs / 1000)} s${child ? `; ${child.name} stderr:\n${child.stderrTail()}` : ''}`);
    await sleep(100);
  }
}
