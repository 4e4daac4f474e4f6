// Bearer-token authentication of the comet's gRPC port: job (and operators with grpcurl -H)
// send `authorization: Bearer <COMET_GRPC_TOKEN>`; anything else gets UNAUTHENTICATED before a
// handler runs. It guards every service on the port, server reflection included: grpcurl sends
// its -H headers on reflection calls too, and the descriptor is nobody else's business.
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { AcceptedCredentials } from '../util/accepted-credentials.ts';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Constant-time: comparing equal-length digests says nothing about where the texts differ. */
function sameToken(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

/** Why the metadata does not authenticate the call, or null when it does. */
export function authProblem(metadata: grpc.Metadata, expected: Buffer): string | null {
  const values = metadata.get('authorization');
  if (values.length === 0) return 'missing metadata "authorization: Bearer <COMET_GRPC_TOKEN>"';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(String(values[0]));
  if (!match) return 'the authorization metadata must be "Bearer <COMET_GRPC_TOKEN>"';
  return sameToken(match[1]!, expected) ? null : 'wrong bearer token (COMET_GRPC_TOKEN differs between job and comet?)';
}

/** Server side: refuses unauthenticated calls of every method with UNAUTHENTICATED. */
export function requireBearerToken(token: string, onRefused?: (method: string, why: string) => void): grpc.ServerInterceptor {
  const expected = digest(token);
  // Header values that passed the constant-time check (a job sends the same one on every call):
  // the next call with one of them skips the regex and both digests, as logic's API auth does.
  const accepted = new AcceptedCredentials();
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, passOn) {
            const given = metadata.get('authorization')[0];
            if (accepted.has(given)) return passOn(metadata);
            const why = authProblem(metadata, expected);
            if (why === null) {
              accepted.remember(given);
              return passOn(metadata);
            }
            onRefused?.(method.path, why);
            call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: why, metadata: new grpc.Metadata() });
          },
        });
      },
    });
}

/** Client side: the metadata carrying the bearer token (callers pass a clone with each call). */
export function bearerMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** Client side: adds the bearer token to every call made through the client. */
export function bearerToken(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}
