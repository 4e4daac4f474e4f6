// Child process of the push benchmark (bench/push.ts, phase 1): ONE comet, on its own event loop,
// so the benchmark's WebSocket clients do not share it. Started as
//
//   node --import tsx bench/lib/push-comet.ts '<env JSON>'
//
// It calls startComet(env), then prints one JSON line on stdout: {"ready":true,cometId,wsPort,
// grpcPort,pid}. Afterwards each line on stdin is a command, answered with one JSON line:
//   stats → {"conns":n,"rooms":n,"slowConsumerCloses":n,"duplicatesDropped":n}
//   memory → {"rss":b,"heapUsed":b,"external":b} after a full GC (started with --expose-gc)
// It stops the comet and exits on SIGTERM/SIGINT and when stdin ends (the parent went away).
import { createInterface } from 'node:readline';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { parseEnv } from '../../src/config/load.ts';
import { createLogger } from '../../src/util/log.ts';

const raw = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>;
const parsed = parseEnv(raw);
if (!parsed.ok) {
  process.stderr.write(`push-comet: config error:\n${parsed.errors.join('\n')}\n`);
  process.exit(2);
}
const env = parsed.env;
// Logs go to stderr: stdout carries only the JSON protocol lines.
const log = createLogger({ name: 'bench-comet', level: env.LOG_LEVEL });

let comet: CometHandle | null = null;
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    const force = setTimeout(() => process.exit(code), 10_000);
    force.unref();
    try {
      await comet?.stop();
    } catch (err) {
      process.stderr.write(`push-comet: stop failed: ${String(err)}\n`);
    }
    process.exit(code);
  }
  return new Promise<never>(() => {});
}
process.once('SIGTERM', () => void stop(0));
process.once('SIGINT', () => void stop(0));
process.on('uncaughtException', (err) => {
  process.stderr.write(`push-comet: uncaught: ${err.stack ?? String(err)}\n`);
  void stop(1);
});

try {
  comet = await startComet(env, log);
} catch (err) {
  process.stderr.write(`push-comet: start failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
const c = comet;
process.stdout.write(JSON.stringify({ ready: true, cometId: c.cometId, wsPort: c.wsPort, grpcPort: c.grpcPort, pid: process.pid }) + '\n');

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'stats') {
    const h = c.hub;
    process.stdout.write(
      JSON.stringify({ conns: h.conns.size, rooms: h.rooms.size, slowConsumerCloses: h.slowConsumerCloses, duplicatesDropped: h.duplicatesDropped }) + '\n',
    );
  } else if (cmd === 'memory') {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers }) + '\n');
  } else if (cmd === 'stop') {
    void stop(0);
  }
});
rl.on('close', () => void stop(0));
