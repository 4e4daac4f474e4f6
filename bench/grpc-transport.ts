// What a job → comet batch costs in gRPC alone, as the unary call job makes today (one HTTP/2
// stream per batch) and as one message on a long-lived bidirectional stream (issue 11 names
// both). A server process answers each batch with its size and does nothing else, so the CPU
// is the transport's: client (this process, process.cpuUsage) and server (/proc/<pid>/stat), per
// batch, with 2 batches in flight (one per comet lane). Rounds alternate unary / stream after a
// warm-up of each; the table prints every round.
//   node --import tsx bench/grpc-transport.ts [--batches=3000] [--per-batch=23] [--rounds=3]
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const PROTO = fileURLToPath(new URL('./fixtures/transport.proto', import.meta.url));
interface Batch { id: number; bodies: Buffer[] }
interface Ack { id: number; delivered: number }
type Stub = grpc.Client & {
  Unary(req: Batch, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Ack) => void): void;
  Stream(): grpc.ClientDuplexStream<Batch, Ack>;
};
const Transport = (grpc.loadPackageDefinition(loadSync(PROTO)) as unknown as { bench: { Transport: grpc.ServiceClientConstructor } }).bench.Transport;

if (process.argv[2] === '--serve') {
  const server = new grpc.Server();
  server.addService(Transport.service, {
    Unary(call: grpc.ServerUnaryCall<Batch, Ack>, cb: grpc.sendUnaryData<Ack>) {
      cb(null, { id: call.request.id, delivered: call.request.bodies.length });
    },
    Stream(call: grpc.ServerDuplexStream<Batch, Ack>) {
      call.on('data', (b: Batch) => call.write({ id: b.id, delivered: b.bodies.length }));
      call.on('end', () => call.end());
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
} else {
  const batches = Number(arg('batches', '3000'));
  const perBatch = Number(arg('per-batch', '23'));
  const rounds = Number(arg('rounds', '3'));
  const server = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: process.execArgv });
  const port = await new Promise<number>((resolve) => server.once('message', (p) => resolve(p as number)));
  const cpuMicros = (pid: number) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100); // utime + stime, 100 ticks/s
  };
  const client = new Transport(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Stub;
  // Room messages the size of a short chat message in a push frame.
  const bodies = Array.from({ length: perBatch }, (_, i) => Buffer.from(JSON.stringify({ id: `m${i}`, seq: i, content: 'hello '.repeat(30) })));
  const unary = (id: number) =>
    new Promise<Ack>((resolve, reject) =>
      client.Unary({ id, bodies }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  const stream = client.Stream();
  const acks = new Map<number, (a: Ack) => void>();
  stream.on('data', (a: Ack) => {
    acks.get(a.id)?.(a);
    acks.delete(a.id);
  });
  const onStream = (id: number) =>
    new Promise<Ack>((resolve) => {
      acks.set(id, resolve);
      stream.write({ id, bodies });
    });
  const run = async (send: (id: number) => Promise<Ack>, n: number) => {
    for (let i = 0; i < n; i += 2) await Promise.all([send(i + 1), send(i + 2)]);
  };
  const rows: string[][] = [];
  for (const send of [unary, onStream]) await run(send, 1000); // warm-up
  for (let r = 1; r <= rounds; r++) {
    for (const [name, send] of [['unary call', unary], ['stream message', onStream]] as const) {
      const c0 = process.cpuUsage();
      const s0 = cpuMicros(server.pid!);
      const t0 = performance.now();
      await run(send, batches);
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const s = cpuMicros(server.pid!) - s0;
      rows.push([`${r}`, name, (batches / seconds).toFixed(0), ((c.user + c.system) / batches).toFixed(0), (s / batches).toFixed(0)]);
    }
  }
  console.log(`\ngRPC transport per batch of ${perBatch} bodies (${bodies[0]!.length} B each), ${batches} batches per round, 2 in flight, node ${process.version}\n`);
  const head = ['round', 'transport', 'batches/s', 'client CPU µs/batch', 'server CPU µs/batch'];
  console.log(`| ${head.join(' | ')} |\n|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  // The server ends the stream once ours ends; then both can go.
  await new Promise<void>((resolve) => {
    stream.on('status', () => resolve());
    stream.on('error', () => resolve());
    stream.end();
  });
  client.close();
  server.kill();
}
