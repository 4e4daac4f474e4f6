// The push end-to-end suite (push-e2e.suite.ts) on a 3-master Redis Cluster: once with one queue
// key set, once with REDIS_QUEUE_SHARDS=3. One cluster for the file; each stack its own prefix.
import { afterAll, beforeAll } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/redis-cluster.ts';
import { startPushStack } from '../helpers/stack.ts';
import { pushEndToEndSuite } from './push-e2e.suite.ts';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
}, 60_000);
afterAll(async () => cluster?.close());

for (const shards of [1, 3]) {
  pushEndToEndSuite(`push end to end on a 3-master Redis Cluster, ${shards} queue shard${shards > 1 ? 's' : ''}`, () =>
    startPushStack(2, { cluster: { seeds: cluster.seeds, shards, client: () => cluster.client() as never } }),
  );
}
