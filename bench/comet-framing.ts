// A comet's own work per pushed message, without sockets: from the Proto bodies of one
// BroadcastRoom batch to the frame bytes every socket of the room is given. Compares this
// checkout with another one (--before=<checkout>, e.g. /work/main) in the same process, so the
// machine's load hits both alike; prints CPU µs per message for each and their ratio.
//
//   node --import tsx bench/comet-framing.ts --before=/work/main [--batch=16] [--rounds=20000]
//
// Socket writes are left out on purpose: they cost the same per frame before and after, and
// the end-to-end benches (bench/push.ts) include them.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { messageBody, messageProto } from '../src/contract/push-message.ts';
import { serverMessage, serverMessagesFrames } from '../src/comet/frames.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const before = arg('before', '');
const batch = Number(arg('batch', '16'));
const rounds = Number(arg('rounds', '20000'));
const MAX_FRAME_BYTES = 256 * 1024;

// One batch as job sends it: ~150-byte room messages, the id in the body and beside it.
const protos = Array.from({ length: batch }, (_, i) => {
  const id = String(1_000_000_000_000_000 + i);
  return messageProto(id, i + 1, messageBody(id, i + 1, { roomId: 'video_123', userId: 'user_42', messages: [{ content: `message number ${i} in this batch` }], ts: Date.now() }));
});

type Framing = () => number;

/** This checkout: id beside the body, payload bytes framed once per batch. */
const after: Framing = () => {
  const payloads = protos.map((p) => serverMessage(p.body!, p.id).payload);
  let bytes = 0;
  for (const frame of serverMessagesFrames(payloads, MAX_FRAME_BYTES)) bytes += frame.length;
  return bytes;
};

async function beforeFraming(root: string): Promise<Framing> {
  const old = (await import(pathToFileURL(join(root, 'src/comet/frames.ts')).href)) as {
    serverMessageFrame(body: Buffer): { frame: string; id?: string };
    batchFrames(frames: readonly string[], maxBytes: number): string[];
  };
  // The other checkout's path: each body parsed for its id and wrapped as a string, the batch
  // joined, and the text encoded to bytes once per frame (TextFrame).
  return () => {
    const frames = protos.map((p) => old.serverMessageFrame(p.body!).frame);
    let bytes = 0;
    for (const text of old.batchFrames(frames, MAX_FRAME_BYTES)) bytes += Buffer.from(text, 'utf8').length;
    return bytes;
  };
}

function measure(framing: Framing): number {
  for (let i = 0; i < rounds / 10; i++) framing(); // warm up the JIT
  const start = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < rounds; i++) sink += framing();
  const used = process.cpuUsage(start);
  if (sink === 0) throw new Error('no bytes framed');
  return (used.user + used.system) / (rounds * batch);
}

const runs: { name: string; framing: Framing }[] = [{ name: 'this checkout', framing: after }];
if (before) runs.push({ name: `before (${before})`, framing: await beforeFraming(before) });
const results = new Map<string, number[]>();
// Alternate, three samples each: the median is reported.
for (let sample = 0; sample < 3; sample++) {
  for (const r of runs) results.set(r.name, [...(results.get(r.name) ?? []), measure(r.framing)]);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
console.log(`comet framing, batches of ${batch} messages (~${protos[0]!.body!.length} B bodies), ${rounds} batches per sample, median of 3`);
for (const [name, v] of results) console.log(`  ${name}: ${median(v).toFixed(3)} µs CPU per message`);
if (before) console.log(`  ratio (this / before): ${(median(results.get('this checkout')!) / median(results.get(`before (${before})`)!)).toFixed(2)}`);
