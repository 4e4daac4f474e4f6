// `pushline start` the way people meet it: Ctrl-C in a terminal (SIGINT to the whole process
// group), a supervisor that is killed, a Redis port that a stranger already holds, and what the
// banner and logs say.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_AUTH_SECRET } from '../../src/config/schema.ts';
import { pingRedis, startRedisServer } from '../../src/local/redis-server.ts';
import { BIN } from '../helpers/processes.ts';
import { childPids, listenAddress, processEnvironment, startLocalStack, type LocalStack } from '../helpers/local-stack.ts';
import { startTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { connectClient, serverMessages } from '../helpers/ws.ts';
import { Redis } from 'ioredis';
import * as grpc from '@grpc/grpc-js';
import { loadCometDefinition } from '../../src/comet/proto.ts';
import { bearerToken } from '../../src/comet/grpc-auth.ts';

const run = promisify(execFile);
const script = (name: string) => fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
const auth = `Basic ${Buffer.from('admin:password').toString('base64')}`;

const started: LocalStack[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.child.exitCode === null) {
      try {
        process.kill(-s.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(s.cwd, { recursive: true, force: true });
  }
});

async function stack(options: Parameters<typeof startLocalStack>[0] = {}): Promise<LocalStack> {
  const s = await startLocalStack(options);
  started.push(s);
  return s;
}

async function post(s: LocalStack, body: unknown): Promise<string> {
  const res = await fetch(`${s.logicUrl}/generate`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { task_id: string }).task_id;
}

async function taskStatus(s: LocalStack, id: string): Promise<string> {
  const res = await fetch(`${s.logicUrl}/tasks/${id}`, { headers: { authorization: auth } });
  return ((await res.json()) as { status: string }).status;
}

/** Every port of the stack closed: nothing of it is left running. */
async function allGone(s: LocalStack): Promise<void> {
  const ports = [Number(new URL(s.logicUrl).port), s.redisPort, s.jobMetricsPort, ...s.comets.flatMap((c) => [c.ws, c.grpc])];
  await waitFor(() => ports.every((p) => listenAddress(p) === null), `every port of the stack closed (${ports.join(', ')})`, 30_000, 100);
  expect(await pingRedis(s.redisPort)).toBe(false);
}

describe('pushline start: ports nobody can take in between', () => {
  it('asked for any free port, each process binds one itself; .pushline/env, the banner and the comets\' routing name the ports they bound', async () => {
    // A COMET_ID in the user's .env (as .env.example suggests for one comet) must not give both
    // comets of the stack one identity.
    const s = await stack({ dotenv: 'COMET_ID=localhost:50051\nCOMET_PUBLIC_URL=ws://localhost:8082\n' });
    // The stack handed every child 0, never a number it guessed: a guessed free port can be taken
    // by any process on the machine before the child binds it (CI once lost a comet to
    // EADDRINUSE that way). Each child is found by the sub-command it runs.
    const children = childPids(s.child.pid!).map((pid) => ({ env: processEnvironment(pid), cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') }));
    const role = (name: string) => children.filter((c) => c.cmd.includes(name)).map((c) => c.env);
    expect(role('logic').map((e) => e.LOGIC_PORT)).toEqual(['0']);
    expect(role('job').map((e) => e.JOB_METRICS_PORT)).toEqual(['0']);
    expect(role('comet').map((e) => [e.COMET_WS_PORT, e.COMET_GRPC_PORT])).toEqual([['0', '0'], ['0', '0']]);
    // What the stack wrote and printed is what the processes bound.
    const out = s.output();
    const logicPort = Number(new URL(s.logicUrl).port);
    expect(out).toContain(`API        http://localhost:${logicPort}`);
    expect((await fetch(`${s.logicUrl}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${s.jobMetricsPort}/metrics`)).status).toBe(200);
    for (const [i, c] of s.comets.entries()) {
      expect(out).toContain(`comet${i + 1}     ws://localhost:${c.ws}   gRPC localhost:${c.grpc}`);
      expect((await fetch(`http://127.0.0.1:${c.ws}/health`)).status).toBe(200);
    }
    // Each comet is known by its own bound ports: job dials localhost:<grpc>, clients ws://localhost:<ws>.
    const redis = new Redis({ port: s.redisPort, lazyConnect: true });
    await redis.connect();
    try {
      expect((await redis.zrange('comet:nodes', '0', '-1')).sort()).toEqual(s.comets.map((c) => `localhost:${c.grpc}`).sort());
      for (const c of s.comets) expect(await redis.hget(`comet:info:localhost:${c.grpc}`, 'ws_url')).toBe(`ws://localhost:${c.ws}`);
    } finally {
      redis.disconnect();
    }
    // And a message sent through logic reaches a client of each comet.
    const clients = await Promise.all(s.comets.map((c, i) => connectClient(c.ws, DEV_AUTH_SECRET, `ports_user${i}`, 'ports_room')));
    const res = await fetch(`${s.logicUrl}/logic/send`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ roomId: 'ports_room', userId: 1, userName: 'host', messages: [{ content: 'through both comets' }] }),
    });
    expect(res.status).toBe(202);
    for (const c of clients) {
      await waitFor(() => serverMessages(c).length > 0, 'the message on each comet');
      c.ws.close();
    }
  });
});

describe('pushline start: a stranger on the logic and comet ports', () => {
  it('gives logic and the comet free ports, says so, and the banner and .pushline/env name them', async () => {
    const strangers = await Promise.all([0, 1].map(() => new Promise<Server>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })));
    const [logicTaken, wsTaken] = strangers.map((server) => (server.address() as AddressInfo).port);
    try {
      const s = await stack({ args: ['--port', String(logicTaken), '--comet-ports', `${wsTaken}:0,0:0`] });
      const out = s.output();
      expect(out).toContain(`port ${logicTaken} is taken: logic gets a free one`);
      expect(out).toContain(`port ${wsTaken} is taken: comet1's WebSocket gets a free one`);
      const logicPort = Number(new URL(s.logicUrl).port);
      expect(logicPort).not.toBe(logicTaken);
      expect(out).toContain(`API        http://localhost:${logicPort}`);
      expect((await fetch(`${s.logicUrl}/health`)).status).toBe(200);
      expect(s.comets[0]!.ws).not.toBe(wsTaken);
      expect((await fetch(`http://127.0.0.1:${s.comets[0]!.ws}/health`)).status).toBe(200);
    } finally {
      await Promise.all(strangers.map((server) => new Promise((r) => server.close(r))));
    }
  });
});

