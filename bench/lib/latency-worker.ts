// Child process of the latency phase: consumes `expected` tasks and prints each one's
// add→start latency (ms). hrtime is CLOCK_MONOTONIC, comparable across processes on one host.
import { PEERS, type PeerName } from './peers.ts';

const [peerName, port, expected, consumers, concurrency] = process.argv.slice(2);
const peer = await PEERS[peerName as PeerName]({ port: Number(port), consumers: Number(consumers), concurrency: Number(concurrency) });
const latencies: number[] = [];
let finish: () => void;
const done = new Promise<void>((resolve) => (finish = resolve));
await peer.work(
  (data) => {
    if (data.t) latencies.push(Number(process.hrtime.bigint() - BigInt(data.t)) / 1e6);
    if (latencies.length >= Number(expected)) finish();
  },
  () => {},
);
process.send?.({ ready: true });
await done;
process.send?.({ latencies });
await peer.stopWork();
await peer.close();
process.exit(0);
