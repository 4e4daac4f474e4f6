// Connection tokens: logic signs them (POST /logic/token), comets verify them before a
// WebSocket upgrade completes. They are standard HS256 JWTs over AUTH_SECRET, so a business
// backend can also mint them with any JWT library. Identity and room come from the token
// only: a client cannot choose another user or room.
import { jwtVerify, SignJWT, errors } from 'jose';
import { displayNameProblem, identifierProblem } from '../routing/ids.ts';

export interface ConnectionClaims {
  userId: string;
  roomId: string;
  /** Shown to other room members; never used for identity. */
  userName?: string;
}

export interface SignedToken {
  token: string;
  expiresAt: Date;
}

const ISSUER = 'pushline';
const AUDIENCE = 'pushline-comet';

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function signConnectionToken(claims: ConnectionClaims, secret: string, ttlSeconds: number, now = new Date()): Promise<SignedToken> {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttlSeconds;
  const token = await new SignJWT({ room: claims.roomId, ...(claims.userName ? { name: claims.userName } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key(secret));
  return { token, expiresAt: new Date(exp * 1000) };
}

export type TokenCheck = { ok: true; claims: ConnectionClaims; expiresAt: Date } | { ok: false; reason: string };

/** Verifies signature, issuer, audience and expiry; never throws. */
export async function verifyConnectionToken(token: string, secret: string, now = new Date()): Promise<TokenCheck> {
  try {
    const { payload } = await jwtVerify(token, key(secret), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
      currentDate: now,
      requiredClaims: ['sub', 'exp'],
    });
    const userId = payload.sub;
    const roomId = payload.room;
    if (typeof userId !== 'string' || !userId || typeof roomId !== 'string' || !roomId) {
      return { ok: false, reason: 'token lacks a user or room' };
    }
    // Claims obey the same id rule as every other entry point: a token minted elsewhere (any
    // JWT library has the secret's holder's trust, not their input checking) is refused when
    // they do not.
    const problem = identifierProblem(userId, 'token sub (userId)') ?? identifierProblem(roomId, 'token room (roomId)') ?? (payload.name === undefined ? null : displayNameProblem(payload.name, 'token name (userName)'));
    if (problem) return { ok: false, reason: problem };
    const userName = typeof payload.name === 'string' ? payload.name : undefined;
    return { ok: true, claims: { userId, roomId, ...(userName ? { userName } : {}) }, expiresAt: new Date((payload.exp ?? 0) * 1000) };
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, reason: 'token expired' };
    if (err instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: 'token signature is invalid' };
    if (err instanceof errors.JWTClaimValidationFailed) return { ok: false, reason: `token ${err.claim} claim is invalid` };
    return { ok: false, reason: 'token is malformed' };
  }
}
