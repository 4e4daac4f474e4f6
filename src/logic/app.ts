// buildLogicApp(deps) returns the fastify instance without listening, so tests drive it with
// inject() and main.ts decides where it listens (fastify's build-vs-start split).
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { TaskQueue } from '../queue/task-queue.ts';
import { BackendUnsupportedError, type QueueBackend } from '../queue/backend.ts';
import { registerBasicAuth } from './auth.ts';
import { ApiError, type FieldError } from './errors.ts';
import { healthRoutes } from './routes/health.ts';
import { taskRoutes } from './routes/tasks.ts';
import { pushRoutes } from './routes/push.ts';
import { fileRoutes } from './routes/files.ts';
import { RoutingRegistry } from '../routing/registry.ts';
import { routingKeys } from '../routing/keys.ts';
import { createRegistry, type Registry } from '../metrics/registry.ts';
import { registerLogicMetrics } from './metrics.ts';
import { registerApiDocs } from './api-docs.ts';
import { webRoutes } from './web/routes.ts';

export interface LogicDeps {
  queue: TaskQueue;
  redis: Redis;
  credentials: { username: string; password: string };
  defaultPriority: number;
  bodyLimit: number;
  taskTypes: readonly string[];
  log: Logger;
  /** Signs connection tokens; null disables /logic/token with a clear 503. */
  authSecret?: string | null;
  tokenTtlSeconds?: number;
  cometAliveMs?: number;
  /** Where /metrics collects; a fresh registry when not given. */
  metrics?: Registry;
  /** AUDIO_WORK_DIR, shared with job: enables GET /tasks/:id/files/:name. */
  audioWorkDir?: string;
  /** Where tasks are submitted (QUEUE_BACKEND); the Redis engine (`queue`) when not given. */
  backend?: QueueBackend;
  /** PUSHLINE_DEV: the demo page may get tokens without API credentials. */
  devMode?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Request ids: 48 random bits per process plus a counter. Unique across processes, and no
 * crypto call per request (randomBytes per request was measurable at thousands of requests/s).
 */
function requestIds(): () => string {
  const prefix = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x');
  let counter = 0;
  return () => `${prefix}${(counter++).toString(36).padStart(4, '0')}`;
}

/** Names each bad field: `priority`, `hook_url`, or the unexpected key itself. */
function fieldErrors(validation: { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }[], context: string): FieldError[] {
  return validation.flatMap((issue) => {
    const path = issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (issue.keyword === 'unrecognized_keys' && Array.isArray(issue.params.keys)) {
      return (issue.params.keys as string[]).map((key) => ({
        field: path ? `${path}.${key}` : key,
        message: `${key} is not a known field`,
      }));
    }
    const field = path || context;
    const message = issue.message ?? 'is invalid';
    return [{ field, message: issue.keyword === 'invalid_type' && !path ? `${context} must be a JSON object` : message }];
  });
}

export async function buildLogicApp(deps: LogicDeps): Promise<FastifyInstance> {
  const nextRequestId = requestIds();
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : nextRequestId();
    },
  });
  // The API speaks JSON only: other bodies get a clear 415 instead of a confusing 400.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(err.body());
    if (err instanceof BackendUnsupportedError) return reply.code(501).send({ error: 'not_supported', message: err.message });
    if (hasZodFastifySchemaValidationErrors(err)) {
      const fields = fieldErrors(err.validation as never, err.validationContext ?? 'body');
      const message = fields.map((f) => (f.message.startsWith(f.field) ? f.message : `${f.field}: ${f.message}`)).join('; ');
      return reply.code(400).send({ error: 'validation_failed', message, fields });
    }
    const status = err.statusCode ?? 500;
    if (status === 413) {
      return reply.code(413).send({ error: 'payload_too_large', message: `request body is larger than ${deps.bodyLimit} bytes` });
    }
    if (status === 415) {
      return reply.code(415).send({ error: 'unsupported_media_type', message: 'send the body as Content-Type: application/json' });
    }
    if (status === 400 && (err.code?.startsWith('FST_ERR_CTP') || err instanceof SyntaxError)) {
      return reply.code(400).send({ error: 'invalid_json', message: `the body is not valid JSON: ${err.message}`, fields: [{ field: 'body', message: err.message }] });
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: 'validation_failed', message: err.message });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the logic log for the request id', request_id: request.id });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  await registerApiDocs(app);
  registerLogicMetrics(app, deps.metrics ?? createRegistry('logic'), deps.queue, deps.redis);
  await registerBasicAuth(app, deps.credentials);
  await app.register(healthRoutes, { queue: deps.queue, redis: deps.redis, backend: deps.backend?.name ?? 'redis' });
  const submit = deps.backend ?? deps.queue;
  await app.register(taskRoutes, {
    queue: deps.queue,
    submit,
    backendName: deps.backend?.name ?? 'redis',
    defaultPriority: deps.defaultPriority,
    taskTypes: deps.taskTypes,
    keys: routingKeys(deps.queue.keys.prefix),
  });
  if (deps.audioWorkDir) await app.register(fileRoutes, { queue: deps.queue, workDir: deps.audioWorkDir });
  const registry = new RoutingRegistry(deps.redis, routingKeys(deps.queue.keys.prefix), 300);
  await app.register(webRoutes, {
    queue: deps.queue,
    registry,
    keys: routingKeys(deps.queue.keys.prefix),
    devMode: deps.devMode ?? false,
    authSecret: deps.authSecret ?? null,
    cometAliveMs: deps.cometAliveMs ?? 15_000,
  });
  await app.register(pushRoutes, {
    queue: submit,
    registry,
    keys: routingKeys(deps.queue.keys.prefix),
    defaultPriority: deps.defaultPriority,
    authSecret: deps.authSecret ?? null,
    tokenTtlSeconds: deps.tokenTtlSeconds ?? 3600,
    cometAliveMs: deps.cometAliveMs ?? 15_000,
  });
  return app;
}
