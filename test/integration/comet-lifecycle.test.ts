// Comets as users run them (`pushline comet`): a SIGKILLed comet's routing is removed by its
// peer, a restarted comet clears what its previous run left, SIGTERM closes sockets with 1001
// and removes routing. Also: a slow consumer is closed with 4008, the room comes from the
// token only, and server reflection answers (what grpcurl relies on). The SIGKILL/restart/SIGTERM
// walk runs on a standalone Redis and on a 3-master Redis Cluster (REDIS_CLUSTER_NODES).
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { CometClients } from '../../src/job/comet-clients.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import type { Redis } from 'ioredis';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { useTestCluster } from '../helpers/redis-cluster.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient } from '../helpers/ws.ts';

const SECRET = 'lifecycle-secret-0123456789';
const GRPC_TOKEN = 'lifecycle-grpc-token-0123456789';
const shared = useTestRedis();
const onCluster = useTestCluster();

/** Where the comets' Redis is: env for them, a client for assertions, whether keys are tagged. */
interface Where { env(): Record<string, string>; client(): Redis; tagged: boolean }
const standalone: Where = {
  env: () => ({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port) }),
  client: () => shared.client,
  tagged: false,
};
let clusterClient: Redis | null = null;
const clustered: Where = {
  env: () => ({ REDIS_CLUSTER_NODES: onCluster.cluster.seeds }),
  client: () => (clusterClient ??= onCluster.cluster.client() as unknown as Redis),
  tagged: true,
};

interface Node { proc: Proc; ws: number; grpc: number; id: string; env: Record<string, string> }

