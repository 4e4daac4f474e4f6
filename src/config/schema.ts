// One zod schema over every environment variable pushline reads (DESIGN §7). Parsed once at
// start-up by each process's composition root and passed down; nothing reads process.env later.
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { parseCommandTemplate } from '../audio/external-command.ts';
import { MAX_TIMEOUT_MS, parseTypeTimeouts } from '../job/timeouts.ts';

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, { message: `must be a whole number between ${min} and ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''].includes(v), {
    message: 'must be true or false',
  })
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const keyName = z
  .string()
  .trim()
  .min(1, { message: 'must not be empty' })
  .regex(/^[A-Za-z0-9_:.\-{}]+$/, { message: 'may only contain letters, digits and _ : . - { }' });

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** `host:port,host:port` (REDIS_SENTINELS, REDIS_CLUSTER_NODES), read by redis/connect.ts parseHostPorts. */
const hostPortList = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_.\-\[\]:]+:\d+(,[A-Za-z0-9_.\-\[\]:]+:\d+)*$/, { message: 'must be host:port[,host:port…]' })
  .optional();

export const envSchema = z.object({
  PUSHLINE_DEV: bool.default(false),
  LOG_LEVEL: logLevel.default('info'),
  LOG_PRETTY: bool.default(false),
  /** Colours in pretty logs: only on a terminal, never with NO_COLOR (no-color.org), always with FORCE_COLOR≠0. */
  NO_COLOR: z.string().optional(),
  FORCE_COLOR: z.string().optional(),
  /** Data folder of the local stack (`pushline start`, start_local.sh); its `env` file says where the stack's Redis is. */
  PUSHLINE_STATE_DIR: z.string().trim().min(1).default('.pushline'),

  REDIS_URL: z
    .string()
    .trim()
    .regex(/^rediss?:\/\//, { message: 'must start with redis:// or rediss://' })
    .optional(),
  REDIS_HOST: z.string().trim().min(1).default('localhost'),
  REDIS_PORT: int(1, 65535).default(6379),
  REDIS_DB: int(0, 15).default(0),
  REDIS_PASSWORD: z.string().default(''),
  /** Redis Sentinel (docs/durability.md): sentinels host:port,…; set, the master is asked from them and followed across failovers. */
  REDIS_SENTINELS: hostPortList,
  REDIS_SENTINEL_NAME: z.string().trim().min(1).default('mymaster'),
  REDIS_SENTINEL_PASSWORD: z.string().default(''),
  /** 202 only once WAIT confirms the enqueue on this many replicas (docs/durability.md); 0 answers at once. */
  REDIS_WAIT_REPLICAS: int(0, 64).default(0),
  REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(250),
  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_:.\-{}]*$/, { message: 'may only contain letters, digits and _ : . - { }' })
    .default(''),
  /** Redis Cluster seed nodes, host:port,… (docs/scaling.md): set, every key of a queue or room is hash-tagged. */
  REDIS_CLUSTER_NODES: hostPortList,
  /** Complete queue key sets the tasks spread over, each in its own slot (docs/scaling.md); 1 keeps the plain names. */
  REDIS_QUEUE_SHARDS: int(1, 256).default(1),
  REDIS_TASK_QUEUE: keyName.default('uvr_tasks'),
  REDIS_RESULT_QUEUE: keyName.default('uvr_results'),
  DEFAULT_PRIORITY: int(1, 5).default(3),

  LOGIC_HOST: z.string().trim().min(1).default('0.0.0.0'),
  LOGIC_PORT: int(0, 65535).default(8090),
  API_USERNAME: z.string().optional(),
  API_PASSWORD: z.string().optional(),
  BODY_LIMIT_BYTES: int(1024, 100 * 1024 * 1024).default(1024 * 1024),
  /** A request's headers and body must arrive within this, or logic answers 408 (slow-body clients hold sockets). */
  HTTP_REQUEST_TIMEOUT_MS: int(1000, 300_000).default(30_000),
  /** JSON bodies nested deeper than this are refused with 400 before parsing. */
  JSON_MAX_DEPTH: int(2, 1000).default(64),
  IDEMPOTENCY_TTL_SECONDS: int(1, 30 * 86400).default(86400),
  /** The most tasks one POST /generate/batch may carry (all go to Redis in one script call per shard). */
  BATCH_MAX: int(1, 10_000).default(1000),

  JOB_CONSUMERS: int(1, 256).default(4),
  JOB_CONCURRENCY: int(1, 10_000).default(16),
  JOB_SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  /** Your own task types: comma-separated ES module paths (relative to the working directory) or package names; see docs/processors.md. Read by job and logic. */
  JOB_PROCESSORS: z.string().trim().optional(),
  TASK_VISIBILITY_TIMEOUT_MS: int(500, 86_400_000).default(30_000),
  TASK_MAX_ATTEMPTS: int(1, 1000).default(3),
  TASK_BACKOFF_MS: int(0, 86_400_000).default(1000),
  TASK_BACKOFF_MAX_MS: int(0, 86_400_000).default(300_000),
  TASK_RETENTION_SECONDS: int(0, 365 * 86400).default(7 * 86400),
  /**
   * How long the hash of a delivered (completed) `push` message is kept: its delivery record is
   * the room history, and at thousands a second a week of hashes is gigabytes. 0 = deleted at
   * delivery (unlike TASK_RETENTION_SECONDS, where 0 keeps forever). Failed / dead pushes keep
   * TASK_RETENTION_SECONDS.
   */
  PUSH_RETENTION_SECONDS: int(0, 365 * 86400).default(300),
  REAPER_INTERVAL_MS: int(100, 3_600_000).default(5000),
  /** A run longer than this is aborted and counts as a failure (retried or dead-lettered); 0 = no timeout. A task's own timeout_ms wins. */
  TASK_TIMEOUT_MS: int(0, MAX_TIMEOUT_MS).default(0),
  /** Per-type timeouts over TASK_TIMEOUT_MS: `type=ms,type=ms` (audio=600000,push=10000); 0 = none for that type. */
  TASK_TIMEOUTS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      const parsed = parseTypeTimeouts(text);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }),
  /** GET /metrics of the job (logic and comet serve it on their own HTTP ports). Unset: 9464, or a free port when taken; 0: a free port. */
  JOB_METRICS_PORT: int(0, 65535).optional(),
  JOB_METRICS_HOST: z.string().trim().min(1).default('0.0.0.0'),

  AUTH_SECRET: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  TOKEN_TTL_SECONDS: int(10, 30 * 86400).default(3600),

  COMET_HOST: z.string().trim().min(1).default('0.0.0.0'),
  COMET_WS_PORT: int(0, 65535).default(8082),
  COMET_GRPC_PORT: int(0, 65535).default(50051),
  /** The gRPC address job dials, stored as comet_id in routing keys; default localhost:<grpc port>. */
  COMET_ID: z.string().trim().regex(/^[A-Za-z0-9_.\-\[\]]+:\d+$/, { message: 'must be host:port (the gRPC address job dials)' }).optional(),
  /** The address clients use to reach this comet (handed out by /logic/token); default ws://localhost:<ws port>. */
  COMET_PUBLIC_URL: z.string().trim().regex(/^wss?:\/\//, { message: 'must start with ws:// or wss://' }).optional(),
  /** Shared by every comet and job: comets refuse gRPC calls without `authorization: Bearer <token>`. */
  COMET_GRPC_TOKEN: z
    .string()
    .min(16, { message: 'must be at least 16 characters' })
    .regex(/^[\x21-\x7e]+$/, { message: 'may only contain printable ASCII without spaces (it travels in a header)' })
    .optional(),
  /** PEM files: a comet serves gRPC over TLS with CERT+KEY (and, with CA, requires client certificates);
   * job dials comets over TLS when any is set, trusting CA and presenting CERT+KEY. */
  COMET_GRPC_TLS_CERT: z.string().trim().min(1).optional(),
  COMET_GRPC_TLS_KEY: z.string().trim().min(1).optional(),
  COMET_GRPC_TLS_CA: z.string().trim().min(1).optional(),
  /** Largest gRPC request a comet accepts (and the size job keeps its batched calls under). */
  COMET_GRPC_MAX_MESSAGE_BYTES: int(64 * 1024, 64 * 1024 * 1024).default(4 * 1024 * 1024),
  COMET_HEARTBEAT_MS: int(100, 60_000).default(5000),
  COMET_DEAD_AFTER_MS: int(500, 600_000).default(15_000),
  COMET_BATCH_MS: int(0, 1000).default(2),
  COMET_MAX_BUFFER_BYTES: int(1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /** Room batches, history answers and offline messages are split into frames of at most this many bytes (one larger message still goes out alone). */
  COMET_MAX_FRAME_BYTES: int(1024, 64 * 1024 * 1024).default(256 * 1024),
  /** A socket is a slow consumer once its send buffer has stayed above COMET_MAX_BUFFER_BYTES this long. */
  COMET_SLOW_CONSUMER_MS: int(100, 600_000).default(5000),
  WS_MAX_FRAME_BYTES: int(128, 16 * 1024 * 1024).default(64 * 1024),
  USER_ONLINE_TTL_SECONDS: int(10, 86_400).default(300),
  /** A client's heartbeats refresh its user:online TTL at most once per this many ms. */
  WS_HEARTBEAT_REFRESH_MS: int(100, 3_600_000).default(5000),
  /** Heartbeats faster than the refresh interval: this many per second (burst WS_HEARTBEAT_BURST), then rate_limited and a 4029 close. */
  WS_HEARTBEAT_RATE_PER_SEC: int(1, 10_000).default(2),
  WS_HEARTBEAT_BURST: int(1, 10_000).default(10),
  PUSH_RPC_TIMEOUT_MS: int(50, 60_000).default(3000),
  ROOM_HISTORY_MAX: int(0, 1_000_000).default(1000),
  ROOM_HISTORY_TTL_SECONDS: int(60, 365 * 86400).default(86400),
  OFFLINE_MAX: int(0, 100_000).default(100),
  OFFLINE_TTL_SECONDS: int(60, 365 * 86400).default(7 * 86400),
  UPSTREAM_RATE_PER_SEC: int(1, 10_000).default(5),
  UPSTREAM_BURST: int(1, 10_000).default(10),

  WEBHOOK_SECRET: z.string().optional(),
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),
  WEBHOOK_TIMEOUT_MS: int(100, 300_000).default(10_000),
  WEBHOOK_MAX_ATTEMPTS: int(1, 1000).default(8),
  WEBHOOK_BACKOFF_MS: int(0, 86_400_000).default(1000),
  WEBHOOK_BACKOFF_MAX_MS: int(0, 86_400_000).default(600_000),
  WEBHOOK_CONCURRENCY: int(1, 10_000).default(32),

  // Audio tasks (docs/audio.md). Logic reads AUDIO_WORK_DIR too: it serves the output files.
  AUDIO_WORK_DIR: z.string().trim().min(1).default(join(tmpdir(), 'pushline-audio')).transform((dir) => resolve(dir)),
  AUDIO_MAX_BYTES: int(1, 10 * 1024 ** 3).default(100 * 1024 * 1024),
  AUDIO_DOWNLOAD_TIMEOUT_MS: int(100, 3_600_000).default(120_000),
  AUDIO_MAX_REDIRECTS: int(0, 10).default(3),
  /** Downloads from private/loopback addresses; separate from WEBHOOK_ALLOW_PRIVATE on purpose. */
  AUDIO_ALLOW_PRIVATE: bool.default(false),
  AUDIO_PROCESSOR_CMD: z
    .string()
    .superRefine((text, ctx) => {
      try {
        parseCommandTemplate(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .optional(),
  AUDIO_PROCESSOR_TIMEOUT_MS: int(100, 86_400_000).default(600_000),
  AUDIO_CONCURRENCY: int(1, 256).default(2),

  // Queue backends (docs/backends.md): the Redis engine, BullMQ, or the old Kafka topic.
  QUEUE_BACKEND: z.enum(['redis', 'bullmq', 'kafka'], { message: 'must be redis, bullmq or kafka' }).default('redis'),
  KAFKA_BOOTSTRAP_SERVERS: z
    .string()
    .trim()
    .regex(/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/, { message: 'must be host:port[,host:port...]' })
    .optional(),
  KAFKA_TASK_TOPIC: z.string().trim().min(1).default('my-topic'),
  KAFKA_GROUP_ID: z.string().trim().min(1).default('job-service-group'),
  KAFKA_CLIENT_ID: z.string().trim().min(1).default('pushline'),
});

export type Env = z.infer<typeof envSchema>;

/** Credentials used only when PUSHLINE_DEV=true and none are configured. */
export const DEV_API_USERNAME = 'admin';
export const DEV_API_PASSWORD = 'password';
export const DEV_WEBHOOK_SECRET = 'pushline-dev-webhook-secret';
export const DEV_AUTH_SECRET = 'pushline-dev-auth-secret-not-for-production';
export const DEV_COMET_GRPC_TOKEN = 'pushline-dev-grpc-token-not-for-production';