describe('pushline start: Ctrl-C', () => {
  it('SIGINT to the whole process group stops every process once, in order: the task is handed back, clients get 1001', async () => {
    // A short shutdown wait: the running task is handed back instead of finished.
    const s = await stack({ env: { JOB_SHUTDOWN_TIMEOUT_MS: '300' } });
    const client = await connectClient(s.comets[0]!.ws, DEV_AUTH_SECRET, 'ctrl_c_user', 'ctrl_c_room');
    const id = await post(s, { type: 'echo', payload: { delay_ms: 60_000 }, priority: 5 });
    await waitFor(async () => (await taskStatus(s, id)) === 'processing', 'the task running');

    process.kill(-s.child.pid!, 'SIGINT');
    expect(await s.exited).toBe(0);
    expect(await client.closed).toBe(1001);
    const out = s.output();
    expect(out).not.toContain('again: exiting now');
    expect(out).not.toContain('again: killing');
    expect(out).toMatch(/\[job\].*SIGTERM received: shutting down/);
    expect(out).not.toMatch(/\[(job|logic|comet\d)\].*SIGINT/);
    await allGone(s);
    expect(existsSync(join(s.cwd, '.pushline/env'))).toBe(false);

    // The task is back in line, its attempt not spent (Redis's AOF says so).
    const redis = await startRedisServer({ dir: join(s.cwd, '.pushline/redis') });
    const check = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
    try {
      await check.connect();
      expect(await check.hmget(`task:${id}`, 'status', 'attempts')).toEqual(['queued', '0']);
      expect(await check.zscore('uvr_tasks', id)).not.toBeNull();
    } finally {
      check.disconnect();
      await redis.stop();
    }
  });

  it('a killed supervisor leaves no process behind', async () => {
    const s = await stack();
    process.kill(s.child.pid!, 'SIGKILL');
    await allGone(s);
  });

  it('a killed supervisor of a --cluster stack leaves no cluster node behind', async () => {
    const s = await stack({ args: ['--cluster'] });
    const nodes = /REDIS_CLUSTER_NODES=(\S+)/.exec(s.output())![1]!.split(',').map((n) => Number(n.split(':')[1]));
    expect(nodes).toHaveLength(3);
    process.kill(s.child.pid!, 'SIGKILL');
    await waitFor(() => nodes.every((p) => listenAddress(p) === null), `every cluster node closed (${nodes.join(', ')})`, 30_000, 100);
  });
});

