// Reads .env (when present) and the process environment, validates them with the schema and,
// on failure, stops the process with one line per bad value and exit code 2.
import { existsSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { readFileSync } from 'node:fs';
import { envSchema, type Env, DEV_API_PASSWORD, DEV_API_USERNAME, DEV_AUTH_SECRET, DEV_COMET_GRPC_TOKEN, DEV_WEBHOOK_SECRET } from './schema.ts';

export type ParseResult = { ok: true; env: Env } | { ok: false; errors: string[] };

/** Validate a raw environment. Empty values count as unset, so `REDIS_PASSWORD=` keeps the default. */
export function parseEnv(raw: Record<string, string | undefined>): ParseResult {
  const known = envSchema.keyof().options as readonly string[];
  const input: Record<string, string> = {};
  for (const name of known) {
    const value = raw[name];
    if (value !== undefined && value !== '') input[name] = value;
  }
  const result = envSchema.safeParse(input);
  if (result.success) {
    const conflicts = combinationProblems(result.data);
    return conflicts.length === 0 ? { ok: true, env: result.data } : { ok: false, errors: conflicts };
  }
  const errors = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'environment');
    const got = input[name];
    const shown = name.includes('PASSWORD') || name.includes('SECRET') || name.includes('TOKEN') ? '' : got === undefined ? '' : ` (got "${got}")`;
    return `${name} ${issue.message}${shown}`;
  });
  return { ok: false, errors };
}

/** Settings that are each valid but do not work together: one line each, naming both. */
function combinationProblems(env: Env): string[] {
  const problems: string[] = [];
  if (env.REDIS_CLUSTER_NODES && env.REDIS_SENTINELS) {
    problems.push('REDIS_SENTINELS cannot be combined with REDIS_CLUSTER_NODES: a Redis Cluster fails over by itself (set one of them)');
  }
  if (env.REDIS_CLUSTER_NODES && env.REDIS_WAIT_REPLICAS > 0) {
    problems.push('REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES yet: WAIT would have to go to the master of each shard (docs/durability.md)');
  }
  return problems;
}

/** The environment with `.env` from the working directory underneath it (real env wins). */
export function readEnvironment(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const path = `${cwd}/.env`;
  const fromFile = existsSync(path) ? parseDotenv(readFileSync(path)) : {};
  return { ...fromFile, ...env };
}

export class ConfigError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('\n'));
    this.name = 'ConfigError';
  }
}

export function loadEnv(raw: Record<string, string | undefined> = readEnvironment()): Env {
  const parsed = parseEnv(raw);
  if (!parsed.ok) throw new ConfigError(parsed.errors);
  return parsed.env;
}

/** Print config errors the way every process does and exit 2; anything else is rethrown. */
export function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    for (const line of err.errors) process.stderr.write(`pushline: config error: ${line}\n`);
    process.exit(2);
  }
  throw err;
}

export interface ApiCredentials {
  username: string;
  password: string;
  fromDevDefaults: boolean;
}

/** Logic needs credentials; only an explicit dev mode falls back to the documented admin/password. */
export function apiCredentials(env: Env): ApiCredentials {
  if (env.API_USERNAME && env.API_PASSWORD) {
    return { username: env.API_USERNAME, password: env.API_PASSWORD, fromDevDefaults: false };
  }
  if (env.PUSHLINE_DEV) {
    return { username: DEV_API_USERNAME, password: DEV_API_PASSWORD, fromDevDefaults: true };
  }
  const missing = [!env.API_USERNAME && 'API_USERNAME', !env.API_PASSWORD && 'API_PASSWORD'].filter(Boolean) as string[];
  throw new ConfigError(
    missing.map((name) => `${name} is required (or set PUSHLINE_DEV=true to use the dev credentials admin/password)`),
  );
}

export function webhookSecret(env: Env): string {
  if (env.WEBHOOK_SECRET) return env.WEBHOOK_SECRET;
  if (env.PUSHLINE_DEV) return DEV_WEBHOOK_SECRET;
  throw new ConfigError([
    'WEBHOOK_SECRET is required to sign webhooks (or set PUSHLINE_DEV=true to use a dev secret)',
  ]);
}

/** Signs and verifies connection tokens; logic and every comet must share it. */
export function authSecret(env: Env): string {
  if (env.AUTH_SECRET) return env.AUTH_SECRET;
  if (env.PUSHLINE_DEV) return DEV_AUTH_SECRET;
  throw new ConfigError(['AUTH_SECRET is required to sign connection tokens (or set PUSHLINE_DEV=true to use a dev secret)']);
}

/** The bearer token on every job → comet gRPC call; every comet and job must share it. */
export function cometGrpcToken(env: Env): string {
  if (env.COMET_GRPC_TOKEN) return env.COMET_GRPC_TOKEN;
  if (env.PUSHLINE_DEV) return DEV_COMET_GRPC_TOKEN;
  throw new ConfigError([
    'COMET_GRPC_TOKEN is required: comets refuse gRPC calls without it and job sends it (or set PUSHLINE_DEV=true to use a dev token)',
  ]);
}

/** PEM contents of the gRPC TLS files (read at start-up, so a wrong path is a config error). */
export interface GrpcTlsFiles {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** null: plaintext gRPC. A certificate needs its key and the other way round. */
export function cometGrpcTls(env: Env): GrpcTlsFiles | null {
  const names = { cert: 'COMET_GRPC_TLS_CERT', key: 'COMET_GRPC_TLS_KEY', ca: 'COMET_GRPC_TLS_CA' } as const;
  const paths = { cert: env.COMET_GRPC_TLS_CERT, key: env.COMET_GRPC_TLS_KEY, ca: env.COMET_GRPC_TLS_CA };
  if (!paths.cert && !paths.key && !paths.ca) return null;
  const errors: string[] = [];
  if (Boolean(paths.cert) !== Boolean(paths.key)) errors.push('COMET_GRPC_TLS_CERT and COMET_GRPC_TLS_KEY must be set together');
  const files: GrpcTlsFiles = {};
  for (const part of ['cert', 'key', 'ca'] as const) {
    const path = paths[part];
    if (!path) continue;
    try {
      files[part] = readFileSync(path);
    } catch (err) {
      errors.push(`${names[part]} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)} (${path})`);
    }
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return files;
}
