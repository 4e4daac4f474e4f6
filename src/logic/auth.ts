// HTTP Basic auth for the API. Both halves are compared in constant time (over SHA-256
// digests, so lengths leak nothing either) and both are always compared.
import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
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

/** How many distinct Authorization header values that already passed the check are remembered. */
const REMEMBERED = 8;

export async function registerBasicAuth(app: FastifyInstance, expected: { username: string; password: string }): Promise<void> {
  // Authorization header values that passed the constant-time check skip parsing, base64 and
  // the two digests on later requests (a client sends the same header on every request). Only
  // accepted values are remembered, so a wrong guess always takes the constant-time path; the
  // lookup is a hash-table probe (the whole string is hashed), not a prefix-revealing compare.
  const accepted = new Set<string>();
  await app.register(basicAuth, {
    authenticate: { realm: 'pushline' },
    validate: async (username, password, request) => {
      if (!credentialsMatch({ username, password }, expected)) {
        throw new ApiError('unauthorized', 'invalid API credentials');
      }
      const header = request.headers.authorization;
      if (typeof header === 'string') {
        if (accepted.size >= REMEMBERED) accepted.clear();
        accepted.add(header);
      }
    },
  });
  const check = app.basicAuth;
  app.decorate('apiAuth', function apiAuth(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const header = request.headers.authorization;
    if (header !== undefined && accepted.has(header)) return done();
    return check.call(this, request, reply, done);
  });
}
