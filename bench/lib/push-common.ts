// Pieces the push benchmark's phases share: tokens, pushline WebSocket clients, the open-file
// limit check, summaries, CPU readings (processes and redis-server) and the report rows/notes.
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import { signConnectionToken } from '../../src/auth/token.ts';
import { procCpuSeconds } from './push-procs.ts';
import { percentile } from './util.ts';

export const SECRET = 'bench-push-auth-secret-0123456789';
export const BASIC = `Basic ${Buffer.from('admin:password').toString('base64')}`;

export function log(line: string): void {
  console.log(line);
}

/** One line of the summary table: pushline's value, and the peer's when the phase ran one. */
export interface Row {
  metric: string;
  pushline: string;
  peer?: string;
  ratio?: string;
  detail?: string;
}

export class Report {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  row(r: Row): void {
    this.rows.push(r);
  }
  note(n: string): void {
    this.notes.push(n);
  }
}

export class FdLimitError extends Error {}

export function openFileLimit(): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return line === undefined || line === 'unlimited' ? Infinity : Number(line);
}

export function fdError(where: string, conns?: number): FdLimitError {
  const need = conns === undefined ? 'every connection needs a descriptor' : `${conns} connections need about ${conns + 200} descriptors`;
  return new FdLimitError(
    `EMFILE (too many open files) ${where}: the open-file limit is ${openFileLimit()} and ${need} in this process and as many in the comet child. ` +
      `Raise it in the shell first (ulimit -n 65536) or lower --conns.`,
  );
}

export const isEmfile = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code === 'EMFILE' || /EMFILE/.test(String(err));

export async function tokens(n: number, room: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await signConnectionToken({ userId: `${prefix}${i}`, roomId: room }, SECRET, 3600)).token);
  return out;
}

/** Opens a pushline socket and resolves when the comet's `connected` frame arrived; onFrame gets every later frame. */
export function openClient(wsPort: number, token: string, onFrame: (data: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/?token=${token}`, { perMessageDeflate: false });
    let open = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no connected frame within 30 s'));
    }, 30_000);
    ws.on('message', (data: Buffer) => {
      if (open) return onFrame(data);
      if (data.includes('"type":"connected"')) {
        open = true;
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!open) reject(isEmfile(err) ? fdError('opening a client socket') : err);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      if (!open) reject(new Error(`closed before connected: ${code} ${reason.toString()}`));
    });
  });
}

export function closeAll(sockets: WebSocket[]): void {
  for (const ws of sockets) ws.terminate();
}

export function summary(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  return { n: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

export const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/** Redis's own CPU seconds (INFO cpu: used_cpu_sys + used_cpu_user of the main process). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_sys') + field('used_cpu_user');
}

/** Calls per command so far (INFO commandstats; commands run inside scripts count too). */
export async function redisCommandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
  return calls;
}

/** CPU seconds of named processes and of redis-server between start() and stop(). */
export class CpuMeter {
  private before: number[] = [];
  private redisBefore = 0;
  constructor(
    private readonly procs: readonly (readonly [name: string, pid: number])[],
    private readonly redis: Redis,
  ) {}

  async start(): Promise<void> {
    this.before = this.procs.map(([, pid]) => procCpuSeconds(pid));
    this.redisBefore = await redisCpuSeconds(this.redis);
  }

  /** Seconds per process, redis-server last (named 'redis-server'). */
  async stop(): Promise<{ name: string; seconds: number }[]> {
    const used = this.procs.map(([name, pid], k) => ({ name, seconds: procCpuSeconds(pid) - this.before[k]! }));
    used.push({ name: 'redis-server', seconds: (await redisCpuSeconds(this.redis)) - this.redisBefore });
    return used;
  }
}
