// The peer as a team would build it instead of pushline: two socket.io server nodes with
// @socket.io/redis-adapter, each holding half the viewers and idle members in one room, and an
// HTTP endpoint (fastify) publishing each POST through @socket.io/redis-emitter. All three are
// child processes on a SECOND fresh redis-server (same settings as pushline's), so its INFO cpu
// is the peer's alone. Viewers and idle members are socket.io-client sockets in the bench process.
//
// What the peer does NOT do (printed with the results): no auth on the endpoint or the sockets,
// no validation, no queue and no at-least-once (Redis pub/sub drops what a node misses), no
// history or resume, no priorities, no per-room seq.
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { io as connect, type Socket } from 'socket.io-client';
import { startRedisServer } from '../../src/local/redis-server.ts';
import { log } from './push-common.ts';
import { childEnv, exitedChild, startChild, type Child } from './push-procs.ts';
import type { Receipts, Stack } from './push-scenario.ts';
import { pool, withTimeout } from './util.ts';

export const PEER_LIMITS =
  'socket.io peer: no auth (endpoint and sockets), no validation, no queue or at-least-once (Redis pub/sub: a node that misses a message loses it), no history or resume, no priorities, no per-room seq';

export interface SocketioStackOptions {
  root: string;
  dir: string;
  room: string;
  viewersPerNode: number;
  idleMembers: number;
  connectInFlight: number;
}

function joinRoom(port: number, room: string, onMessage: (msg: unknown) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], query: { room }, reconnection: false, timeout: 30_000 });
    socket.on('message', onMessage);
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(new Error(`socket.io connect failed: ${err.message}`)));
  });
}

export async function startSocketioStack(o: SocketioStackOptions, receipts: Receipts): Promise<Stack> {
  const children: Child[] = [];
  const sockets: Socket[] = [];
  const server = await startRedisServer({ dir: join(o.dir, 'socketio-redis'), appendonly: true });
  const redis = new Redis({ host: '127.0.0.1', port: server.port, protocol: 2, lazyConnect: true });
  const stop = async () => {
    for (const s of sockets) s.disconnect();
    redis.disconnect();
    for (const c of [...children].reverse()) await c.stop();
    await withTimeout(server.stop(), 10_000, 'socket.io redis-server SIGTERM').catch(() => server.kill());
  };
  try {
    const start = async (name: string, file: string) => {
      const child = startChild(name, process.execPath, ['--import', 'tsx', join(o.root, 'bench/lib', file), JSON.stringify({ redisPort: server.port })], {
        env: childEnv({}),
        cwd: o.root,
      });
      children.push(child);
      return { child, ...(JSON.parse(await child.nextLine(60_000)) as { port: number }) };
    };
    const nodes = [await start('socket.io node 1', 'sio-node.ts'), await start('socket.io node 2', 'sio-node.ts')];
    const endpoint = await start('socket.io HTTP endpoint', 'sio-endpoint.ts');
    await redis.connect();
    log(`  socket.io: nodes :${nodes.map((n) => n.port).join(', :')}, HTTP endpoint :${endpoint.port}, redis-server :${server.port} (its own)`);

    const viewers = o.viewersPerNode * 2;
    for (let v = 0; v < viewers; v++) {
      sockets.push(
        await joinRoom(nodes[v % 2]!.port, o.room, (msg) => {
          const content = (msg as { messages?: { content?: string }[] } | null)?.messages?.[0]?.content;
          if (typeof content === 'string') receipts.receive(v, content);
        }),
      );
    }
    await pool(o.idleMembers, o.connectInFlight, async (k) => {
      sockets.push(await joinRoom(nodes[k % 2]!.port, o.room, () => {}));
    });
    log(`  socket.io: ${viewers} measured viewers + ${o.idleMembers} idle members in room ${o.room}, split over 2 nodes`);
    return {
      label: 'socket.io',
      origin: `http://127.0.0.1:${endpoint.port}`,
      path: '/send',
      headers: { 'content-type': 'application/json' },
      acceptedStatus: 202,
      body: (content) => JSON.stringify({ roomId: o.room, userId: 'bench', messages: [{ content }] }),
      viewers,
      procs: [['HTTP entry', endpoint.child.pid], ['gateway 1', nodes[0]!.child.pid], ['gateway 2', nodes[1]!.child.pid]],
      redis,
      health: () => exitedChild(children),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
