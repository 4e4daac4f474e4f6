// HTTP Basic auth for the API. Both halves are compared in constant time (over SHA-256
// digests, so lengths leak nothing either) and both are always compared.
import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { AcceptedCredentials } from '../util/accepted-credentials.ts';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's auth check for `onRequest`: Basic credentials, with accepted headers remembered. */
    apiAuth: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function credentialsMatch(given: { username: string; password: string }, expected: { username: string; password: string }): boolean {
  const userOk = timingSafeEqual(digest(given.username), digest(expected.username));
  const passOk = timingSafeEqual(digest(given.password), digest(expected.password));
  return userOk && passOk;
}

export async function registerBasicAuth(app: FastifyInstance, expected: { username: string; password: string }): Promise<void> {
  // Authorization header values that passed the constant-time check skip parsing, base64 and
  // the two digests on later requests.
  const accepted = new AcceptedCredentials();
  await app.register(basicAuth, {
    authenticate: { realm: 'pushline' },
    validate: async (username, password, request) => {
      if (!credentialsMatch({ username, password }, expected)) {
        throw new ApiError('unauthorized', 'invalid API credentials');
      }
      accepted.remember(request.headers.authorization);
    },
  });
  const check = app.basicAuth;
  app.decorate('apiAuth', function apiAuth(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (accepted.has(request.headers.authorization)) return done();
    return check.call(this, request, reply, done);
  });
}
