// Start-up bench: how long `pushline --help` takes as a whole process, and how long `pushline job`
// takes from spawn to its ready line ("Webhook sender started") against a fresh redis-server.
// Median of N runs after one warm-up; measures the compiled dist/ that bin/pushline.js runs.
//
//   npm run build && node --import tsx bench/startup.ts [--runs=5] [--bin=path/to/bin/pushline.js]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer } from '../src/local/redis-server.ts';
import { numberSetting, percentile, setting } from './lib/util.ts';

const RUNS = Math.max(1, Math.floor(numberSetting('runs', 5)));
const BIN = setting('bin', fileURLToPath(new URL('../bin/pushline.js', import.meta.url)));

/** Wall ms from spawn until `ready(output)` holds (or the process exits, for --help). */
function timeRun(args: string[], env: NodeJS.ProcessEnv, ready?: (out: string) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(performance.now() - started);
      if (ready) child.kill('SIGTERM');
    };
    const onData = (d: Buffer) => {
      out += d;
      if (ready?.(out)) finish();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => (ready ? !done && reject(new Error(`exited (${code}) before ready:\n${out}`)) : finish()));
  });
}

async function series(name: string, run: () => Promise<number>): Promise<string> {
  await run(); // warm-up: file cache
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await run());
  times.sort((a, b) => a - b);
  return `| ${name.padEnd(34)} | ${percentile(times, 50).toFixed(0).padStart(6)} | ${times[0]!.toFixed(0).padStart(6)} | ${times.at(-1)!.toFixed(0).padStart(6)} |`;
}

const dir = mkdtempSync(join(tmpdir(), 'pushline-startup-'));
const redis = await startRedisServer({ dir, appendonly: false });
try {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() };
  const jobEnv = { ...base, PUSHLINE_DEV: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), JOB_METRICS_PORT: '0', LOG_LEVEL: 'info' };
  const rows = [
    await series('pushline --help (until exit)', () => timeRun(['--help'], base)),
    await series('pushline job (until ready line)', () => timeRun(['job'], jobEnv, (out) => out.includes('Webhook sender started'))),
  ];
  console.log(`pushline start-up, ${RUNS} runs after a warm-up, ${BIN}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| command                            | median ms | min | max |');
  console.log('|------------------------------------|-------:|-------:|-------:|');
  for (const row of rows) console.log(row);
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
