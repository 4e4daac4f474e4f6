// Starts a local Redis Cluster of private redis-server processes (3 masters, no replicas) on
// loopback: `pushline start --cluster`, scripts/start_redis_cluster.sh and the cluster tests.
// Slots are assigned with CLUSTER ADDSLOTSRANGE and the nodes joined with CLUSTER MEET, which is
// what `redis-cli --cluster create` does, without its prompts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensureRedisServer, pingRedis, spawnGuarded, startOnAPort } from './redis-server.ts';

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Crash this node (SIGKILL). */
  kill(): Promise<void>;
}

export interface RunningCluster {
  readonly nodes: readonly ClusterNode[];
  /** host:port,… for REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Data folder; each node gets a sub-folder named after its port. */
  dir: string;
  masters?: number;
  /** Fixed ports (one per master); free ones are picked when omitted. */
  ports?: number[];
  binary?: string;
  /**
   * Run each node behind the guard of `startRedisServer({ guarded })`, in a process group of its
   * own: a terminal's Ctrl-C reaches only our process, and when our process dies without stopping
   * them (SIGKILL), the nodes stop instead of running on.
   */
  guarded?: boolean;
}

const SLOTS = 16384;

export async function startRedisCluster(options: RedisClusterOptions): Promise<RunningCluster> {
  const binary = options.binary ?? ensureRedisServer();
  const masters = options.masters ?? 3;
  const host = '127.0.0.1';
  const nodes: ClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
  };
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startOnAPort(options.ports?.[i], (port) => launchNode(binary, host, port, options), host));
    const admin = nodes.map((n) => new Redis({ host, port: n.port, protocol: 2, lazyConnect: true, maxRetriesPerRequest: 3 }));
    try {
      await Promise.all(admin.map((c) => c.connect()));
      // Each master its share of the 16384 slots, then everyone meets the first node.
      await Promise.all(
        admin.map((c, i) => {
          const lo = Math.floor((SLOTS * i) / masters);
          const hi = Math.floor((SLOTS * (i + 1)) / masters) - 1;
          return c.call('CLUSTER', 'ADDSLOTSRANGE', String(lo), String(hi));
        }),
      );
      for (let i = 1; i < masters; i++) await admin[i]!.call('CLUSTER', 'MEET', host, String(nodes[0]!.port));
      const deadline = Date.now() + 30_000;
      for (;;) {
        const states = await Promise.all(admin.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>));
        const known = await Promise.all(admin.map((c) => c.call('CLUSTER', 'NODES') as Promise<string>));
        const ok = states.every((s) => /cluster_state:ok/.test(s)) && known.every((k) => k.trim().split('\n').length === masters);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`Redis Cluster on ports ${nodes.map((n) => n.port).join(',')} did not reach cluster_state:ok within 30 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      admin.forEach((c) => c.disconnect());
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, seeds: nodes.map((n) => `${host}:${n.port}`).join(','), stop };
}

async function launchNode(binary: string, host: string, port: number, options: RedisClusterOptions): Promise<ClusterNode> {
  const dir = join(options.dir, String(port));
  // A node's nodes.conf remembers an earlier cluster: this one is new each time (no data kept).
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const args = [
    '--port', String(port),
    '--bind', host,
    '--dir', dir,
    '--daemonize', 'no',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'yes',
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', '5000',
  ];
  const child = options.guarded ? spawnGuarded(binary, args) : spawn(binary, args, { stdio: 'ignore' });
  // A guarded node is the guard's child in the guard's own group: SIGKILL goes to both.
  const killHard = () => (options.guarded ? process.kill(-child.pid!, 'SIGKILL') : child.kill('SIGKILL'));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 15_000;
  while (!(await pingRedis(port, host))) {
    if (exited) throw new Error(`redis-server (cluster node) exited while starting on port ${port}`);
    if (Date.now() > deadline) {
      killHard();
      throw new Error(`redis-server (cluster node) did not answer PING on port ${port} within 15 s`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    host,
    port,
    process: child,
    async kill() {
      if (exited) return;
      killHard();
      await exit;
    },
  };
}

/**
 * `pushline start --cluster`: a 3-master cluster under <data dir>/cluster, named in this process's
 * environment (REDIS_CLUSTER_NODES, and REDIS_HOST so the stack starts no redis-server of its own).
 * Its nodes run in their own process group (a terminal's Ctrl-C reaches only the stack, which stops
 * its children first) and are stopped when this process exits.
 */
export async function startLocalCluster(dataDir: string): Promise<RunningCluster> {
  const { resolve } = await import('node:path');
  const cluster = await startRedisCluster({ dir: resolve(dataDir, 'cluster'), guarded: true });
  process.env.REDIS_CLUSTER_NODES = cluster.seeds;
  process.env.REDIS_HOST = '127.0.0.1';
  process.on('exit', () => {
    for (const node of cluster.nodes) if (node.process.exitCode === null) node.process.kill('SIGTERM');
  });
  process.stdout.write(`started a local Redis Cluster: REDIS_CLUSTER_NODES=${cluster.seeds} (redis-cli -c -p ${cluster.nodes[0]!.port})\n`);
  return cluster;
}
