// Webhook signatures: X-Pushline-Signature: sha256=<hex HMAC-SHA256(body, WEBHOOK_SECRET)>.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** For receivers (and tests): constant-time check of a signature header. */
export function verifySignature(body: string, header: string | undefined, secret: string): boolean {
  if (!header || !/^sha256=[0-9a-f]{64}$/.test(header)) return false;
  const expected = Buffer.from(signBody(body, secret));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
