// What one room message costs in Redis, end to end (issue 11, item 3): an in-process stack
// (test/helpers/stack.ts: one redis-server, logic, job, 2 comets), 4 viewers and `idle` idle
// members in one room; `n` messages posted through POST /logic/send with `inFlight` in flight.
// Between CONFIG RESETSTAT and the last viewer's last message it reads INFO commandstats, INFO
// stats (bytes) and INFO cpu, and prints calls and µs per message for every command, and per script
// (enqueue, claim, settle) from the slow log with its threshold at 0 (which itself adds some CPU).
//   node --import tsx bench/push-redis-commands.ts [--root=/path/to/checkout] [--n=2000] [--in-flight=32] [--idle=200] [--env=NAME=value,...]
// `--root` measures another checkout's src/ (e.g. the main branch) with the same script.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const root = resolve(arg('root', new URL('..', import.meta.url).pathname));
const n = Number(arg('n', '2000'));
const inFlight = Number(arg('in-flight', '32'));
const idle = Number(arg('idle', '200'));

const { startPushStack } = (await import(pathToFileURL(`${root}/test/helpers/stack.ts`).href)) as typeof import('../test/helpers/stack.ts');
const { serverMessages } = (await import(pathToFileURL(`${root}/test/helpers/ws.ts`).href)) as typeof import('../test/helpers/ws.ts');
const { waitFor } = (await import(pathToFileURL(`${root}/test/helpers/wait.ts`).href)) as typeof import('../test/helpers/wait.ts');

// --env=NAME=value,NAME=value: settings of the stack's processes (e.g. PUSH_RETENTION_SECONDS=0).
const env = Object.fromEntries(arg('env', '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const stack = await startPushStack(2, { env });
const room = 'video_123';
const viewers: Awaited<ReturnType<typeof stack.connect>>[] = [];
for (const [i, comet] of stack.comets.entries()) {
  for (let v = 0; v < 2; v++) viewers.push(await stack.connect(comet, `viewer_${i}_${v}`, room));
}
const idlers: typeof viewers = [];
for (let i = 0; i < idle; i++) {
  const c = await stack.connect(stack.comets[i % 2]!, `idle_${i}`, room);
  c.ws.removeAllListeners('message'); // receives, but nothing is kept
  idlers.push(c);
}
const redis = stack.client;
const send = (i: number) => stack.post('/logic/send', { roomId: room, userId: 'host', messages: [{ content: `m${i}` }] });
// Warm-up: every path compiled and every connection open before the counters start.
for (let i = 0; i < 100; i++) await send(-i);
await waitFor(() => viewers.every((v) => serverMessages(v).length >= 100), 'warm-up', 60_000);
for (const v of viewers) v.frames.length = 0;

const info = async (section: string) =>
  Object.fromEntries(
    (await redis.info(section))
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  ) as Record<string, string>;
const cpu = async () => {
  const c = await info('cpu');
  return (Number(c.used_cpu_sys_main_thread ?? c.used_cpu_sys) + Number(c.used_cpu_user_main_thread ?? c.used_cpu_user)) * 1e6;
};
await redis.config('RESETSTAT');
// Per script: every call's duration from the slow log (threshold 0), grouped by script (its keys name it).
await redis.config('SET', 'slowlog-log-slower-than', '0');
await redis.config('SET', 'slowlog-max-len', String(Math.max(100_000, n * 20)));
await redis.slowlog('RESET');
const before = { stats: await info('stats'), cpu: await cpu() };
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < n) await send(next++);
  }),
);
await waitFor(() => viewers.every((v) => serverMessages(v).length >= n), 'all messages', 120_000);
// Settlement follows delivery: wait until the queue holds no task in flight.
await waitFor(async () => (await stack.job.runner.inflight) === 0, 'settled', 60_000);
const after = { stats: await info('stats'), cpu: await cpu(), commands: await info('commandstats') };

const slowlog = (await redis.slowlog('GET', -1)) as [number, number, number, string[]][];
await redis.config('SET', 'slowlog-log-slower-than', '10000');
const scriptCalls = new Map<string, { calls: number; usec: number }>();
for (const [, , usec, args] of slowlog) {
  if (args[0]?.toLowerCase() !== 'evalsha') continue;
  // Named by their first two keys: enqueue (queue, marker), claim (queue, processing), settle (processing, queue).
  const [k1 = '', k2 = ''] = [args[3], args[4]];
  const name = k1.endsWith('uvr_tasks:processing') && k2.endsWith('uvr_tasks') ? 'settle' : k1.endsWith('uvr_tasks') && k2.endsWith('uvr_tasks:processing') ? 'claim' : k2.endsWith('uvr_tasks:marker') ? 'enqueue' : `other (${k1} ${k2})`;
  const s = scriptCalls.get(name) ?? { calls: 0, usec: 0 };
  s.calls++;
  s.usec += usec;
  scriptCalls.set(name, s);
}
const rows = Object.entries(after.commands)
  .map(([key, value]) => {
    const f = Object.fromEntries(value.split(',').map((kv) => kv.split('='))) as Record<string, string>;
    return { command: key.replace(/^cmdstat_/, ''), calls: Number(f.calls), usec: Number(f.usec) };
  })
  .filter((r) => !['info', 'config'].includes(r.command))
  .sort((a, b) => b.usec - a.usec);
const fmt = (x: number) => x.toFixed(2);
console.log(`root ${root}${arg('env', '') ? ` (${arg('env', '')})` : ''}: ${n} room messages, 4 viewers + ${idle} idle members on 2 comets, ${inFlight} POSTs in flight`);
console.log('| command | calls per message | µs per message (commandstats) |');
console.log('|---|---:|---:|');
for (const r of rows) console.log(`| ${r.command} | ${fmt(r.calls / n)} | ${fmt(r.usec / n)} |`);
const calls = rows.reduce((s, r) => s + r.calls, 0);
const usec = rows.reduce((s, r) => s + r.usec, 0);
console.log(`| **total** | **${fmt(calls / n)}** | **${fmt(usec / n)}** |`);
const bytesIn = Number(after.stats.total_net_input_bytes) - Number(before.stats.total_net_input_bytes);
const bytesOut = Number(after.stats.total_net_output_bytes) - Number(before.stats.total_net_output_bytes);
console.log('| script (slow log, threshold 0) | calls per message | µs per message | µs per call |');
console.log('|---|---:|---:|---:|');
for (const [name, c] of [...scriptCalls].sort((a, b) => b[1].usec - a[1].usec)) console.log(`| ${name} | ${fmt(c.calls / n)} | ${fmt(c.usec / n)} | ${fmt(c.usec / c.calls)} |`);
console.log(`bytes per message: ${Math.round(bytesIn / n)} in, ${Math.round(bytesOut / n)} out; redis-server CPU (INFO cpu, main thread): ${fmt((after.cpu - before.cpu) / n)} µs per message`);
for (const c of [...viewers, ...idlers]) c.ws.close();
await stack.close();
process.exit(0);
