import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { signConnectionToken, verifyConnectionToken } from '../../src/auth/token.ts';

const SECRET = 'unit-test-secret';

describe('connection tokens', () => {
  it('round-trips user, room and name', async () => {
    const { token, expiresAt } = await signConnectionToken({ userId: 'user_123', roomId: 'video_123', userName: '主播' }, SECRET, 60);
    const check = await verifyConnectionToken(token, SECRET);
    expect(check).toEqual({ ok: true, claims: { userId: 'user_123', roomId: 'video_123', userName: '主播' }, expiresAt });
  });

  it('refuses an expired token, a wrong secret, a tampered payload and garbage', async () => {
    const past = new Date(Date.now() - 3_600_000);
    const expired = await signConnectionToken({ userId: 'u', roomId: 'r' }, SECRET, 60, past);
    expect(await verifyConnectionToken(expired.token, SECRET)).toEqual({ ok: false, reason: 'token expired' });

    const { token } = await signConnectionToken({ userId: 'u', roomId: 'r' }, SECRET, 60);
    expect(await verifyConnectionToken(token, 'other-secret')).toEqual({ ok: false, reason: 'token signature is invalid' });

    const [header, , signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', room: 'r', iss: 'pushline', aud: 'pushline-comet', exp: 9e9 })).toString('base64url');
    expect((await verifyConnectionToken(`${header}.${forged}.${signature}`, SECRET)).ok).toBe(false);
    expect(await verifyConnectionToken('not-a-token', SECRET)).toEqual({ ok: false, reason: 'token is malformed' });
  });

  it('refuses alg=none and tokens signed for another audience', async () => {
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u","room":"r","exp":9999999999}').toString('base64url')}.`;
    expect((await verifyConnectionToken(none, SECRET)).ok).toBe(false);
    const header = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
    const body = Buffer.from(JSON.stringify({ sub: 'u', room: 'r', iss: 'pushline', aud: 'elsewhere', exp: 9999999999 })).toString('base64url');
    const sig = createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url');
    expect(await verifyConnectionToken(`${header}.${body}.${sig}`, SECRET)).toEqual({ ok: false, reason: 'token aud claim is invalid' });
  });
});

describe('connection token claims follow the identifier rule', () => {
  const mint = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('pushline').setAudience('pushline-comet').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

  it('refuses a token whose room, user or name breaks the rule', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ sub: 'u1', room: 'r'.repeat(1024 * 1024) }, /room \(roomId\) must be at most 128 characters/],
      [{ sub: 'u1', room: 'r\ud800' }, /room \(roomId\) may only contain/],
      [{ sub: 'u\u0000', room: 'r1' }, /sub \(userId\) may only contain/],
      [{ sub: 'u1', room: 'r1', name: 'a\u001bb' }, /name \(userName\) must not contain control characters/],
      [{ sub: 'u1', room: 'r1', name: 'n'.repeat(65) }, /name \(userName\) must be at most 64 characters/],
      [{ sub: 'u1', room: 'r1', name: 42 }, /name \(userName\) must be a string/],
    ];
    for (const [claims, reason] of cases) {
      const check = await verifyConnectionToken(await mint(claims), SECRET);
      expect(check.ok, JSON.stringify(claims).slice(0, 60)).toBe(false);
      expect((check as { reason: string }).reason).toMatch(reason);
    }
    expect((await verifyConnectionToken(await mint({ sub: 'u1', room: 'r1', name: '主播 😀' }), SECRET)).ok).toBe(true);
  });
});
