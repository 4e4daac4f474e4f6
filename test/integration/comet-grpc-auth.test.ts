// The comet's gRPC port is not open to anyone who can reach it: every call (server reflection
// included) needs `authorization: Bearer <COMET_GRPC_TOKEN>`, job sends it, comets and job refuse
// to start without one outside dev mode, and the hop can run over (mutual) TLS.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCometDefinition } from '../../src/comet/grpc-server.ts';
import { spawnPushline } from '../helpers/processes.ts';
import { useTestRedis } from '../helpers/redis.ts';
import { STACK_GRPC_TOKEN, startPushStack, type PushStack } from '../helpers/stack.ts';
import { serverMessages } from '../helpers/ws.ts';
import { waitFor } from '../helpers/wait.ts';

type Stub = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>;
const CometStub = (grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } }).ChatRoom.Comet.Comet;

function metadata(authorization?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set('authorization', authorization);
  return md;
}

function call(stub: Stub, method: string, req: unknown, md: grpc.Metadata): Promise<unknown> {
  return new Promise((resolve, reject) => stub[method]!(req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

function listServices(address: string, md: grpc.Metadata, credentials = grpc.credentials.createInsecure()): Promise<string[]> {
  const protoPath = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const def = grpc.loadPackageDefinition(loadSync(protoPath, { keepCase: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new def.grpc.reflection.v1.ServerReflection(address, credentials) as unknown as grpc.Client & {
    ServerReflectionInfo(md: grpc.Metadata): grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
  };
  const stream = client.ServerReflectionInfo(md);
  return new Promise<string[]>((resolve, reject) => {
    stream.on('data', (reply) => resolve(reply.list_services_response!.service.map((s: { name: string }) => s.name)));
    stream.on('error', reject);
    stream.write({ list_services: '' });
  }).finally(() => {
    stream.end();
    client.close();
  });
}

const body = (content: string) => Buffer.from(JSON.stringify({ content }));

describe('gRPC bearer token', () => {
  let stack: PushStack;
  let stub: Stub;
  beforeAll(async () => {
    stack = await startPushStack(1);
    stub = new CometStub(stack.comets[0]!.cometId, grpc.credentials.createInsecure()) as unknown as Stub;
  });
  afterAll(async () => {
    stub?.close();
    await stack?.close();
  });

  it('job dispatches room messages through a comet that requires the token', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'auth_viewer', 'room_auth');
    const res = await stack.post('/logic/send', { roomId: 'room_auth', userId: 'sender', messages: [{ content: 'with a token' }] });
    expect(res.statusCode).toBe(202);
    expect((await stack.finished(res.json().task_id)).status).toBe('completed');
    await waitFor(() => serverMessages(viewer).length === 1, 'viewer got the message');
    expect(serverMessages(viewer)[0]).toMatchObject({ messages: [{ content: 'with a token' }] });
    viewer.ws.close();
  });

  it('refuses calls without the token, with a wrong one or a malformed header with UNAUTHENTICATED, reflection included', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'auth_target', 'room_guarded');
    const req = { roomId: 'room_guarded', proto: { ver: 1, op: 4, seq: 0, body: body('intruder') } };
    for (const md of [metadata(), metadata('Bearer wrong-token-0123456789'), metadata(STACK_GRPC_TOKEN), metadata(`Basic ${STACK_GRPC_TOKEN}`)]) {
      await expect(call(stub, 'BroadcastRoom', req, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/authorization|bearer token/i) });
    }
    await expect(call(stub, 'Broadcast', { proto: req.proto }, metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(call(stub, 'Rooms', {}, metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(listServices(stack.comets[0]!.cometId, metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });

    // The right token (any case of "Bearer") passes, for the service and for reflection.
    await expect(call(stub, 'BroadcastRoom', { ...req, proto: { ...req.proto, body: body('allowed') } }, metadata(`bearer ${STACK_GRPC_TOKEN}`))).resolves.toEqual({ delivered: 1 });
    expect(await listServices(stack.comets[0]!.cometId, metadata(`Bearer ${STACK_GRPC_TOKEN}`))).toContain('ChatRoom.Comet.Comet');
    await waitFor(() => serverMessages(viewer).length === 1, 'the authenticated message');
    expect(serverMessages(viewer)).toEqual([{ content: 'allowed' }]);
    viewer.ws.close();
  });
});

describe('COMET_GRPC_TOKEN is required outside dev mode', () => {
  const shared = useTestRedis();
  it.each([['comet'], ['job']])('%s exits with a config error naming it', async (command) => {
    const proc = spawnPushline([command], {
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), AUTH_SECRET: 'auth-secret-0123456789', WEBHOOK_SECRET: 'x',
      COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: '0', JOB_METRICS_PORT: '0', JOB_METRICS_HOST: '127.0.0.1',
    });
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain('config error: COMET_GRPC_TOKEN is required');
  });
});

describe('gRPC over mutual TLS', () => {
  let dir: string;
  let stack: PushStack;
  const file = (name: string) => join(dir, name);
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushline-grpc-tls-'));
    // One self-signed certificate for 127.0.0.1, used as the CA, the comet's and job's identity.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', file('key.pem'), '-out', file('cert.pem'),
    ], { stdio: 'ignore' });
    stack = await startPushStack(1, {
      env: { COMET_GRPC_TLS_CERT: file('cert.pem'), COMET_GRPC_TLS_KEY: file('key.pem'), COMET_GRPC_TLS_CA: file('cert.pem') },
    });
  });
  afterAll(async () => {
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('job delivers over TLS; plaintext clients and TLS clients without a certificate are refused', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'tls_viewer', 'room_tls');
    const res = await stack.post('/logic/send', { roomId: 'room_tls', userId: 'sender', messages: [{ content: 'over tls' }] });
    expect((await stack.finished(res.json().task_id)).status).toBe('completed');
    await waitFor(() => serverMessages(viewer).length === 1, 'viewer got the TLS-delivered message');
    expect(serverMessages(viewer)[0]).toMatchObject({ messages: [{ content: 'over tls' }] });

    const address = stack.comets[0]!.cometId;
    const token = metadata(`Bearer ${STACK_GRPC_TOKEN}`);
    const ca = readFileSync(file('cert.pem'));
    const tries: [string, grpc.ChannelCredentials][] = [
      ['plaintext', grpc.credentials.createInsecure()],
      ['TLS without a client certificate', grpc.credentials.createSsl(ca)],
    ];
    for (const [what, credentials] of tries) {
      const stub = new CometStub(address, credentials) as unknown as Stub;
      await expect(call(stub, 'Rooms', {}, token), what).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      stub.close();
    }
    const ok = new CometStub(address, grpc.credentials.createSsl(ca, readFileSync(file('key.pem')), ca)) as unknown as Stub;
    expect(await call(ok, 'Rooms', {}, token)).toEqual({ rooms: { room_tls: true } });
    ok.close();
    viewer.ws.close();
  });
});
