// Child process of the push benchmark's peer: ONE socket.io server node with
// @socket.io/redis-adapter, as a team would deploy socket.io instead of pushline's comets.
//
//   node --import tsx bench/lib/sio-node.ts '{"redisPort":6379,"port":0}'
//
// A client joins the room named in its handshake query (`?room=…`) — no token, no auth. Messages
// arrive from other processes through Redis pub/sub (the adapter) and go to every local member.
// Prints one JSON line {"ready":true,"port":n,"pid":n} on stdout; exits on SIGTERM/SIGINT or
// when stdin ends (the parent went away).
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const config = JSON.parse(process.argv[2] ?? '{}') as { redisPort: number; port?: number };
// RESP2, as pushline's and BullMQ's connections in the benches (ioredis 6 defaults to RESP3).
const redisOptions = { host: '127.0.0.1', port: config.redisPort, protocol: 2 as const, lazyConnect: false };
const pub = new Redis(redisOptions);
const sub = new Redis(redisOptions);
for (const c of [pub, sub]) c.on('error', (err) => process.stderr.write(`sio-node redis: ${String(err)}\n`));

const http = createServer();
// perMessageDeflate off, as on the pushline side (the ws default in pushline's comet is off too).
const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === 'string' && room) void socket.join(room);
});

await new Promise<void>((resolve) => http.listen(config.port ?? 0, '127.0.0.1', resolve));
const address = http.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(JSON.stringify({ ready: true, port, pid: process.pid }) + '\n');

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5_000).unref();
  io.close(() => {
    pub.disconnect();
    sub.disconnect();
    process.exit(0);
  });
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.resume();
process.stdin.on('end', stop);
