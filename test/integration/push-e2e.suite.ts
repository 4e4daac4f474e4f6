// End to end: HTTP POST to logic → push task in Redis → job groups the room's connections by
// comet and calls each comet once over gRPC → WebSocket clients on both comets receive it.
// One suite, run on a standalone Redis (push-e2e.test.ts) and on a Redis Cluster, unsharded
// and with 3 queue shards (push-e2e-cluster.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { CometHandle } from '../../src/comet/main.ts';
import type { Env } from '../../src/config/schema.ts';
import { TASK_ID_PATTERN } from '../../src/queue/keys.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { STACK_GRPC_TOKEN, STACK_SECRET, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages, type WsClient } from '../helpers/ws.ts';

const routingKeysOf = (env: Env) => routingKeys(env.REDIS_KEY_PREFIX, Boolean(env.REDIS_CLUSTER_NODES));

export function pushEndToEndSuite(name: string, start: () => Promise<PushStack>): void {
  describe(name, () => {
    let stack: PushStack;
    let client: Redis;
    let env: Env;
    let comets: CometHandle[];
    let app: FastifyInstance;
    const SECRET = STACK_SECRET;

    beforeAll(async () => {
      stack = await start();
      ({ client, env, comets, app } = stack);
    });
    afterAll(async () => {
      await stack?.close();
    });

    const connect = (comet: CometHandle, userId: string, roomId: string): Promise<WsClient> => stack.connect(comet, userId, roomId);
    const received = serverMessages;
    const post = (url: string, payload: unknown) => stack.post(url, payload);

    async function taskResult(id: string) {
      const hash = await stack.finished(id);
      return { status: hash.status, result: JSON.parse(hash.result ?? 'null') };
    }

    describe('the seed walkthrough: room video_123, four viewers on two comets', () => {
      it('POST /logic/send reaches all four; one gRPC call per comet; per-node outcome recorded', async () => {
        const viewers = [
          await connect(comets[0]!, 'user_123', 'video_123'), await connect(comets[0]!, 'user_456', 'video_123'),
          await connect(comets[1]!, 'user_789', 'video_123'), await connect(comets[1]!, 'user_999', 'video_123'),
        ];
        const outsider = await connect(comets[1]!, 'user_000', 'video_999');
        const res = await post('/logic/send', { roomId: 'video_123', userId: 123, userName: '主播', messages: [{ content: '大家好，欢迎来到直播间！' }] });
        expect(res.statusCode).toBe(202);
        const { task_id } = res.json();
        await waitFor(() => viewers.every((v) => received(v).length === 1), 'all four viewers got it');
        expect(received(viewers[2]!)[0]).toMatchObject({ id: task_id, roomId: 'video_123', userId: '123', userName: '主播', messages: [{ content: '大家好，欢迎来到直播间！' }] });
        expect(received(outsider)).toEqual([]);
        const { status, result } = await taskResult(task_id);
        expect(status).toBe('completed');
        expect(result).toMatchObject({ sent: 4, failed: 0, comet_nodes: 2, connections: 4 });
        expect(result.nodes.map((n: { comet: string; delivered: number; attempts: number }) => [n.comet, n.delivered, n.attempts]).sort()).toEqual(
          comets.map((c) => [c.cometId, 2, 1]).sort(),
        );
        for (const v of [...viewers, outsider]) v.ws.close();
      });
    });

    describe('health', () => {
      it('GET /health answers 200 with Redis up and the queue depths (no MOVED on a cluster)', async () => {
        const res = await app.inject({ method: 'GET', url: '/health' });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ status: 'ok', redis: { status: 'up' } });
      });
    });

    describe('routing written by hand', () => {
      it('job routes seed-style data typed with redis-cli: 4 connections grouped into 2 comet nodes', async () => {
        const { spawnSync } = await import('node:child_process');
        // The seed's key names (hash-tagged on a cluster: room:connections:{video_seed}, ...).
        const keys = routingKeysOf(env);
        const [a, b] = comets.map((c) => c.cometId);
        const lines = [['conn_1', 'user_123', a], ['conn_2', 'user_456', a], ['conn_3', 'user_789', b], ['conn_4', 'user_999', b]]
          .flatMap(([conn, user, comet]) => [
            `SADD ${keys.roomConnections('video_seed')} ${conn}`,
            `HMSET ${keys.connectionInfo(conn!)} comet_id ${comet} user_id ${user} room_id video_seed`,
            `SET ${keys.userOnline(user!)} ${conn}`,
          ]);
        expect(spawnSync('redis-cli', stack.redisCli, { input: lines.join('\n'), encoding: 'utf8' }).status).toBe(0);
        const res = await post('/logic/send', { roomId: 'video_seed', userId: 123, messages: [{ content: 'hand-made routing' }] });
        const { status, result } = await taskResult(res.json().task_id);
        expect(status).toBe('completed');
        // One call per comet node, both answered; nobody is actually connected there, so 0 delivered.
        expect(result).toMatchObject({ sent: 4, failed: 0, comet_nodes: 2, connections: 4 });
        expect(result.nodes.map((n: { comet: string; connections: number; ok: boolean }) => [n.comet, n.connections, n.ok]).sort()).toEqual([[a, 2, true], [b, 2, true]].sort());
      });
    });

    describe('push and broadcast', () => {
      it('/logic/push reaches only the listed users, on whichever comet; /logic/broadcast reaches everyone', async () => {
        const a = await connect(comets[0]!, 'alice', 'r1');
        const a2 = await connect(comets[1]!, 'alice', 'r2');
        const b = await connect(comets[1]!, 'bob', 'r1');
        const push = await post('/logic/push', { userIds: ['alice'], message: { text: 'just you' }, priority: 5 });
        expect(push.statusCode).toBe(202);
        await waitFor(() => received(a).length === 1 && received(a2).length === 1, 'both of alice\'s devices');
        expect(received(b)).toEqual([]);
        const all = await post('/logic/broadcast', { message: { text: 'everyone' } });
        expect(all.statusCode).toBe(202);
        await waitFor(() => received(b).length === 1 && received(a).length === 2, 'broadcast');
        expect(received(b)[0]).toMatchObject({ text: 'everyone' });
        for (const c of [a, a2, b]) c.ws.close();
      });

      it('a comet that is down while a message is dispatched is retried, then reported failed; the others still get it', async () => {
        const keys = routingKeysOf(env);
        const viewer = await connect(comets[0]!, 'viewer', 'room_down');
        // A live-looking comet with a routed connection, but nothing listening on its port.
        const deadPort = await freePort();
        const ghost = `127.0.0.1:${deadPort}`;
        await client.zadd(keys.cometNodes, Date.now(), ghost);
        await client.sadd(keys.roomConnections('room_down'), 'ghost_conn');
        await client.hset(keys.connectionInfo('ghost_conn'), 'comet_id', ghost, 'user_id', 'ghost', 'room_id', 'room_down');
        const res = await post('/logic/send', { roomId: 'room_down', userId: 'x', messages: [{ content: 'hello' }] });
        await waitFor(() => received(viewer).length === 1, 'the live comet delivered');
        const { status, result } = await taskResult(res.json().task_id);
        expect(status).toBe('completed');
        expect(result).toMatchObject({ sent: 1, failed: 1, comet_nodes: 2 });
        const failed = result.nodes.find((n: { comet: string }) => n.comet === ghost);
        expect(failed).toMatchObject({ ok: false, attempts: 3, connections: 1 });
        expect(failed.error).toBeTruthy();
        viewer.ws.close();
      });
    });

    describe('/logic/token and bad input', () => {
      it('signs a token for a live comet that the comet accepts', async () => {
        const res = await post('/logic/token', { userId: 'tok_user', roomId: 'tok_room' });
        expect(res.statusCode).toBe(200);
        const { token, comet, expiresAt } = res.json();
        expect(comets.map((c) => `ws://localhost:${c.wsPort}`)).toContain(comet);
        expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now());
        const ws = new WebSocket(`${comet.replace('localhost', '127.0.0.1')}/?token=${token}`);
        const first = await new Promise<{ type: string; payload: { userId: string; roomId: string } }>((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));
        expect(first).toMatchObject({ type: 'connected', payload: { userId: 'tok_user', roomId: 'tok_room' } });
        ws.close();
      });

      it.each([
        ['/logic/send', { roomId: 'r', userId: 'u', messages: [] }, 'messages'],
        ['/logic/send', { roomId: 'r', userId: 'u', messages: [{ content: 'x' }], priority: 7 }, 'priority'],
        ['/logic/send', { userId: 'u', messages: [{ content: 'x' }] }, 'roomId'],
        ['/logic/push', { userIds: [], message: {} }, 'userIds'],
        ['/logic/push', { userIds: ['a'], message: 'text' }, 'message'],
        ['/logic/broadcast', { message: { a: 1 }, extra: true }, 'extra'],
        ['/logic/token', { userId: 'a b', roomId: 'r' }, 'userId'],
      ])('%s with a bad body → 400 naming %s', async (url, body, field) => {
        const res = await post(url, body);
        expect(res.statusCode).toBe(400);
        expect(res.json().fields.map((f: { field: string }) => f.field)).toContain(field);
      });
    });

    describe('identity, recovery, offline and upstream', () => {
      const frameOfType = (c: WsClient, type: string) => c.frames.find((f) => !Array.isArray(f) && (f as { type: string }).type === type) as { payload: Record<string, unknown> } | undefined;

      it('room messages carry an id and a per-room seq; a reconnecting client recovers what it missed', async () => {
        const viewer = await connect(comets[0]!, 'seq_viewer', 'room_seq');
        for (const content of ['one', 'two']) await post('/logic/send', { roomId: 'room_seq', userId: 'host', messages: [{ content }] });
        await waitFor(() => received(viewer).length === 2, 'two live messages');
        const live = received(viewer) as { id: string; seq: number }[];
        expect(live.map((m) => m.seq).sort()).toEqual([1, 2]);
        viewer.ws.close();
        // Sent while the viewer was away.
        for (const content of ['three', 'four']) await post('/logic/send', { roomId: 'room_seq', userId: 'host', messages: [{ content }] });
        const keys = routingKeysOf(env);
        await waitFor(async () => (await client.xlen(keys.roomHistory('room_seq'))) === 4, 'history holds four');
        const back = await connect(comets[1]!, 'seq_viewer', 'room_seq');
        back.ws.send(JSON.stringify({ type: 'history', payload: { sinceSeq: 2 } }));
        const history = await waitFor(() => frameOfType(back, 'history'), 'history frame');
        const missed = history.payload.messages as { seq: number; messages: { content: string }[] }[];
        expect(missed.map((m) => [m.seq, m.messages[0]!.content])).toEqual([[3, 'three'], [4, 'four']]);
        back.ws.send(JSON.stringify({ type: 'history', payload: { sinceSeq: 'x' } }));
        await waitFor(() => back.frames.some((f) => (f as { type: string }).type === 'error'), 'error frame for a bad sinceSeq');
        back.ws.close();
      });

      it('a push to a user with no connection waits in user:offline and arrives when the user connects', async () => {
        const keys = routingKeysOf(env);
        const res1 = await post('/logic/push', { userIds: ['sleeper'], message: { text: 'first' } });
        const res2 = await post('/logic/push', { userIds: ['sleeper'], message: { text: 'second' } });
        expect([res1.statusCode, res2.statusCode]).toEqual([202, 202]);
        await waitFor(async () => (await client.llen(keys.userOffline('sleeper'))) === 2, 'two waiting');
        expect(await client.ttl(keys.userOffline('sleeper'))).toBeGreaterThan(0);
        const c = await connect(comets[1]!, 'sleeper', 'any_room');
        await waitFor(() => received(c).length === 2, 'offline messages delivered');
        expect(received(c).map((m) => m.text)).toEqual(['first', 'second']);
        // The comet removes them from user:offline only once their frame was written to the
        // socket (ws-server.ts deliverOffline): the client can read them before that removal.
        await waitFor(async () => (await client.exists(keys.userOffline('sleeper'))) === 0, 'user:offline emptied after the delivery');
        c.ws.close();
      });

      it("a client's clientMessages become a room message under the token's identity, rate-limited", async () => {
        const speaker = await connect(comets[0]!, 'speaker', 'room_up');
        const listener = await connect(comets[1]!, 'listener', 'room_up');
        speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: 'hi all', userId: 'admin', roomId: 'elsewhere' } }));
        const ack = await waitFor(() => frameOfType(speaker, 'ack'), 'ack');
        await waitFor(() => received(listener).length === 1, 'listener got it');
        expect(received(listener)[0]).toMatchObject({ id: ack.payload.id, roomId: 'room_up', userId: 'speaker', messages: [{ content: 'hi all' }], seq: 1 });
        // Burst 10 (UPSTREAM_BURST default): a rapid 15 leave some refused with rate_limited.
        for (let i = 0; i < 15; i++) speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: `m${i}` } }));
        await waitFor(() => speaker.frames.some((f) => (f as { type: string; payload?: { code?: string } }).type === 'error' && (f as { payload: { code: string } }).payload.code === 'rate_limited'), 'rate limited');
        speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: '' } }));
        await waitFor(() => speaker.frames.some((f) => (f as { payload?: { code?: string } }).payload?.code === 'invalid_frame'), 'empty content refused');
        speaker.ws.close();
        listener.ws.close();
      });

      it('clientMessages may carry a priority 1..5, which the room message and its task keep; anything else is refused', async () => {
        const speaker = await connect(comets[0]!, 'prio_speaker', 'room_prio');
        speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: 'urgent', priority: 5 } }));
        const ack = await waitFor(() => frameOfType(speaker, 'ack'), 'ack');
        await waitFor(() => received(speaker).length === 1, 'echoed to the room');
        expect(received(speaker)[0]).toMatchObject({ id: ack.payload.id, priority: 5, messages: [{ content: 'urgent' }] });
        expect((await stack.finished(String(ack.payload.id))).priority).toBe('5');
        for (const bad of [0, 6, 2.5, '5']) speaker.ws.send(JSON.stringify({ type: 'clientMessages', payload: { content: 'x', priority: bad } }));
        await waitFor(() => speaker.frames.filter((f) => (f as { payload?: { message?: string } }).payload?.message?.includes('priority must be a whole number from 1 to 5')).length === 4, 'four refusals');
        speaker.ws.close();
      });

      it('a connection never gets the same message id twice, even when job delivers again', async () => {
        const c = await connect(comets[0]!, 'dup_user', 'room_dup');
        const rpc = await import('../../src/job/comet-clients.ts');
        const clients = new rpc.CometClients({ deadlineMs: 1000, token: STACK_GRPC_TOKEN });
        const body = Buffer.from(JSON.stringify({ id: 'msg-1', text: 'once' }));
        await clients.broadcastRoom(comets[0]!.cometId, 'room_dup', { ver: 1, op: 4, seq: 0, body });
        await clients.broadcastRoom(comets[0]!.cometId, 'room_dup', { ver: 1, op: 4, seq: 0, body });
        await clients.pushMsg(comets[0]!.cometId, [c.connId], { ver: 1, op: 4, seq: 0, body: Buffer.from('{"id":"msg-2"}') });
        await clients.pushMsg(comets[0]!.cometId, [c.connId], { ver: 1, op: 4, seq: 0, body: Buffer.from('{"id":"msg-2"}') });
        await clients.broadcastRoom(comets[0]!.cometId, 'room_dup', { ver: 1, op: 4, seq: 0, body: Buffer.from('{"id":"msg-3"}') });
        await waitFor(() => received(c).some((m) => m.id === 'msg-3'), 'the last one');
        expect(received(c).map((m) => m.id)).toEqual(['msg-1', 'msg-2', 'msg-3']);
        clients.close();
        c.ws.close();
      });
    });

    describe('the client library', () => {
      it('connects with a token from logic, reconnects after a drop, recovers what it missed by seq, never twice', async () => {
        const { PushlineClient } = await import('../../src/client/index.ts');
        const keys = routingKeysOf(env);
        const got: { id?: string; seq?: number; messages?: { content: string }[] }[] = [];
        const states: string[] = [];
        let gate: Promise<void> = Promise.resolve();
        let tokens = 0;
        const clientLib = new PushlineClient({
          WebSocket: WebSocket as never,
          reconnectMinMs: 50,
          connection: async () => {
            await gate; // lets the test hold the reconnect until messages were sent meanwhile
            tokens++;
            const res = await post('/logic/token', { userId: 'lib_user', roomId: 'room_lib' });
            const { token, comet } = res.json();
            return { url: comet.replace('localhost', '127.0.0.1'), token };
          },
          onMessage: (m) => got.push(m as never),
          onState: (s) => states.push(s),
        });
        clientLib.connect();
        await waitFor(() => states.includes('open'), 'open');
        await post('/logic/send', { roomId: 'room_lib', userId: 'host', messages: [{ content: 'a' }] });
        await waitFor(() => got.length === 1, 'first message');

        // Drop the connection on the comet's side, and hold the reconnect.
        let release!: () => void;
        gate = new Promise((r) => (release = r));
        const holder = comets.find((c) => c.hub.conns.has(clientLib.connId!))!;
        holder.hub.conns.get(clientLib.connId!)!.ws.terminate();
        await waitFor(() => states.at(-1) === 'reconnecting', 'reconnecting');
        for (const content of ['b', 'c']) await post('/logic/send', { roomId: 'room_lib', userId: 'host', messages: [{ content }] });
        await waitFor(async () => (await client.xlen(keys.roomHistory('room_lib'))) === 3, 'sent while away');
        release();

        await waitFor(() => got.length === 3, 'recovered the two it missed');
        await post('/logic/send', { roomId: 'room_lib', userId: 'host', messages: [{ content: 'd' }] });
        await waitFor(() => got.length === 4, 'live again');
        expect(got.map((m) => [m.seq, m.messages![0]!.content])).toEqual([[1, 'a'], [2, 'b'], [3, 'c'], [4, 'd']]);
        expect(new Set(got.map((m) => m.id)).size).toBe(4);
        expect(tokens).toBe(2);
        expect(await clientLib.send('from the library')).toMatch(TASK_ID_PATTERN);
        await waitFor(() => got.some((m) => m.messages?.[0]?.content === 'from the library'), 'own message echoed through the room');
        clientLib.close();
      });
    });
  });
}
