// The SSRF address table and the URL syntax check that the API uses for 400s.
import { describe, expect, it } from 'vitest';
import { checkTargetUrl, isForbiddenAddress } from '../../src/net/ssrf.ts';

describe('isForbiddenAddress', () => {
  const forbidden: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback, anywhere in 127/8'],
    ['10.1.2.3', 'private 10/8'],
    ['172.16.0.1', 'private 172.16/12'],
    ['172.31.255.254', 'private 172.16/12, top end'],
    ['192.168.1.1', 'private 192.168/16'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'IPv6 loopback'],
    ['[::1]', 'bracketed IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fe80::1', 'IPv6 link-local'],
    ['fc00::1', 'IPv6 unique local'],
    ['fd12:3456::1', 'IPv6 unique local (fd)'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback in hex'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::7f00:1', 'IPv4-compatible loopback (outside 2000::/3)'],
    ['64:ff9b::7f00:1', 'NAT64'],
    ['2002:7f00:1::', '6to4'],
    ['2001::1', 'teredo'],
    ['not-an-ip', 'unparseable'],
    ['', 'empty'],
    ['localhost', 'a name, not an address'],
  ];
  it.each(forbidden)('refuses %s (%s)', (ip) => {
    expect(isForbiddenAddress(ip)).toBe(true);
  });

  const allowed = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];
  it.each(allowed)('allows public %s', (ip) => {
    expect(isForbiddenAddress(ip)).toBe(false);
  });
});

describe('checkTargetUrl', () => {
  const rejected: Array<[string, RegExp]> = [
    ['ftp://example.com/file', /http or https/],
    ['javascript:alert(1)', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['http://user:secret@example.com/', /username or password/],
    ['https://user@example.com/', /username or password/],
    ['not a url', /absolute/],
    ['/relative/path', /absolute/],
    ['', /absolute/],
    ['http://', /absolute/],
  ];
  it.each(rejected)('rejects %j', (raw, reason) => {
    const checked = checkTargetUrl(raw);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.reason).toMatch(reason);
  });

  it.each([
    'http://example.com/hook',
    'https://example.com:8443/hook?x=1',
    // Literals pass the syntax check on purpose: the connect-time guard is what refuses them.
    'http://127.0.0.1:8080/',
    'http://[::1]/',
  ])('accepts %s', (raw) => {
    const checked = checkTargetUrl(raw);
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.url.href).toBe(new URL(raw).href);
  });
});
