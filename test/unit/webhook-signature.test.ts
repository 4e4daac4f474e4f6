// The signature header against an HMAC computed here independently of the module.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signBody, verifySignature } from '../../src/webhook/signature.ts';

const secret = 'it-is-a-secret';
const body = '{"id":"000000000001","status":"completed","result":{"text":"héllo"}}';
const expected = `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex')}`;

describe('signBody', () => {
  it('is sha256=<hex HMAC-SHA256 of the UTF-8 body>', () => {
    expect(signBody(body, secret)).toBe(expected);
    expect(signBody(body, secret)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('matches the RFC 4231 test case 2 vector', () => {
    expect(signBody('what do ya want for nothing?', 'Jefe')).toBe(
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('changes with the body and with the secret', () => {
    expect(signBody(`${body} `, secret)).not.toBe(expected);
    expect(signBody(body, `${secret}x`)).not.toBe(expected);
  });
});

describe('verifySignature', () => {
  it('accepts the right signature', () => {
    expect(verifySignature(body, expected, secret)).toBe(true);
  });

  it('rejects a signature for another body or secret', () => {
    expect(verifySignature(`${body}x`, expected, secret)).toBe(false);
    expect(verifySignature(body, expected, 'other-secret')).toBe(false);
    const flipped = expected.slice(0, -1) + (expected.endsWith('0') ? '1' : '0');
    expect(verifySignature(body, flipped, secret)).toBe(false);
  });

  it('rejects a missing header', () => {
    expect(verifySignature(body, undefined, secret)).toBe(false);
    expect(verifySignature(body, '', secret)).toBe(false);
  });

  it('rejects malformed headers', () => {
    const hex = expected.slice('sha256='.length);
    expect(verifySignature(body, hex, secret)).toBe(false);
    expect(verifySignature(body, `sha1=${hex}`, secret)).toBe(false);
    expect(verifySignature(body, `sha256=${'z'.repeat(64)}`, secret)).toBe(false);
    expect(verifySignature(body, ` ${expected}`, secret)).toBe(false);
  });

  it('rejects signatures of the wrong length without throwing', () => {
    expect(verifySignature(body, expected.slice(0, -2), secret)).toBe(false);
    expect(verifySignature(body, `${expected}00`, secret)).toBe(false);
    expect(verifySignature(body, 'sha256=', secret)).toBe(false);
  });
});
