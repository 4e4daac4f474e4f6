// Server-side request forgery guard for every outbound request pushline makes on a user's
// behalf (webhooks, audio downloads). Addresses are checked when the socket is
// opened, after DNS resolution, so a name that resolves to a private address — or that
// changes its answer between a check and the request (DNS rebinding) — is still refused.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';

/** The refusal of a target; callers treat it as final, since retrying cannot change it. */
export class ForbiddenTargetError extends Error {
  readonly code = 'FORBIDDEN_TARGET';
  constructor(message: string) {
    super(message);
    this.name = 'ForbiddenTargetError';
  }
}

// All IPv6 global unicast lives in 2000::/3; ipaddr.js calls a few addresses outside it
// 'unicast' (IPv4-compatible ::a.b.c.d written in hex, for one), which we never want to reach.
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

/** True for anything that is not a public unicast address (loopback, private, link-local, ...). */
export function isForbiddenAddress(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (!ipaddr.isValid(bare)) return true;
  const addr = ipaddr.process(bare);
  if (addr.range() !== 'unicast') return true;
  return addr.kind() === 'ipv6' && !addr.match(IPV6_GLOBAL_UNICAST);
}

export type TargetCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Syntax check for a user-supplied URL (HTTP 400 material); addresses are checked at connect. */
export function checkTargetUrl(raw: string): TargetCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'must be an absolute http:// or https:// URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `must use http or https, not ${url.protocol.replace(/:$/, '')}` };
  }
  if (url.username || url.password) return { ok: false, reason: 'must not contain a username or password' };
  if (!url.hostname) return { ok: false, reason: 'must name a host' };
  return { ok: true, url };
}

function refusal(host: string, address: string, setting: string): ForbiddenTargetError {
  return new ForbiddenTargetError(
    `refusing to connect to private or loopback address ${address} (host ${host}); set ${setting}=true to allow`,
  );
}

/**
 * A dns.lookup replacement that fails when any address of the name is forbidden: checking
 * every address, not just the one picked, leaves no room for a happy-eyeballs fallback to
 * land on a private one.
 */
const guardedLookup = (setting: string): LookupFunction => (hostname, options, callback) => {
  // dns.lookup also accepts a bare family number; net passes an object, other callers may not.
  const opts: LookupOptions = typeof options === 'number' ? { family: options } : (options ?? {});
  dnsLookup(hostname, { family: opts.family ?? 0, hints: opts.hints ?? 0, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(refusal(hostname, bad.address, setting), []);
    if (opts.all) return callback(null, addresses);
    const first: LookupAddress | undefined = addresses[0];
    if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
};

export interface GuardOptions {
  allowPrivate: boolean;
  connectTimeoutMs?: number;
  /** The setting a refusal tells the operator about (default WEBHOOK_ALLOW_PRIVATE). */
  allowSetting?: string;
}

export function createGuardedAgent(options: GuardOptions): Agent {
  const timeout = options.connectTimeoutMs ?? 10_000;
  if (options.allowPrivate) return new Agent({ connect: { timeout } });
  const setting = options.allowSetting ?? 'WEBHOOK_ALLOW_PRIVATE';
  const base = buildConnector({ timeout, lookup: guardedLookup(setting) });
  // net.connect never calls lookup for an IP literal (test/integration/webhook-deliver.test.ts
  // pins this down), so literals are checked here; undici hands them over without brackets.
  const connect: buildConnector.connector = (opts, callback) => {
    const host = opts.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && isForbiddenAddress(host)) {
      callback(refusal(opts.hostname, host, setting), null);
      return;
    }
    base(opts, callback);
  };
  return new Agent({ connect });
}