async function comet(prefix: string, extra: Record<string, string> = {}, ports?: { ws: number; grpc: number }, where: Where = standalone): Promise<Node> {
  const ws = ports?.ws ?? (await freePort());
  const grpcPort = ports?.grpc ?? (await freePort());
  const env = {
    ...where.env(), REDIS_KEY_PREFIX: prefix, AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: GRPC_TOKEN,
    COMET_HOST: '127.0.0.1', COMET_WS_PORT: String(ws), COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}`,
    COMET_HEARTBEAT_MS: '200', COMET_DEAD_AFTER_MS: '1500', LOG_LEVEL: 'info', ...extra,
  };
  const proc = spawnPushline(['comet'], env);
  await waitFor(() => proc.output().includes('serving WebSocket'), 'comet up', 30_000, 50);
  return { proc, ws, grpc: grpcPort, id: `127.0.0.1:${grpcPort}`, env };
}

const bearer = (token: string) => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
};

const open = (port: number, userId: string, roomId: string, query = '') => connectClient(port, SECRET, userId, roomId, query);

describe.each([
  ['a standalone Redis', standalone],
  ['a 3-master Redis Cluster', clustered],
])('comet processes on %s', (_, where) => {
  it("removes a SIGKILLed comet's routing from a live peer, and a restarted comet clears its leftovers", async () => {
    const prefix = uniquePrefix();
    const keys = routingKeys(prefix, where.tagged);
    const shared = { client: where.client() };
    const a = await comet(prefix, {}, undefined, where);
    const b = await comet(prefix, {}, undefined, where);
    const onA = await open(a.ws, 'ua', 'room_k');
    const onB = await open(b.ws, 'ub', 'room_k');
    await waitFor(async () => (await shared.client.scard(keys.roomConnections('room_k'))) === 2, 'both routed');

    a.proc.child.kill('SIGKILL');
    await a.proc.exited;
    // The peer logs this line after its purge has finished (the routing keys go one step at a
    // time), so it is what to wait for; the keys are checked once it is there.
    await waitFor(() => b.proc.output().includes(`comet ${a.id} stopped heartbeating`), "peer removed the dead comet's routing", 20_000, 100);
    expect(await shared.client.exists(keys.connectionInfo(onA.connId))).toBe(0);
    expect(await shared.client.smembers(keys.roomConnections('room_k'))).toEqual([onB.connId]);
    expect(await shared.client.zscore(keys.cometNodes, a.id)).toBeNull();

    // A comet killed with nobody left to notice: its restart removes what it left behind.
    b.proc.child.kill('SIGKILL');
    await b.proc.exited;
    expect(await shared.client.exists(keys.connectionInfo(onB.connId))).toBe(1);
    const b2 = await comet(prefix, {}, { ws: b.ws, grpc: b.grpc }, where);
    await waitFor(async () => (await shared.client.exists(keys.connectionInfo(onB.connId))) === 0, 'restart purged leftovers');
    expect(b2.proc.output()).toContain('left by a previous run');
    expect(await shared.client.exists(keys.roomConnections('room_k'))).toBe(0);

    // SIGTERM: sockets closed with 1001, routing and liveness removed, exit 0.
    const last = await open(b2.ws, 'uc', 'room_t');
    b2.proc.child.kill('SIGTERM');
    expect(await last.closed).toBe(1001);
    expect(await b2.proc.exited).toBe(0);
    // One key per EXISTS: on a cluster the two are in different slots.
    expect(await shared.client.exists(keys.connectionInfo(last.connId))).toBe(0);
    expect(await shared.client.exists(keys.roomConnections('room_t'))).toBe(0);
    expect(await shared.client.zscore(keys.cometNodes, b2.id)).toBeNull();
  });
});

describe('comet processes', () => {

  it('closes a slow consumer with 4008 and keeps serving the others', async () => {
    const prefix = uniquePrefix();
    const node = await comet(prefix, { COMET_MAX_BUFFER_BYTES: '262144', COMET_BATCH_MS: '0' });
    const slow = await open(node.ws, 'slow', 'room_s');
    const fast = await open(node.ws, 'fast', 'room_s');
    // The slow client stops reading: its kernel buffers fill, then the comet's send buffer.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const rpc = new CometClients({ deadlineMs: 5000, token: GRPC_TOKEN });
    const body = Buffer.from(JSON.stringify({ blob: 'x'.repeat(60_000) }));
    for (let i = 0; i < 400; i++) {
      await rpc.broadcastRoom(node.id, 'room_s', { ver: 1, op: 4, seq: 0, body });
      if (node.proc.output().includes('closing a slow consumer')) break;
    }
    await waitFor(() => node.proc.output().includes('closing a slow consumer'), 'slow consumer closed');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await slow.closed).toBe(4008);
    // The fast client got every message and is still connected.
    await rpc.broadcastRoom(node.id, 'room_s', { ver: 1, op: 4, seq: 0, body: Buffer.from('{"after":true}') });
    await waitFor(() => fast.frames.some((f) => JSON.stringify(f).includes('"after":true')), 'fast client still served');
    rpc.close();
    fast.ws.close();
    node.proc.child.kill('SIGTERM');
    await node.proc.exited;
  });

  it('takes the room from the token, never from the URL, and answers server reflection', async () => {
    const prefix = uniquePrefix();
    const node = await comet(prefix);
    const c = await open(node.ws, 'u_room', 'room_from_token', '&roomId=other&room=other&userId=admin');
    const hello = c.frames.find((f) => (f as { type: string }).type === 'connected') as { payload: { roomId: string; userId: string } };
    expect(hello.payload).toMatchObject({ roomId: 'room_from_token', userId: 'u_room' });
    const keys = routingKeys(prefix);
    expect(await shared.client.hget(keys.connectionInfo(c.connId), 'room_id')).toBe('room_from_token');
    c.ws.close();

    const require = createRequire(import.meta.url);
    const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const def = grpc.loadPackageDefinition(loadSync(protoPath, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const refl = new def.grpc.reflection.v1.ServerReflection(node.id, grpc.credentials.createInsecure()) as unknown as {
      ServerReflectionInfo(metadata: grpc.Metadata): grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
      close(): void;
    };
    const stream = refl.ServerReflectionInfo(bearer(GRPC_TOKEN));
    const reply = await new Promise<{ list_services_response?: { service: { name: string }[] } }>((resolve, reject) => {
      stream.on('data', resolve);
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    stream.end();
    refl.close();
    expect(reply.list_services_response!.service.map((s) => s.name)).toContain('ChatRoom.Comet.Comet');
    node.proc.child.kill('SIGTERM');
    await node.proc.exited;
  });
});
