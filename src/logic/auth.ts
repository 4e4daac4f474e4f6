// HTTP Basic auth for the API. Both halves are compared in constant time (over SHA-256
// digests, so lengths leak nothing either) and both are always compared.
import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function credentialsMatch(given: { username: string; password: string }, expected: { username: string; password: string }): boolean {
  const userOk = timingSafeEqual(digest(given.username), digest(expected.username));
  const passOk = timingSafeEqual(digest(given.password), digest(expected.password));
  return userOk && passOk;
}

/** How many distinct credential pairs that already passed the check are remembered. */
const REMEMBERED = 8;

export async function registerBasicAuth(app: FastifyInstance, expected: { username: string; password: string }): Promise<void> {
  // Pairs that passed the constant-time check skip the two digests on later requests. Only
  // correct credentials are remembered, so a wrong guess always takes the constant-time path.
  const passed = new Set<string>();
  await app.register(basicAuth, {
    authenticate: { realm: 'pushline' },
    validate: async (username, password) => {
      const pair = `${username}\u0000${password}`;
      if (passed.has(pair)) return;
      if (!credentialsMatch({ username, password }, expected)) {
        throw new ApiError('unauthorized', 'invalid API credentials');
      }
      if (passed.size >= REMEMBERED) passed.clear();
      passed.add(pair);
    },
  });
}
