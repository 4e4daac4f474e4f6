// Replicated Redis for tests: a master, its replicas and (optionally) sentinels, each a real
// redis-server on a free loopback port with its own data folder. Sentinels run as
// `redis-server <conf> --sentinel` with a writable conf file, as Sentinel requires.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensureRedisServer, freePort, pingRedis } from '../../src/local/redis-server.ts';
import { ReplicationWait } from '../../src/queue/replication-wait.ts';
import { createRedis } from '../../src/redis/connect.ts';
import { waitFor } from './wait.ts';

export const SENTINEL_MASTER_NAME = 'mymaster';

export interface Node {
  readonly port: number;
  readonly process: ChildProcess;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
}

export interface ReplicatedRedis {
  /** Data nodes in start order: [0] is the first master, the rest its replicas. */
  readonly nodes: Node[];
  readonly sentinels: Node[];
  /** REDIS_SENTINELS for pushline: `127.0.0.1:p1,127.0.0.1:p2,…`. */
  readonly sentinelList: string;
  /** A plain client (RESP2, retries forever) to one node, for assertions; closed by close(). */
  client(port: number): Redis;
  /** The master's port as the sentinels report it (a majority of them agree). */
  sentinelMaster(): Promise<number>;
  /** Waits until a majority of sentinels name a master other than `oldPort`, and it says ROLE master. */
  waitForNewMaster(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Crash a node (SIGKILL). */
  kill(port: number): Promise<void>;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

async function launch(args: string[], port: number): Promise<Node> {
  const child = spawn(ensureRedisServer(), args, { stdio: 'ignore' });
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((gone = true), resolve())));
  await waitFor(async () => {
    if (gone) throw new Error(`redis-server ${args.join(' ')} exited while starting`);
    return pingRedis(port, HOST);
  }, `redis-server on ${port}`, 15_000);
  return { port, process: child, exited };
}

function dataNodeArgs(port: number, dir: string, replicaOf?: number): string[] {
  return [
    '--port', String(port),
    '--bind', HOST,
    '--dir', dir,
    '--daemonize', 'no',
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    // The first sync of a new replica starts at once instead of waiting 5 s for more replicas.
    '--repl-diskless-sync', 'yes',
    '--repl-diskless-sync-delay', '0',
    '--replica-announce-ip', HOST,
    ...(replicaOf ? ['--replicaof', HOST, String(replicaOf)] : []),
  ];
}

/**
 * A master with `replicas` replicas, all in sync, and `sentinels` sentinels that know the master,
 * its replicas and each other (so a failover can start as soon as the master is down).
 */
export async function startReplicatedRedis(opts: { replicas: number; sentinels?: number; downAfterMs?: number }): Promise<ReplicatedRedis> {
  const root = mkdtempSync(join(tmpdir(), 'pushline-sentinel-'));
  const nodes: Node[] = [];
  const sentinels: Node[] = [];
  const clients: Redis[] = [];
  const handle: ReplicatedRedis = {
    nodes,
    sentinels,
    get sentinelList() {
      return sentinels.map((s) => `${HOST}:${s.port}`).join(',');
    },
    client(port) {
      const c = new Redis({ host: HOST, port, protocol: 2, maxRetriesPerRequest: null, lazyConnect: false });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async sentinelMaster() {
      const named = await Promise.all(
        sentinels.map(async (s) => {
          const c = handle.client(s.port);
          const addr = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME)) as [string, string] | null;
          return addr ? Number(addr[1]) : null;
        }),
      );
      const counts = new Map<number, number>();
      for (const port of named) if (port !== null) counts.set(port, (counts.get(port) ?? 0) + 1);
      const agreed = [...counts].find(([, n]) => n > sentinels.length / 2);
      if (!agreed) throw new Error(`sentinels disagree on the master: ${named.join(', ')}`);
      return agreed[0];
    },
    async waitForNewMaster(oldPort, timeoutMs = 60_000) {
      return waitFor(async () => {
        const port = await handle.sentinelMaster();
        if (port === oldPort) return null;
        const role = (await handle.client(port).call('ROLE')) as [string];
        return role[0] === 'master' ? port : null;
      }, 'the sentinels to promote a new master', timeoutMs, 100);
    },
    async kill(port) {
      const node = [...nodes, ...sentinels].find((n) => n.port === port);
      if (!node) throw new Error(`no node on ${port}`);
      node.process.kill('SIGKILL');
      await node.exited;
    },
    async close() {
      for (const c of clients) c.disconnect();
      for (const n of [...sentinels, ...nodes]) n.process.kill('SIGKILL');
      await Promise.all([...sentinels, ...nodes].map((n) => n.exited));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    const masterPort = await freePort();
    const masterDir = join(root, `node-${masterPort}`);
    mkdirSync(masterDir);
    nodes.push(await launch(dataNodeArgs(masterPort, masterDir), masterPort));
    for (let i = 0; i < opts.replicas; i++) {
      const port = await freePort();
      const dir = join(root, `node-${port}`);
      mkdirSync(dir);
      nodes.push(await launch(dataNodeArgs(port, dir, masterPort), port));
    }
    const master = handle.client(masterPort);
    await waitFor(async () => {
      const info = await master.info('replication');
      const online = info.match(/^slave\d+:.*state=online/gm) ?? [];
      return online.length === opts.replicas;
    }, `${opts.replicas} replicas online`, 30_000, 50);

    for (let i = 0; i < (opts.sentinels ?? 0); i++) {
      const port = await freePort();
      const dir = join(root, `sentinel-${port}`);
      mkdirSync(dir);
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          'daemonize no',
          `dir ${dir}`,
          `sentinel announce-ip ${HOST}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} ${HOST} ${masterPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 2`,
          '',
        ].join('\n'),
      );
      sentinels.push(await launch([conf, '--sentinel'], port));
    }
    // Sentinels find the replicas (master INFO) and each other (hello messages every 2 s).
    for (const s of sentinels) {
      const c = handle.client(s.port);
      await waitFor(async () => {
        const replicas = (await c.call('SENTINEL', 'replicas', SENTINEL_MASTER_NAME)) as unknown[];
        const others = (await c.call('SENTINEL', 'sentinels', SENTINEL_MASTER_NAME)) as unknown[];
        return replicas.length === opts.replicas && others.length === sentinels.length - 1;
      }, `sentinel ${s.port} to know the replicas and the other sentinels`, 30_000, 100);
    }
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** REDIS_WAIT_REPLICAS as logic sets it up: its own connection to the node on `port`. */
export async function testReplicationWait(port: number, replicas: number, timeoutMs: number): Promise<ReplicationWait> {
  const redis = createRedis({ host: HOST, port, db: 0, password: '' }, 'api', 'test-replication-wait');
  redis.on('error', () => {});
  await redis.connect().catch(() => {});
  return new ReplicationWait(redis, { replicas, timeoutMs });
}
