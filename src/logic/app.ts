// buildLogicApp(deps) returns the fastify instance without listening, so tests drive it with
// inject() and main.ts decides where it listens (fastify's build-vs-start split).
import { randomBytes } from 'node:crypto';
import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { TaskQueue } from '../queue/task-queue.ts';
import { BackendUnsupportedError, type QueueBackend } from '../queue/backend.ts';
import { registerBasicAuth } from './auth.ts';
import { ApiError, codeForStatus, rawErrorResponse, type ApiErrorCode, type FieldError } from './errors.ts';
import { exceedsJsonDepth } from './json-depth.ts';
import { healthRoutes } from './routes/health.ts';
import { taskRoutes } from './routes/tasks.ts';
import { batchRoutes } from './routes/batch.ts';
import { taskSearchRoutes } from './routes/task-search.ts';
import { groupRoutes } from './routes/groups.ts';
import { scheduleRoutes } from './routes/schedules.ts';
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
  /** HTTP_REQUEST_TIMEOUT_MS: a request's headers and body must arrive within this (408 otherwise). */
  requestTimeoutMs?: number;
  /** JSON_MAX_DEPTH: JSON bodies nested deeper are refused before parsing (400 json_too_deep). */
  jsonMaxDepth?: number;
  /** BATCH_MAX: the most tasks one POST /generate/batch may carry. */
  batchMax?: number;
}

/** Defaults for callers that build the app without config (tests); the env defaults live in src/config/schema.ts. */
const FALLBACK_REQUEST_TIMEOUT_MS = 30_000;
const FALLBACK_JSON_MAX_DEPTH = 64;
const FALLBACK_BATCH_MAX = 1000;

/** The most characters of a refused request's path and message that its log line keeps. */
const LOGGED_TEXT_MAX = 500;

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

/**
 * Node's HTTP parser and its timers fail some requests before fastify sees them (a body or
 * headers that never finish, headers over --max-http-header-size, a malformed request line):
 * the answer is written straight to the socket, with a body from the catalogue.
 */
function clientErrorHandler(requestTimeoutMs: number) {
  return function onClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [code, message]: [ApiErrorCode, string] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['request_timeout', `the request's headers and body did not arrive within ${requestTimeoutMs} ms (HTTP_REQUEST_TIMEOUT_MS)`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? ['headers_too_large', `the request line and headers are larger than ${maxHeaderSize} bytes`]
          : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? ['payload_too_large', 'chunk extensions are too large']
            : ['bad_request', `malformed HTTP request (${err.code ?? err.message})`];
    this.log.debug({ err: String(err), code }, 'client error');
    // As Node itself does: answer only when no response has started on this socket.
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !current?.headersSent) socket.write(rawErrorResponse(code, message));
    socket.destroy();
  };
}

/**
 * fastify's two lines per request (arrived, completed) at debug instead of info: they were about a
 * third of logic's CPU per request (docs/observability.md). At info, refusals and failures get one line each
 * (sendApiError); an accepted request's trail starts at the job's lines, which carry its reqId.
 */
class RequestLinesAtDebug extends LogController {
  /** LOG_LEVEL is fixed for the process's life: the check is made once. */
  constructor(private readonly debug: boolean) {
    super();
  }

