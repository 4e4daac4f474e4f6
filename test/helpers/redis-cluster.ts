// A real 3-master Redis Cluster for a test file: started before its tests, killed after them,
// reused by every test in the file (each uses its own key prefix).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedisCluster, type RunningCluster } from '../../src/local/redis-cluster.ts';
import { createRedis, parseHostPorts, type RedisRole } from '../../src/redis/connect.ts';

export interface TestCluster {
  readonly cluster: RunningCluster;
  /** host:port,… for REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  /** A cluster client for assertions (follows MOVED like `redis-cli -c`). */
  client(): Cluster;
  /** A connection made the way the product makes them (createRedis with REDIS_CLUSTER_NODES). */
  connection(role: RedisRole, name?: string): Redis;
  close(): Promise<void>;
}

export async function startTestCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'pushline-cluster-'));
  const cluster = await startRedisCluster({ dir });
  const opened: { disconnect(): void }[] = [];
  return {
    cluster,
    seeds: cluster.seeds,
    client() {
      const c = new Cluster(parseHostPorts(cluster.seeds), { redisOptions: { protocol: 2 } });
      opened.push(c);
      return c;
    },
    connection(role, name = 'test') {
      const c = createRedis({ host: '', port: 0, db: 0, password: '', clusterNodes: parseHostPorts(cluster.seeds) }, role, name);
      opened.push(c);
      return c;
    },
    async close() {
      for (const c of opened) c.disconnect();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One cluster for the whole test file; read `.cluster` inside tests. */
export function useTestCluster(): { readonly cluster: TestCluster } {
  const shared = {} as { cluster: TestCluster };
  beforeAll(async () => {
    shared.cluster = await startTestCluster();
  }, 60_000);
  afterAll(async () => shared.cluster?.close());
  return shared;
}
