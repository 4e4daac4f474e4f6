// An in-process JobRunner on a test Redis, with fast retry settings.
import { Agent } from 'undici';
import { createRedis } from '../../src/redis/connect.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { JobRunner, type JobRunnerOptions } from '../../src/job/runner.ts';
import { ProcessorRegistry, type Processor } from '../../src/job/processor.ts';
import { echoProcessor } from '../../src/job/processors/echo.ts';
import { createGuardedAgent } from '../../src/net/ssrf.ts';
import { silentLogger } from '../../src/util/log.ts';
import { uniquePrefix } from './redis.ts';

export const WEBHOOK_SECRET = 'test-secret';

export async function testRunner(
  port: number,
  overrides: Partial<JobRunnerOptions> & { processors?: Processor[]; allowPrivate?: boolean; keyPrefix?: string } = {},
) {
  const target = { host: '127.0.0.1', port, db: 0, password: '' };
  const command = createRedis(target, 'command', 'test-job');
  await command.connect();
  const keys = queueKeys({ keyPrefix: overrides.keyPrefix ?? uniquePrefix() });
  const queue = new TaskQueue(command, keys, { retentionSeconds: 3600, idempotencyTtlSeconds: 600 });
  const dispatcher: Agent = createGuardedAgent({ allowPrivate: overrides.allowPrivate ?? true });
  const { processors, allowPrivate: _ignored, keyPrefix: _prefix, ...rest } = overrides;
  const runner = new JobRunner({
    queue,
    blockingConnection: (name) => createRedis(target, 'blocking', `test-${name}`),
    registry: new ProcessorRegistry(processors ?? [echoProcessor]),
    consumers: 2,
    concurrency: 4,
    visibilityMs: 5000,
    shutdownTimeoutMs: 2000,
    reaperIntervalMs: 200,
    taskPolicy: { maxAttempts: 3, baseMs: 20, maxMs: 100 },
    webhook: { secret: WEBHOOK_SECRET, timeoutMs: 2000, policy: { maxAttempts: 3, baseMs: 20, maxMs: 100 }, concurrency: 4, dispatcher },
    log: silentLogger,
    ...rest,
  });
  return {
    runner,
    queue,
    keys,
    redis: command,
    async close() {
      await runner.stop();
      await dispatcher.close();
      command.disconnect();
    },
  };
}
