// Machine calibration for the latency numbers: what one request/answer between two Node
// processes over loopback TCP costs on this machine, in wall time and CPU. Every message of the
// push pipeline makes a dozen such hops (HTTP, Redis, gRPC, WebSocket), so this constant is the
// floor that its latency and CPU per message are built from; comparing runs across machines
// without it is guesswork.
//
//   node --import tsx bench/lib/loopback-rtt.ts          # standalone
import { fork } from 'node:child_process';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds } from './push-procs.ts';

export interface LoopbackCost {
  roundTrips: number;
  /** Wall time of one 1-byte request/answer, µs (median of the run). */
  rttMicros: number;
  /** CPU of the asking process per round trip, µs (user + system). */
  clientCpuMicros: number;
  /** CPU of the answering process per round trip, µs. */
  serverCpuMicros: number;
}

const SELF = fileURLToPath(import.meta.url);

export async function measureLoopback(roundTrips = 5000): Promise<LoopbackCost> {
  const child = fork(SELF, ['--echo-server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve(Number(m)));
      child.once('error', reject);
    });
    const socket = createConnection({ port, host: '127.0.0.1', noDelay: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const once = () => new Promise<void>((resolve) => { socket.once('data', () => resolve()); socket.write('x'); });
    for (let i = 0; i < 500; i++) await once(); // warm-up
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    const serverCpu0 = procCpuSeconds(child.pid!);
    for (let i = 0; i < roundTrips; i++) {
      const t = performance.now();
      await once();
      times.push(performance.now() - t);
    }
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = procCpuSeconds(child.pid!) - serverCpu0;
    socket.destroy();
    times.sort((a, b) => a - b);
    return {
      roundTrips,
      rttMicros: times[Math.floor(times.length / 2)]! * 1000,
      clientCpuMicros: (cpu.user + cpu.system) / roundTrips,
      serverCpuMicros: (serverCpu * 1e6) / roundTrips,
    };
  } finally {
    child.kill();
  }
}

export function describeLoopback(c: LoopbackCost): string {
  return (
    `machine calibration: one 1-byte request/answer between two Node processes over loopback TCP takes ` +
    `${c.rttMicros.toFixed(0)} µs (median of ${c.roundTrips}) and ${c.clientCpuMicros.toFixed(0)} + ${c.serverCpuMicros.toFixed(0)} µs ` +
    `of CPU (asker + answerer); each message of phase 2 makes about a dozen such hops`
  );
}

if (process.argv.includes('--echo-server')) {
  const server = createServer((s) => s.setNoDelay(true).on('data', (d) => s.write(d)));
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
  process.on('disconnect', () => process.exit(0));
} else if (process.argv[1] === SELF) {
  console.log(describeLoopback(await measureLoopback()));
}
