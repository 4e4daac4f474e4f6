// The Docker files, checked without a Docker engine (none on this machine): docker-compose.yml
// parsed as compose reads it (YAML merge keys on), the Dockerfile's stages and user, the scripts'
// syntax; every env name compose sets must be one pushline reads.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema } from '../../src/config/schema.ts';

const root = new URL('../../', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), 'utf8');

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  volumes?: string[];
  ports?: string[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const { services } = compose;

describe('docker-compose.yml', () => {
  it('runs Redis with appendonly yes on a volume, with a health check', () => {
    expect(services.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(services.redis!.volumes).toContain('redis-data:/data');
    expect(services.redis!.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    // Published on loopback only, like Prometheus and Grafana: none of them asks for a password.
    for (const name of ['redis', 'prometheus', 'grafana']) expect(services[name]!.ports!.every((p) => p.startsWith('127.0.0.1:')), name).toBe(true);
  });

  it('runs logic, job and two comets from the image, each healthy-checked and started after a healthy Redis', () => {
    const core = ['logic', 'job', 'comet1', 'comet2'];
    for (const name of core) {
      const s = services[name]!;
      expect(s.build, name).toBe('.');
      expect(s.profiles, name).toBeUndefined();
      expect(s.healthcheck?.test[0], name).toBe('CMD');
      expect(s.depends_on?.redis?.condition, name).toBe('service_healthy');
      expect(s.environment?.REDIS_HOST, name).toBe('redis');
    }
    expect(services.logic!.command).toEqual(['logic', '--port', '8090']);
    expect(services.comet1!.command).toEqual(['comet', '--ws-port', '8082', '--grpc-port', '50051']);
    expect(services.comet2!.command).toEqual(['comet', '--ws-port', '8083', '--grpc-port', '50052']);
    // job dials each comet by its service name; browsers get a URL they can reach.
    expect([services.comet1!.environment!.COMET_ID, services.comet2!.environment!.COMET_ID]).toEqual(['comet1:50051', 'comet2:50052']);
    // logic serves the files job's audio tool writes: one shared volume.
    expect(services.logic!.volumes).toContain('audio:/data/audio');
    expect(services.job!.volumes).toContain('audio:/data/audio');
  });

  it('keeps Kafka and monitoring behind profiles, with the drain tool and a Prometheus config that scrapes every process', () => {
    expect(services.kafka!.profiles).toEqual(['kafka']);
    expect(services.drain!.profiles).toEqual(['kafka']);
    expect(services.drain!.command!.slice(0, 2)).toEqual(['migrate', 'kafka-to-redis']);
    expect(services.drain!.environment!.KAFKA_BOOTSTRAP_SERVERS).toBe('kafka:9092');
    expect(services.prometheus!.profiles).toEqual(['monitoring']);
    expect(services.grafana!.profiles).toEqual(['monitoring']);
    const prometheus = parse(read('deploy/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(['comet1:8082', 'comet2:8083', 'job:9464', 'logic:8090']);
    expect(services.job!.environment!.JOB_METRICS_PORT).toBe('9464');
  });

  it('keeps a replica and three sentinels behind the sentinel profile, watching `redis` as the master pushline is told to ask for', () => {
    for (const name of ['redis-replica', 'sentinel1', 'sentinel2', 'sentinel3']) expect(services[name]!.profiles, name).toEqual(['sentinel']);
    expect(services['redis-replica']!.command).toEqual(expect.arrayContaining(['--replicaof', 'redis', '6379', '--appendonly', 'yes']));
    const conf = read('deploy/sentinel.conf');
    expect(conf).toMatch(/^sentinel monitor mymaster redis 6379 2$/m);
    for (const name of ['sentinel1', 'sentinel2', 'sentinel3']) expect(services[name]!.command!.join(' '), name).toMatch(/redis-server \/data\/sentinel\.conf --sentinel/);
    for (const name of ['REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD', 'REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS']) {
      expect(services.logic!.environment![name], name).toBe(`\${${name}:-}`);
    }
  });

  it('sets only env names pushline reads, and no secret has a default', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of ['logic', 'job', 'comet1', 'comet2', 'drain']) {
      const unknown = Object.keys(services[name]!.environment ?? {}).filter((k) => !known.has(k));
      expect(unknown, name).toEqual([]);
    }
    const env = services.logic!.environment!;
    for (const secret of ['API_USERNAME', 'API_PASSWORD', 'WEBHOOK_SECRET', 'AUTH_SECRET']) {
      expect(env[secret], secret).toMatch(/^\$\{[A-Z_]+:\?/); // required, no fallback
    }
  });
});

describe('Dockerfile and scripts', () => {
  it('compiles in a build stage, ships dist/ with production dependencies only, and runs as a non-root user under an init', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(3);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/COPY --from=deps/);
    expect(dockerfile).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    // The runtime stage has no sources and no TypeScript tooling: it runs dist/.
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
    expect(runtime).not.toMatch(/COPY src|tsx|typescript/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "bin\/pushline.js"\]/);
    expect(read('.dockerignore')).toMatch(/^node_modules$/m);
  });

  it.each(['start.sh', 'start_local.sh', 'stop_local.sh'])('%s is valid bash', (script) => {
    const check = spawnSync('bash', ['-n', script], { cwd: new URL('.', root), encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});
