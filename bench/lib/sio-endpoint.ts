// Child process of the push benchmark's peer: the HTTP endpoint a socket.io team would put in
// front of its nodes. POST /send with the same body as pushline's /logic/send is published to
// the room through @socket.io/redis-emitter and answered 202 at once.
//
//   node --import tsx bench/lib/sio-endpoint.ts '{"redisPort":6379,"port":0}'
//
// On purpose it does only what the peer's design does: no auth, no validation beyond "an object
// with a roomId", no queue (a node that is down or slow loses the message: Redis pub/sub is
// at-most-once), no history, no priorities, no per-room seq. fastify, as pushline's logic.
// Prints {"ready":true,"port":n,"pid":n} on stdout; exits on SIGTERM/SIGINT or when stdin ends.
import { Emitter } from '@socket.io/redis-emitter';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const config = JSON.parse(process.argv[2] ?? '{}') as { redisPort: number; port?: number };
const redis = new Redis({ host: '127.0.0.1', port: config.redisPort, protocol: 2 });
redis.on('error', (err) => process.stderr.write(`sio-endpoint redis: ${String(err)}\n`));
const emitter = new Emitter(redis);

const app = Fastify({ logger: false });
app.post('/send', async (request, reply) => {
  const body = request.body as { roomId?: unknown } | null;
  if (!body || typeof body !== 'object' || typeof body.roomId !== 'string') return reply.code(400).send({ error: 'roomId (a string) is required' });
  emitter.to(body.roomId).emit('message', { ...body, ts: Date.now() });
  return reply.code(202).send({ status: 'published' });
});

const address = await app.listen({ host: '127.0.0.1', port: config.port ?? 0 });
process.stdout.write(JSON.stringify({ ready: true, port: Number(new URL(address).port), pid: process.pid }) + '\n');

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5_000).unref();
  void app.close().finally(() => {
    redis.disconnect();
    process.exit(0);
  });
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.resume();
process.stdin.on('end', stop);