  override incomingRequest(request: FastifyRequest): void {
    if (this.debug) request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, _request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else if (this.debug) reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * Every error answer logic writes: the catalogue body with its status, and one log line per
 * request logic does not accept — refusals (4xx) at info, failures (5xx) at warn — with the request
 * id, the path (never the query string) and the code, so an operator finds why a caller's request
 * failed without logging every accepted one.
 */
function sendApiError(request: FastifyRequest, reply: FastifyReply, e: ApiError): FastifyReply {
  const line = { method: request.method, url: request.url.split('?')[0]!.slice(0, LOGGED_TEXT_MAX), status: e.status, code: e.code };
  // The caller gets the whole message; the log keeps its start (a body of 10,000 unknown keys would
  // otherwise make one line per request as long as the body).
  const message = e.message.length > LOGGED_TEXT_MAX ? `${e.message.slice(0, LOGGED_TEXT_MAX)}…` : e.message;
  if (e.status >= 500) request.log.warn(line, message);
  else request.log.info(line, message);
  return reply.code(e.status).send(e.body());
}

export async function buildLogicApp(deps: LogicDeps): Promise<FastifyInstance> {
  const nextRequestId = requestIds();
  const requestTimeoutMs = deps.requestTimeoutMs ?? FALLBACK_REQUEST_TIMEOUT_MS;
  const jsonMaxDepth = deps.jsonMaxDepth ?? FALLBACK_JSON_MAX_DEPTH;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    // Slow bodies and headers: Node answers 408 through clientError. Its timers are checked every
    // connectionsCheckingInterval (30 s by default), so that follows the timeout down.
    requestTimeout: requestTimeoutMs,
    http: { headersTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.min(5_000, Math.max(50, Math.floor(requestTimeoutMs / 4))) },
    clientErrorHandler: clientErrorHandler(requestTimeoutMs),
    // Errors fastify's router raises before any route: bodies from the catalogue too.
    frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const e = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new ApiError('uri_too_long', 'a path segment of the URL is too long') : new ApiError('bad_request', `the URL cannot be decoded: ${err.message}`);
      return sendApiError(request, reply, e);
    },
    logController: new RequestLinesAtDebug(deps.log.isLevelEnabled('debug')),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : nextRequestId();
    },
  });
  // The API speaks JSON only: other bodies get a clear 415 instead of a confusing 400.
  app.removeContentTypeParser('text/plain');
  // fastify's own JSON parser (prototype-poisoning checks included), after a depth check: a body
  // nested thousands of levels deep would overflow the stack of whatever walks it later.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (exceedsJsonDepth(body as string, jsonMaxDepth)) {
      return done(new ApiError('json_too_deep', `the body nests objects and arrays more than ${jsonMaxDepth} levels deep (JSON_MAX_DEPTH)`), undefined);
    }
    return parseJson(request, body as string, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Callback style: an async hook costs a promise per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });

  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    const send = (e: ApiError) => sendApiError(request, reply, e);
    if (err instanceof ApiError) return send(err);
    if (err instanceof BackendUnsupportedError) return send(new ApiError('not_supported', err.message));
    if (hasZodFastifySchemaValidationErrors(err)) {
      const fields = fieldErrors(err.validation as never, err.validationContext ?? 'body');
      const message = fields.map((f) => (f.message.startsWith(f.field) ? f.message : `${f.field}: ${f.message}`)).join('; ');
      return send(new ApiError('validation_failed', message, fields));
    }
    const status = err.statusCode ?? 500;
    if (status === 413) return send(new ApiError('payload_too_large', `request body is larger than ${deps.bodyLimit} bytes (BODY_LIMIT_BYTES)`));
    if (status === 415) return send(new ApiError('unsupported_media_type', 'send the body as Content-Type: application/json'));
    if (status === 400 && (err.code?.startsWith('FST_ERR_CTP') || err instanceof SyntaxError)) {
      return send(new ApiError('invalid_json', `the body is not valid JSON: ${err.message}`, [{ field: 'body', message: err.message }]));
    }
    // @fastify/basic-auth: no Authorization header, or not `Basic <base64 user:password>`.
    if (status === 401) return send(new ApiError('unauthorized', 'API credentials are required: send Authorization: Basic base64(username:password)'));
    if (status >= 400 && status < 500) return send(new ApiError(codeForStatus(status), err.message));
    request.log.error({ err }, 'unhandled error');
    return send(new ApiError('internal', 'internal error; see the logic log for the request id', undefined, { request_id: request.id }));
  });

  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`);
    sendApiError(request, reply, e);
  });

  await registerApiDocs(app);
  registerLogicMetrics(app, deps.metrics ?? createRegistry('logic'), deps.queue, deps.redis);
  await registerBasicAuth(app, deps.credentials);
  await app.register(healthRoutes, { queue: deps.queue, redis: deps.redis, backend: deps.backend?.name ?? 'redis' });
  // On the Redis engine, requests of one event-loop turn share one enqueue script call
  // (TaskQueue.enqueueOne).
  const submit = deps.backend ?? deps.queue;
  const taskOptions = {
    queue: deps.queue,
    submit,
    backendName: deps.backend?.name ?? 'redis',
    defaultPriority: deps.defaultPriority,
    taskTypes: deps.taskTypes,
    keys: routingKeys(deps.queue.keys.prefix, deps.queue.keys.cluster),
  } as const;
  await app.register(taskRoutes, taskOptions);
  await app.register(batchRoutes, { ...taskOptions, batchMax: deps.batchMax ?? FALLBACK_BATCH_MAX });
  await app.register(taskSearchRoutes, { queue: deps.queue });
  await app.register(groupRoutes, { queue: deps.queue, backendName: deps.backend?.name ?? 'redis' });
  await app.register(scheduleRoutes, { queue: deps.queue, backendName: deps.backend?.name ?? 'redis', taskTypes: deps.taskTypes });
  if (deps.audioWorkDir) await app.register(fileRoutes, { queue: deps.queue, workDir: deps.audioWorkDir });
  const registry = new RoutingRegistry(deps.redis, routingKeys(deps.queue.keys.prefix, deps.queue.keys.cluster), 300);
  await app.register(webRoutes, {
    queue: deps.queue,
    registry,
    keys: routingKeys(deps.queue.keys.prefix, deps.queue.keys.cluster),
    devMode: deps.devMode ?? false,
    authSecret: deps.authSecret ?? null,
    cometAliveMs: deps.cometAliveMs ?? 15_000,
    backendName: deps.backend?.name ?? 'redis',
  });
  await app.register(pushRoutes, {
    queue: submit,
    registry,
    keys: routingKeys(deps.queue.keys.prefix, deps.queue.keys.cluster),
    defaultPriority: deps.defaultPriority,
    authSecret: deps.authSecret ?? null,
    tokenTtlSeconds: deps.tokenTtlSeconds ?? 3600,
    cometAliveMs: deps.cometAliveMs ?? 15_000,
  });
  return app;
}