describe('pushline start: a stranger on the Redis port', () => {
  it('moves its Redis elsewhere, and the banner, the CLI and the scripts talk to it, not to the stranger', async () => {
    const stranger = await startTestRedis();
    const strangerClient = stranger.client();
    try {
      const s = await stack({ args: ['--redis-port', String(stranger.port)] });
      expect(s.redisPort).not.toBe(stranger.port);
      const out = s.output();
      expect(out).toContain(`redis-cli -h 127.0.0.1 -p ${s.redisPort}`);
      expect(out).toContain(`REDIS_HOST=127.0.0.1 REDIS_PORT=${s.redisPort} ./scripts/check_redis_queue.sh`);
      expect(out).toContain(`REDIS_HOST=127.0.0.1 REDIS_PORT=${s.redisPort} ./scripts/setup_redis_test_data.sh`);

      // Run in the stack's folder with no REDIS_* in the environment, as typed in a terminal.
      const opts = { env: s.toolEnv, cwd: s.cwd };
      const setup = await run('bash', [script('setup_redis_test_data.sh')], opts);
      expect(setup.stdout).toContain('房间 video_123 的连接数: 4');
      const status = await run(process.execPath, [BIN, 'queue', 'status'], opts);
      expect(status.stdout).toContain(`Redis 127.0.0.1:${s.redisPort}/0`);
      const queue = await run('bash', [script('check_redis_queue.sh')], opts);
      expect(queue.stdout).toContain(`(127.0.0.1:${s.redisPort}, db 0)`);
      const routing = await run('bash', [script('check_redis_routing.sh')], opts);
      expect(routing.stdout).toContain('总连接数: 4');
      expect(await strangerClient.dbsize()).toBe(0);

      // An explicit REDIS_PORT still wins.
      const explicit = await run(process.execPath, [BIN, 'queue', 'status'], { ...opts, env: { ...s.toolEnv, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(stranger.port) } });
      expect(explicit.stdout).toContain(`Redis 127.0.0.1:${stranger.port}/0`);

      process.kill(-s.child.pid!, 'SIGINT');
      expect(await s.exited).toBe(0);
      expect(existsSync(join(s.cwd, '.pushline/env'))).toBe(false);
    } finally {
      await stranger.close();
    }
  });
});

