// The push API (DESIGN §4): /logic/send (the seed's room message body), /logic/push (to users),
// /logic/broadcast (everyone) enqueue `push` tasks with their priority; /logic/token signs a
// connection token and names the least-loaded live comet.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { signConnectionToken } from '../../auth/token.ts';
import type { RoutingRegistry } from '../../routing/registry.ts';
import type { RoutingKeys } from '../../routing/keys.ts';
import type { TaskQueue } from '../../queue/task-queue.ts';
import type { QueueBackend } from '../../queue/backend.ts';
import { BackendUnsupportedError } from '../../queue/backend.ts';
import { NotReplicatedError } from '../../queue/replication-wait.ts';
import { broadcastTarget, chatMessage, encodePushPayload, pushPayload, roomTarget, stampedMessage, usersTarget, type PushPayload } from '../../contract/push-message.ts';
import { ApiError } from '../errors.ts';
import { acceptedSerializerCompiler, clientMessage, displayName, identifier, prioritySchema } from '../schemas.ts';

export interface PushRoutesOptions {
  /** Where push tasks go: the Redis engine or the configured QueueBackend. */
  queue: Pick<TaskQueue | QueueBackend, 'enqueueOne'>;
  registry: RoutingRegistry;
  keys: RoutingKeys;
  defaultPriority: number;
  /** null when AUTH_SECRET is not configured: /logic/token then says so. */
  authSecret: string | null;
  tokenTtlSeconds: number;
  cometAliveMs: number;
}

const MAX_CONTENT = 4000;
const MAX_MESSAGES = 100;
const MAX_USER_IDS = 1000;

const sendBody = z.strictObject({
  roomId: identifier('roomId'),
  userId: identifier('userId'),
  userName: displayName('userName').optional(),
  messages: z
    .array(
      z
        .object(
          {
            content: z
              .string({ error: (issue) => (issue.input === undefined ? 'messages[].content is required' : 'messages[].content must be a string') })
              .min(1, { error: 'messages[].content must not be empty' })
              .max(MAX_CONTENT, { error: `messages[].content must be at most ${MAX_CONTENT} characters` }),
          },
          { error: 'messages[] must be JSON objects with a content string' },
        )
        .passthrough(),
      { error: (issue) => (issue.input === undefined ? 'messages is required' : 'messages must be an array') },
    )
    .min(1, { error: 'messages must hold at least one message' })
    .max(MAX_MESSAGES, { error: `messages may hold at most ${MAX_MESSAGES} messages` }),
  priority: prioritySchema,
});
const pushBody = z.strictObject({
  userIds: z
    .array(identifier('userIds[]'), { error: (issue) => (issue.input === undefined ? 'userIds is required' : 'userIds must be an array') })
    .min(1, { error: 'userIds must list at least one user' })
    .max(MAX_USER_IDS, { error: `userIds may list at most ${MAX_USER_IDS} users` }),
  message: clientMessage('message'),
  priority: prioritySchema,
});
const broadcastBody = z.strictObject({ message: clientMessage('message'), priority: prioritySchema });
const tokenBody = z.strictObject({ userId: identifier('userId'), roomId: identifier('roomId'), userName: displayName('userName').optional() });
const accepted = z.object({ task_id: z.string(), status: z.string(), priority: z.number() });

export const pushRoutes: FastifyPluginAsyncZod<PushRoutesOptions> = async (app, options) => {
  async function enqueue(payload: PushPayload, p: number | undefined, requestId: string, fields: Record<string, string> = {}) {
    const prio = p ?? options.defaultPriority;
    try {
      const result = await options.queue.enqueueOne({
        type: 'push',
        priority: prio,
        payload: encodePushPayload(payload),
        fields: { request_id: requestId, ...fields },
        // Room messages get their per-room seq in the same atomic step as their id.
        ...(payload.mode === 'room' ? { sequenceKey: options.keys.roomSeq(payload.roomId!) } : {}),
      });
      return { task_id: result.id, status: 'queued', priority: prio };
    } catch (err) {
      if (err instanceof BackendUnsupportedError) throw err;
      if (err instanceof NotReplicatedError) {
        throw new ApiError('not_replicated', `the message was written but not confirmed by replicas (${err.message}); it may be delivered: retry only if a duplicate is acceptable`);
      }
      throw new ApiError('queue_unavailable', `could not write the message to Redis (${(err as Error).message}); it may not be queued`);
    }
  }

  app.post('/logic/send', { onRequest: app.apiAuth, serializerCompiler: acceptedSerializerCompiler, schema: { body: sendBody, response: { 202: accepted } } }, async (req, reply) => {
    const b = req.body;
    const payload = pushPayload(roomTarget(b.roomId), chatMessage(b));
    // No room_id / user_id fields: the payload holds both (GET /tasks/:id reads them from there).
    return reply.code(202).send(await enqueue(payload, b.priority, req.id));
  });

  app.post('/logic/push', { onRequest: app.apiAuth, serializerCompiler: acceptedSerializerCompiler, schema: { body: pushBody, response: { 202: accepted } } }, async (req, reply) => {
    const payload = pushPayload(usersTarget(req.body.userIds), stampedMessage(req.body.message));
    return reply.code(202).send(await enqueue(payload, req.body.priority, req.id));
  });

  app.post('/logic/broadcast', { onRequest: app.apiAuth, serializerCompiler: acceptedSerializerCompiler, schema: { body: broadcastBody, response: { 202: accepted } } }, async (req, reply) => {
    const payload = pushPayload(broadcastTarget(), stampedMessage(req.body.message));
    return reply.code(202).send(await enqueue(payload, req.body.priority, req.id));
  });

  app.post('/logic/token', { onRequest: app.apiAuth, schema: { body: tokenBody } }, async (req) => {
    if (!options.authSecret) throw new ApiError('service_unavailable', 'AUTH_SECRET is not configured on logic, so it cannot sign connection tokens');
    let comets;
    try {
      comets = await options.registry.liveComets(options.cometAliveMs);
    } catch (err) {
      throw new ApiError('queue_unavailable', `could not read comet nodes from Redis (${(err as Error).message})`);
    }
    const comet = comets.find((c) => c.wsUrl);
    if (!comet) throw new ApiError('service_unavailable', 'no comet node is alive to connect to');
    const { token, expiresAt } = await signConnectionToken(
      { userId: req.body.userId, roomId: req.body.roomId, ...(req.body.userName ? { userName: req.body.userName } : {}) },
      options.authSecret,
      options.tokenTtlSeconds,
    );
    return { token, expiresAt: expiresAt.toISOString(), comet: comet.wsUrl };
  });
};
