// `bench/queue.ts --cluster [--shards=N]`: pushline's queue on a local 3-master Redis Cluster (no
// replicas, AOF off), REDIS_QUEUE_SHARDS=N. Pre-fills N tasks (not timed), then drains them with
// the job's consumers and reports completed/s, Redis CPU µs per task (summed over the masters,
// from INFO cpu), and how the tasks and the CPU fell on each shard and node. Measures only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { Redis } from 'ioredis';
import { JobRunner } from '../../src/job/runner.ts';
import { ProcessorRegistry } from '../../src/job/processor.ts';
import { startRedisCluster } from '../../src/local/redis-cluster.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { createRedis, parseHostPorts, type RedisTarget } from '../../src/redis/connect.ts';
import { benchRunnerDefaults } from './peers.ts';

export interface ClusterBenchOptions {
  shards: number;
  n: number;
  workers: number;
  concurrency: number;
  log: (line: string) => void;
}

async function cpuSeconds(node: Redis): Promise<number> {
  const info = await node.info('cpu');
  const value = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? 0);
  return value('used_cpu_sys') + value('used_cpu_user');
}

export async function runClusterBench(options: ClusterBenchOptions): Promise<void> {
  const { shards, n, log } = options;
  const dir = mkdtempSync(join(tmpdir(), 'pushline-bench-cluster-'));
  const cluster = await startRedisCluster({ dir });
  const nodes = cluster.nodes.map((c) => new Redis({ host: c.host, port: c.port, protocol: 2 }));
  const target: RedisTarget = { host: '', port: 0, db: 0, password: '', clusterNodes: parseHostPorts(cluster.seeds) };
  const command = createRedis(target, 'command', 'bench');
  const dispatcher = new Agent();
  try {
    await command.connect();
    const keys = queueKeys({ tagged: true, shards });
    const queue = new TaskQueue(command, keys, { retentionSeconds: 7 * 86_400, idempotencyTtlSeconds: 86_400 });
    // Which master holds each shard's slot.
    const shardNode = await Promise.all(
      keys.shards.map(async (k) => {
        const slot = Number(await nodes[0]!.call('CLUSTER', 'KEYSLOT', k.tasks.queue));
        const ranges = (await nodes[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        const owner = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2][1];
        return { slot, port: owner ?? 0 };
      }),
    );
    log(`Redis Cluster of 3 masters on ${cluster.seeds} (AOF off); REDIS_QUEUE_SHARDS=${shards}: ` + keys.shards.map((k, i) => `${k.tasks.queue} slot ${shardNode[i]!.slot} on :${shardNode[i]!.port}`).join(', '));

    const priorities = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 5));
    for (let i = 0; i < n; i += 500) {
      await queue.enqueue(priorities.slice(i, i + 500).map((priority) => ({ type: 'bench', priority, payload: '{"x":1}' })));
    }
    const perShard = await Promise.all(keys.shards.map((k) => command.zcard(k.tasks.queue)));
    const cpuBefore = await Promise.all(nodes.map(cpuSeconds));
    let completed = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const runner = new JobRunner({
      queue,
      blockingConnection: (name) => createRedis(target, 'blocking', `bench-${name}`),
      registry: new ProcessorRegistry([{ type: 'bench', async process() { return null; } }]),
      consumers: options.workers,
      concurrency: options.concurrency,
      ...benchRunnerDefaults(dispatcher),
      onSettled: (stage, _task, verdict, applied) => {
        if (stage === 'tasks' && applied && verdict.outcome === 'completed' && ++completed === n) resolveDone();
      },
    });
    const started = performance.now();
    await runner.start();
    await done;
    const seconds = (performance.now() - started) / 1000;
    await runner.stop();
    const cpuAfter = await Promise.all(nodes.map(cpuSeconds));
    const cpuPerNode = cpuAfter.map((c, i) => c - cpuBefore[i]!);
    const cpuTotal = cpuPerNode.reduce((a, b) => a + b, 0);
    log(`| shards | tasks | completed/s | Redis CPU µs/task (all masters) | tasks per shard | Redis CPU s per master |`);
    log(`|---:|---:|---:|---:|---|---|`);
    log(
      `| ${shards} | ${n} | ${Math.round(n / seconds)} | ${((cpuTotal * 1e6) / n).toFixed(1)} | ${perShard.join(' / ')} | ` +
        `${cluster.nodes.map((c, i) => `:${c.port} ${cpuPerNode[i]!.toFixed(2)}`).join(', ')} |`,
    );
    log(`(consumers ${options.workers}×${options.concurrency}; one process, ${seconds.toFixed(1)} s)`);
  } finally {
    command.disconnect();
    nodes.forEach((c) => c.disconnect());
    await dispatcher.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
