// Config validation: defaults, one clear line per bad value, exit code 2 from the real CLI.
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { apiCredentials, ConfigError, parseEnv, webhookSecret } from '../../src/config/load.ts';
import { describeTarget, redisTarget } from '../../src/redis/connect.ts';
import { spawnPushline } from '../helpers/processes.ts';

describe('parseEnv', () => {
  it('refuses Redis settings that do not work together, naming both', () => {
    const both = parseEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_WAIT_REPLICAS: '1' });
    expect(both.ok).toBe(false);
    if (!both.ok) {
      expect(both.errors).toEqual([
        expect.stringMatching(/^REDIS_SENTINELS cannot be combined with REDIS_CLUSTER_NODES/),
        expect.stringMatching(/^REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES/),
      ]);
    }
    expect(parseEnv({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_WAIT_REPLICAS: '1' }).ok).toBe(true);
    expect(parseEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_QUEUE_SHARDS: '3' }).ok).toBe(true);
  });

  it('applies the defaults of the seed docs', () => {
    const parsed = parseEnv({});
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.env).toMatchObject({
      REDIS_HOST: 'localhost', REDIS_PORT: 6379, REDIS_DB: 0, REDIS_TASK_QUEUE: 'uvr_tasks',
      REDIS_RESULT_QUEUE: 'uvr_results', DEFAULT_PRIORITY: 3, JOB_CONSUMERS: 4, LOGIC_PORT: 8090,
    });
  });

  it('treats empty values as unset (REDIS_PASSWORD= in .env)', () => {
    const parsed = parseEnv({ REDIS_PASSWORD: '', REDIS_PORT: '' });
    expect(parsed.ok && parsed.env.REDIS_PORT).toBe(6379);
  });

  it('names every bad value on its own line and never echoes secrets', () => {
    const parsed = parseEnv({ REDIS_PORT: 'abc', DEFAULT_PRIORITY: '9', JOB_CONSUMERS: '0', WEBHOOK_ALLOW_PRIVATE: 'maybe', REDIS_URL: 'http://x' });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toHaveLength(5);
    expect(parsed.errors.find((e) => e.startsWith('REDIS_PORT'))).toContain('"abc"');
    expect(parsed.errors.find((e) => e.startsWith('DEFAULT_PRIORITY'))).toContain('at most 5');
    expect(parsed.errors.find((e) => e.startsWith('JOB_CONSUMERS'))).toContain('at least 1');
    expect(parsed.errors.find((e) => e.startsWith('WEBHOOK_ALLOW_PRIVATE'))).toContain('true or false');
  });

  it('reads the Sentinel and WAIT settings into one Redis target', () => {
    const parsed = parseEnv({ REDIS_SENTINELS: '127.0.0.1:26379,[::1]:26380', REDIS_SENTINEL_PASSWORD: 's3cret', REDIS_WAIT_REPLICAS: '1' });
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    expect(parsed.env).toMatchObject({ REDIS_SENTINEL_NAME: 'mymaster', REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 250 });
    const target = redisTarget(parsed.env);
    expect(target.sentinel).toEqual({ sentinels: [{ host: '127.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], name: 'mymaster', password: 's3cret' });
    expect(describeTarget(target)).not.toContain('s3cret');
    const bad = parseEnv({ REDIS_SENTINELS: 'sentinel1', REDIS_WAIT_REPLICAS: '-1' });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.errors.find((e) => e.startsWith('REDIS_SENTINELS'))).toContain('host:port');
    expect(bad.errors.find((e) => e.startsWith('REDIS_WAIT_REPLICAS'))).toContain('at least 0');
  });

  it('checks the queue backend settings and names what kafka needs', async () => {
    const bad = parseEnv({ QUEUE_BACKEND: 'rabbitmq', KAFKA_BOOTSTRAP_SERVERS: 'kafka 9092' });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.errors.find((e) => e.startsWith('QUEUE_BACKEND'))).toContain('must be redis, bullmq or kafka');
    expect(bad.errors.find((e) => e.startsWith('KAFKA_BOOTSTRAP_SERVERS'))).toContain('host:port');
    const kafka = parseEnv({ QUEUE_BACKEND: 'kafka' });
    if (!kafka.ok) throw new Error('unexpected');
    expect(kafka.env).toMatchObject({ KAFKA_TASK_TOPIC: 'my-topic', KAFKA_GROUP_ID: 'job-service-group' });
    const { kafkaSettings } = await import('../../src/queue/backends/index.ts');
    expect(() => kafkaSettings(kafka.env)).toThrow(/KAFKA_BOOTSTRAP_SERVERS is required/);
  });

  it('requires API credentials and a webhook secret outside dev mode', () => {
    const prod = parseEnv({});
    const dev = parseEnv({ PUSHLINE_DEV: 'true' });
    if (!prod.ok || !dev.ok) throw new Error('unexpected');
    expect(() => apiCredentials(prod.env)).toThrow(ConfigError);
    expect(() => webhookSecret(prod.env)).toThrow(/WEBHOOK_SECRET/);
    expect(apiCredentials(dev.env)).toEqual({ username: 'admin', password: 'password', fromDevDefaults: true });
  });
});

describe('the CLI with bad config', () => {
  it('exits 2 with one line per bad value', async () => {
    const proc = spawnPushline(['job'], { REDIS_PORT: '99999', JOB_CONCURRENCY: 'lots', PUSHLINE_DEV: 'true' });
    expect(await proc.exited).toBe(2);
    const lines = proc.output().trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^pushline: config error: REDIS_PORT must be at most 65535 \(got "99999"\)$/),
      expect.stringMatching(/^pushline: config error: JOB_CONCURRENCY must be a whole number/),
    ]);
  });

  it('job and comet without a reachable Redis exit 1 with one line naming the cause, no stack trace', async () => {
    const port = String(await freePort());
    for (const args of [['job'], ['comet', '--ws-port', '0', '--grpc-port', '0']]) {
      const proc = spawnPushline(args, { PUSHLINE_DEV: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: port, JOB_METRICS_PORT: '0' });
      expect(await proc.exited).toBe(1);
      expect(proc.output()).toContain(`pushline ${args[0]}: could not start: cannot connect to Redis: connect ECONNREFUSED 127.0.0.1:${port}`);
      expect(proc.output()).not.toMatch(/^\s+at /m);
    }
  });

  it('logic without credentials outside dev mode exits 2 naming them', async () => {
    const proc = spawnPushline(['logic', '--port', '0'], {});
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain('API_USERNAME is required');
    expect(proc.output()).toContain('API_PASSWORD is required');
  });
});
