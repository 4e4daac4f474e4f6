// Child process of the latency phase, so the worker does not share an event loop with the
// producer:  node --import tsx bench/lib/latency-worker.ts <pushline|bullmq> <redis port> <tasks> <WxC>
// The processor records hrtime − payload.t (add time, hrtime ns in the producer). hrtime is
// CLOCK_MONOTONIC, so the two processes' readings are comparable on one machine.
// IPC: → {type:'ready'} once consuming; → {type:'result', latencies} when every task was seen or
// the parent sent {type:'stop'}; latencies[i] is task i's add→start ms, -1 if never started.
import { openPeer, parseWorkConfig, PEER_NAMES, type PeerName, type Working } from './peers.ts';

export type ToWorker = { type: 'stop' };
export type FromWorker = { type: 'ready' } | { type: 'result'; latencies: number[]; seen: number; duplicates: number };

const [name, portText, totalText, configText] = process.argv.slice(2);
if (!PEER_NAMES.includes(name as PeerName) || !portText || !totalText || !configText || !process.send) {
  console.error('usage (forked with IPC): latency-worker.ts <pushline|bullmq> <port> <tasks> <WORKERSxCONCURRENCY>');
  process.exit(2);
}
const total = Number(totalText);
const latencies = new Array<number>(total).fill(-1);
let seen = 0;
let duplicates = 0;
let finished = false;
let working: Working | null = null;

const peer = await openPeer(name as PeerName, { port: Number(portText) });

async function finish(): Promise<void> {
  if (finished) return;
  finished = true;
  const message: FromWorker = { type: 'result', latencies, seen, duplicates };
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  await working?.stop().catch(() => {});
  await peer.close().catch(() => {});
  process.disconnect?.();
  process.exit(0);
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'stop') void finish();
});
// The parent went away (crash, Ctrl-C): never outlive it.
process.on('disconnect', () => {
  if (!finished) process.exit(1);
});

working = await peer.work(
  parseWorkConfig(configText),
  (data) => {
    const now = process.hrtime.bigint();
    if (data.t === undefined || data.i < 0 || data.i >= total) return;
    if (latencies[data.i]! >= 0) {
      duplicates++;
      return;
    }
    latencies[data.i] = Number(now - BigInt(data.t)) / 1e6;
    if (++seen === total) void finish();
  },
  () => {},
);
process.send({ type: 'ready' } satisfies FromWorker);
