// Redis CPU of the three queue scripts for push-like tasks, in isolation (issue 11, item 3): a
// fresh redis-server, `n` room messages shaped as logic enqueues them (payload, request_id, a room
// seq) enqueued in batches of `batch`, claimed `batch` at a time and settled `completed` with a
// result like the push processor's. Per script: INFO commandstats evalsha µs per task (no slow
// log, so nothing inflates it), best of `rounds`.
//   node --import tsx bench/push-scripts.ts [--root=/path/to/checkout] [--n=20000] [--batch=32] [--rounds=3] [--verbose]
// `--root` measures another checkout's src/ (e.g. the main branch) with the same script.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const root = resolve(arg('root', new URL('..', import.meta.url).pathname));
const n = Number(arg('n', '20000'));
const batch = Number(arg('batch', '32'));
const rounds = Number(arg('rounds', '3'));

const { startRedisServer } = (await import(pathToFileURL(`${root}/src/local/redis-server.ts`).href)) as typeof import('../src/local/redis-server.ts');
const { TaskQueue } = (await import(pathToFileURL(`${root}/src/queue/task-queue.ts`).href)) as typeof import('../src/queue/task-queue.ts');
const { queueKeys } = (await import(pathToFileURL(`${root}/src/queue/keys.ts`).href)) as typeof import('../src/queue/keys.ts');
const { routingKeys } = (await import(pathToFileURL(`${root}/src/routing/keys.ts`).href)) as typeof import('../src/routing/keys.ts');
const { queueOptionsFromEnv } = (await import(pathToFileURL(`${root}/src/config/derive.ts`).href)) as typeof import('../src/config/derive.ts');
const { parseEnv } = (await import(pathToFileURL(`${root}/src/config/load.ts`).href)) as typeof import('../src/config/load.ts');

const dir = mkdtempSync(join(tmpdir(), 'pushline-bench-'));
const server = await startRedisServer({ dir });
const redis = new Redis({ port: server.port, host: '127.0.0.1', protocol: 2 });
const parsed = parseEnv({ PUSHLINE_DEV: 'true' });
if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
// The queue as the job and logic build it from the default env (retention settings included).
const queue = new TaskQueue(redis, queueKeys({}), queueOptionsFromEnv(parsed.env));
const room = 'video_123';
const seqKey = routingKeys('').roomSeq(room);
// What logic's /logic/send enqueues (src/logic/routes/push.ts) for one short chat message.
const payload = JSON.stringify({
  mode: 'room',
  roomId: room,
  message: { type: 'chat', roomId: room, userId: 'host', userName: 'Host', messages: [{ content: 'hello everyone' }], timestamp: Date.now() },
});
const result = JSON.stringify({ sent: 4, failed: 0, comet_nodes: 2, connections: 4, nodes: [{ node: '127.0.0.1:50051', ok: true, connections: 2 }, { node: '127.0.0.1:50052', ok: true, connections: 2 }] });

const verbose = process.argv.includes('--verbose');
async function evalshaUsec(phase: string): Promise<{ calls: number; usec: number }> {
  const stats = (await redis.info('commandstats')).split('\r\n').filter((l) => l.startsWith('cmdstat_'));
  const parse = (line: string | undefined) => Object.fromEntries((line?.split(':')[1] ?? '').split(',').map((kv) => kv.split('='))) as Record<string, string>;
  // --verbose: the commands the script ran inside, per task.
  if (verbose) console.log(phase, stats.map((l) => `${l.slice(8, l.indexOf(':'))} ${(Number(parse(l).calls) / n).toFixed(2)}× ${(Number(parse(l).usec) / n).toFixed(2)}µs`).join(', '));
  const f = parse(stats.find((l) => l.startsWith('cmdstat_evalsha:')));
  return { calls: Number(f.calls ?? 0), usec: Number(f.usec ?? 0) };
}

const best = { enqueue: Infinity, claim: Infinity, settle: Infinity };
for (let round = 0; round < rounds; round++) {
  await redis.flushall();
  const fields = (i: number) => ({ request_id: `req-${round}-${i}`, room_id: room, user_id: 'host' });
  await redis.config('RESETSTAT');
  for (let i = 0; i < n; i += batch) {
    const tasks = Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ type: 'push', priority: 3, payload, fields: fields(i + j), sequenceKey: seqKey }));
    await queue.enqueue(tasks);
  }
  const enq = await evalshaUsec('enqueue');
  const claimed: { id: string; token: string }[][] = [];
  await redis.config('RESETSTAT');
  for (;;) {
    const b = await queue.tasks.claim(batch, 60_000);
    if (b.tasks.length === 0) break;
    claimed.push(b.tasks.map((t) => ({ id: t.id, token: t.token })));
  }
  const claim = await evalshaUsec('claim');
  await redis.config('RESETSTAT');
  for (const leases of claimed) {
    await queue.tasks.settle(leases.map((l) => ({ ...l, outcome: 'completed' as const, fields: { result } })));
  }
  const settle = await evalshaUsec('settle');
  const settledCount = claimed.reduce((s, c) => s + c.length, 0);
  if (settledCount !== n) throw new Error(`claimed ${settledCount} of ${n}`);
  best.enqueue = Math.min(best.enqueue, enq.usec / n);
  best.claim = Math.min(best.claim, claim.usec / n);
  best.settle = Math.min(best.settle, settle.usec / n);
}
const mem = await redis.info('memory');
console.log(`root ${root}: ${n} push tasks, batches of ${batch}, best of ${rounds} rounds (evalsha µs per task, commandstats)`);
console.log(`| enqueue | claim | settle | total |`);
console.log(`|---:|---:|---:|---:|`);
const f = (x: number) => x.toFixed(2);
console.log(`| ${f(best.enqueue)} | ${f(best.claim)} | ${f(best.settle)} | ${f(best.enqueue + best.claim + best.settle)} |`);
console.log(`used_memory after the last round: ${/used_memory_human:(\S+)/.exec(mem)?.[1]}`);
redis.disconnect();
await server.kill();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
