// The package as users get it: `npm pack`, installed into an empty folder from the tarball
// (production dependencies only, no install scripts), `npx pushline --help` / `--version`
// runs, and `pushline/client` imported from a plain ESM file connects to a real comet.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signConnectionToken } from '../../src/auth/token.ts';
import { startComet, type CometHandle } from '../../src/comet/main.ts';
import { parseEnv } from '../../src/config/load.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { silentLogger } from '../../src/util/log.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SECRET = 'package-test-secret-0123456789';
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const execFileAsync = promisify(execFile);
const shared = useTestRedis();

describe('npm pack → npm install → run', () => {
  let dir: string;
  let files: string[];
  let comet: CometHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushline-pack-'));
    // dist/ is fresh (the global setup builds it), so the prepack build is skipped here.
    const [packed] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT)) as { filename: string; files: { path: string }[] }[];
    files = packed!.files.map((f) => f.path);
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app', private: true, type: 'module' }));
    npm(['install', join(dir, packed!.filename), '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], app);
    const grpcPort = await freePort();
    const env = parseEnv({
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(), AUTH_SECRET: SECRET, COMET_GRPC_TOKEN: 'pack-grpc-token-0123456789',
      COMET_HOST: '127.0.0.1', COMET_WS_PORT: '0', COMET_GRPC_PORT: String(grpcPort), COMET_ID: `127.0.0.1:${grpcPort}`, LOG_LEVEL: 'silent',
    });
    if (!env.ok) throw new Error(env.errors.join('\n'));
    comet = await startComet(env.env, silentLogger);
  }, 300_000);

  afterAll(async () => {
    await comet?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const app = () => join(dir, 'app');

  it('ships what runs: compiled code with types, proto files, the CLI; no sources, tests or build tools', () => {
    expect(files).toEqual(expect.arrayContaining(['bin/pushline.js', 'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/cli/main.js', 'dist/queue/lua/claim.lua', 'dist/logic/web/public/demo.html', 'proto/comet.proto', 'package.json']));
    expect(files.filter((f) => /^(src|test|bench|tools)\/|\.ts$(?<!\.d\.ts)|tsconfig/.test(f))).toEqual([]);
  });

  it('installs production dependencies only', () => {
    for (const dev of ['typescript', 'tsx', 'vitest', 'esbuild']) expect(existsSync(join(app(), 'node_modules', dev)), dev).toBe(false);
  });

  it('npx pushline --help and --version run from the installed package', () => {
    const help = spawnSync('npx', ['--no-install', 'pushline', '--help'], { cwd: app(), encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: pushline');
    const version = spawnSync('npx', ['--no-install', 'pushline', '--version'], { cwd: app(), encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(VERSION);
  });

  it('pushline/client, imported from a plain ESM file, connects to a comet; it pulls in no server code', async () => {
    const { token } = await signConnectionToken({ userId: 'packed', roomId: 'lobby' }, SECRET, 60);
    writeFileSync(
      join(app(), 'client.mjs'),
      `import WebSocket from 'ws';
import { PushlineClient } from 'pushline/client';
const client = new PushlineClient({
  WebSocket,
  connection: async () => ({ url: ${JSON.stringify(`ws://127.0.0.1:${comet.wsPort}`)}, token: ${JSON.stringify(token)} }),
  onMessage: () => {},
  onState: (state) => {
    if (state === 'open') { console.log(JSON.stringify({ state, connId: client.connId })); client.close(); process.exit(0); }
  },
});
client.connect();
`,
    );
    // Asynchronously: the comet runs in this process and must answer while the client connects.
    const run = await execFileAsync(process.execPath, ['client.mjs'], { cwd: app(), encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(run.stdout.trim())).toMatchObject({ state: 'open', connId: expect.any(String) });
    // The client module imports nothing: no fastify, ioredis or grpc behind `pushline/client`.
    const source = readFileSync(join(app(), 'node_modules/pushline/dist/client/index.js'), 'utf8');
    expect(source).not.toMatch(/^import /m);
  });
});