describe('pushline start --cluster', () => {
  it('the banner names the cluster, .pushline/env carries REDIS_CLUSTER_NODES, and the CLI and the scripts find it with no REDIS_* of their own', async () => {
    const s = await stack({ args: ['--cluster'], env: { REDIS_QUEUE_SHARDS: '3' } });
    const out = s.output();
    const seeds = /REDIS_CLUSTER_NODES=(\S+)/.exec(out)?.[1];
    expect(seeds).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
    const firstPort = seeds!.split(',')[0]!.split(':')[1];
    // The start log names the cluster it uses, not the single-Redis default it does not.
    expect(out).toContain(`using the configured Redis (cluster ${seeds})`);
    expect(out).not.toContain('127.0.0.1:6379');
    const banner = out.slice(out.indexOf('pushline local stack'));
    expect(banner).toContain(`redis-cli -c -h 127.0.0.1 -p ${firstPort}`);
    expect(banner).toContain(`REDIS_CLUSTER_NODES=${seeds} REDIS_QUEUE_SHARDS=3 ./scripts/check_redis_queue.sh`);
    expect(banner).toContain(`REDIS_CLUSTER_NODES=${seeds} REDIS_QUEUE_SHARDS=3 ./scripts/setup_redis_test_data.sh`);
    expect(banner).not.toMatch(/REDIS_HOST=|redis-cli -h/);

    const id = await post(s, { type: 'echo', payload: { on: 'cluster' }, priority: 5 });
    expect(id).toMatch(/^[0-2]-\d{17}$/);
    await waitFor(async () => (await taskStatus(s, id)) === 'completed', `task ${id} completed`);

    // Run in the stack's folder with no REDIS_* in the environment, as typed in a terminal.
    const opts = { env: s.toolEnv, cwd: s.cwd };
    const status = await run(process.execPath, [BIN, 'queue', 'status'], opts);
    expect(status.stdout).toContain(`Redis cluster ${seeds}`);
    expect(status.stdout).toContain('3 queue shards');
    const queue = await run('bash', [script('check_redis_queue.sh')], opts);
    expect(queue.stdout).toContain(`(Redis Cluster via 127.0.0.1:${firstPort}, 3 shards)`);
    const setup = await run('bash', [script('setup_redis_test_data.sh')], opts);
    expect(setup.stdout).toContain('房间 video_123 的连接数: 4');
    const routing = await run('bash', [script('check_redis_routing.sh')], opts);
    expect(routing.stdout).toContain('总连接数: 4');

    process.kill(-s.child.pid!, 'SIGINT');
    expect(await s.exited).toBe(0);
    expect(existsSync(join(s.cwd, '.pushline/env'))).toBe(false);
  });
});

describe('pushline start: first contact', () => {
  it('plain logs on a pipe, the dev webhook secret and the gRPC token in the banner, job metrics on loopback, comets in --help', async () => {
    const s = await stack();
    const out = s.output();
    expect(out).not.toContain('\x1b[');
    expect(out).toContain('"pushline-dev-webhook-secret"');
    expect(out).toContain(`job http://localhost:${s.jobMetricsPort}/metrics`);
    expect(listenAddress(s.jobMetricsPort)).toBe('127.0.0.1');
    expect((await fetch(`http://127.0.0.1:${s.jobMetricsPort}/metrics`)).status).toBe(200);
    // The gRPC token the banner prints is the one the comets take (grpcurl by hand needs it).
    const token = /gRPC auth\s+-H 'authorization: Bearer ([^']+)'/.exec(out)?.[1];
    expect(token).toBeTruthy();
    const pkg = grpc.loadPackageDefinition(loadCometDefinition()) as unknown as { ChatRoom: { Comet: { Comet: grpc.ServiceClientConstructor } } };
    const rooms = (interceptors: grpc.Interceptor[]) =>
      new Promise<number>((resolve) => {
        const client = new pkg.ChatRoom.Comet.Comet(`127.0.0.1:${s.comets[0]!.grpc}`, grpc.credentials.createInsecure(), { interceptors }) as unknown as grpc.Client & { Rooms: (req: object, cb: (err: grpc.ServiceError | null) => void) => void };
        client.Rooms({}, (err) => {
          client.close();
          resolve(err ? err.code : grpc.status.OK);
        });
      });
    expect(await rooms([bearerToken(token!)])).toBe(grpc.status.OK);
    expect(await rooms([])).toBe(grpc.status.UNAUTHENTICATED);
    // The demo page's token helper answers: dev mode reaches logic.
    const mode = (await (await fetch(`${s.logicUrl}/demo/api/mode`)).json()) as { dev: boolean };
    expect(mode.dev).toBe(true);
    process.kill(-s.child.pid!, 'SIGINT');
    expect(await s.exited).toBe(0);

    const help = await run(process.execPath, [BIN, 'start', '--help'], { env: s.toolEnv });
    expect(help.stdout).toContain('two comets');
    expect(help.stdout).toContain('--comet-ports');
    expect(help.stdout).toContain('--redis-port');
  });
});
