// Starts a local Redis Cluster of private redis-server processes (3 masters, no replicas) on
// loopback: `pushline start --cluster`, scripts/start_redis_cluster.sh and the cluster tests.
// Slots are assigned with CLUSTER ADDSLOTSRANGE and the nodes joined with CLUSTER MEET, which is
// what `redis-cli --cluster create` does, without its prompts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensureRedisServer, freePort, pingRedis } from './redis-server.ts';

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
  /** Run each node in its own process group, so a terminal's Ctrl-C reaches only our process. */
  detached?: boolean;
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
    for (let i = 0; i < masters; i++) nodes.push(await launchNode(binary, host, options.ports?.[i] ?? (await freePort(host)), options));
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
  const child = spawn(binary, args, { stdio: 'ignore', detached: options.detached === true });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 15_000;
  while (!(await pingRedis(port, host))) {
    if (exited) throw new Error(`redis-server (cluster node) exited while starting on port ${port}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
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
      child.kill('SIGKILL');
      await exit;
    },
  };
}
