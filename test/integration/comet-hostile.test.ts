// Hostile input against a real `pushline comet` process, over raw TCP sockets: bad request
// targets, bad upgrade headers, token garbage, huge query strings, non-UTF-8 and binary frames.
// Every one gets a clear answer (an HTTP status or a close code) and the comet keeps serving.
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient } from '../helpers/ws.ts';
import { signConnectionToken } from '../../src/auth/token.ts';

const SECRET = 'hostile-secret-0123456789';
const shared = useTestRedis();
let comet: Proc;
let wsPort: number;

beforeAll(async () => {
  wsPort = await freePort();
  const grpcPort = await freePort();
  comet = spawnPushline(['comet'], {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(), AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: 'hostile-grpc-token-0123456789',
    COMET_HOST: '127.0.0.1', COMET_WS_PORT: String(wsPort), COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}`,
    COMET_HEARTBEAT_MS: '200', LOG_LEVEL: 'info',
  });
  await waitFor(() => comet.output().includes('serving WebSocket'), 'comet up', 30_000, 50);
});
afterAll(async () => {
  comet?.child.kill('SIGTERM');
  await comet?.exited;
});

/** Writes raw bytes, returns everything the comet answered until it closed the connection. */
function raw(request: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(wsPort, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      // An accepted upgrade stays open: its answer is complete once the headers are.
      if (answer.startsWith('HTTP/1.1 101') && answer.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
    socket.write(request);
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
const upgradeHeaders = 'Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

async function stillServing(): Promise<void> {
  expect(comet.child.exitCode).toBeNull();
  const res = await fetch(`http://127.0.0.1:${wsPort}/health`);
  expect(res.status).toBe(200);
}

describe('the upgrade path, before any token is checked', () => {
  it('answers 400 to a request target that is not a URL (//[), and keeps serving', async () => {
    const answer = await raw(`GET //[ HTTP/1.1\r\n${upgradeHeaders}\r\n`);
    expect(statusOf(answer)).toBe(400);
    expect(answer).toContain('not a valid URL');
    await stillServing();
  });

  it('answers the plain HTTP handler, /metrics and /health whatever the target', async () => {
    for (const target of ['//[', '/health?//[', '/metrics?x=%ZZ', '/%', '*']) {
      const answer = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect([200, 400, 426]).toContain(statusOf(answer));
    }
    await stillServing();
  });

  it('refuses token garbage with 401 and malformed upgrade headers with 4xx', async () => {
    const tokens = ['x', '%E0%A4%A', 'a.b.c', `${'e'.repeat(60)}.${'f'.repeat(60)}.${'g'.repeat(60)}`, '%00%FF', encodeURIComponent('{"alg":"none"}')];
    for (const token of tokens) {
      expect(statusOf(await raw(`GET /?token=${token} HTTP/1.1\r\n${upgradeHeaders}\r\n`))).toBe(401);
    }
    const { token } = await signConnectionToken({ userId: 'u', roomId: 'r' }, SECRET, 60);
    const badHeaders = [
      'Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n',
      'Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
      'Host: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n',
      `${upgradeHeaders}Sec-WebSocket-Protocol: ,,,\r\n`,
      `${upgradeHeaders}Sec-WebSocket-Extensions: permessage-deflate; =; ;\r\n`,
    ];
    for (const headers of badHeaders) {
      const status = statusOf(await raw(`GET /?token=${token} HTTP/1.1\r\n${headers}\r\n`));
      expect(status === 101 || (status >= 400 && status < 500)).toBe(true);
    }
    expect(statusOf(await raw(`POST /?token=${token} HTTP/1.1\r\n${upgradeHeaders}Content-Length: 0\r\n\r\n`))).toBeGreaterThanOrEqual(400);
    await stillServing();
  });

  it('answers a huge query string and a garbage request line with 4xx', async () => {
    expect(statusOf(await raw(`GET /?token=${'a'.repeat(200_000)} HTTP/1.1\r\n${upgradeHeaders}\r\n`))).toBe(431);
    expect(statusOf(await raw('\u0000\u00ff garbage \r\n\r\n'))).toBe(400);
    expect(statusOf(await raw(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03])))).toBeLessThan(500);
    await stillServing();
  });
});

describe('frames after the upgrade', () => {
  it('closes a connection sending non-UTF-8 text with 1007, answers binary and odd JSON with error frames', async () => {
    const bad = await connectClient(wsPort, SECRET, 'u_bad', 'room_h');
    const socket = (bad.ws as unknown as { _socket: import('node:net').Socket })._socket;
    // A masked text frame whose payload is not UTF-8 (0xff 0xfe), written under ws's feet.
    const payload = Buffer.from([0xff, 0xfe, 0x41]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    expect(await bad.closed).toBe(1007);

    const odd = await connectClient(wsPort, SECRET, 'u_odd', 'room_h');
    for (const text of ['null', '[]', '"x"', '{"type":"history","payload":null}', '{"type":"history","payload":{"sinceSeq":1e400}}', '{"type":"clientMessages","payload":[]}']) {
      odd.ws.send(text);
    }
    odd.ws.send(Buffer.from([0xff, 0x00]), { binary: true });
    await waitFor(() => odd.frames.filter((f) => (f as { type?: string }).type === 'error').length >= 4, 'error frames');
    expect(await odd.closed).toBe(4002);
    await stillServing();
  });
});

describe('heartbeat floods', () => {
  const setCalls = async () => Number(/cmdstat_set:calls=(\d+)/.exec(await shared.client.info('commandstats'))?.[1] ?? 0);

  it('refresh the online TTL at most once per interval, get rate_limited, then a 4029 close', async () => {
    const c = await connectClient(wsPort, SECRET, 'u_flood', 'room_flood');
    const before = await setCalls();
    let closeCode = 0;
    c.closed.then((code) => (closeCode = code));
    for (let i = 0; i < 20_000 && c.ws.readyState === c.ws.OPEN; i++) c.ws.send('{"type":"heartbeat"}');
    const answered = () => c.frames.filter((f) => (f as { type?: string }).type === 'heartbeat').length;
    await waitFor(() => closeCode !== 0 || answered() === 20_000, 'the flood closed or answered in full');
    const errors = c.frames.filter((f) => (f as { type?: string }).type === 'error') as { payload: { code: string } }[];
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.payload.code === 'rate_limited')).toBe(true);
    expect(closeCode).toBe(4029);
    // The first heartbeat refreshes the TTL; the flood does not reach Redis.
    expect((await setCalls()) - before).toBeLessThanOrEqual(1);
    await stillServing();
  });

  it('are answered at a sane rate', async () => {
    const c = await connectClient(wsPort, SECRET, 'u_calm', 'room_flood');
    for (let i = 0; i < 3; i++) c.ws.send('{"type":"heartbeat"}');
    await waitFor(() => c.frames.filter((f) => (f as { type?: string }).type === 'heartbeat').length === 3, 'three answers');
    expect(c.frames.some((f) => (f as { type?: string }).type === 'error')).toBe(false);
    c.ws.close();
  });
});
