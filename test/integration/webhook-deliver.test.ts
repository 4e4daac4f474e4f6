// deliverWebhook against real HTTP servers on loopback: signing, the retry classification,
// redirects, deadlines, refused connections and the SSRF guard at connect time.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { createGuardedAgent } from '../../src/net/ssrf.ts';
import { deliverWebhook, parseRetryAfter, type DeliveryResult } from '../../src/webhook/deliver.ts';
import { verifySignature } from '../../src/webhook/signature.ts';

const SECRET = 'deliver-test-secret';
const BODY = JSON.stringify({ id: '000000000042', status: 'completed', result: { text: 'ok' } });

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  signed: boolean;
}

const routes: Record<string, (res: ServerResponse) => void> = {
  '/ok': (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks'),
  '/fail': (res) => res.writeHead(500).end('database is on fire'),
  '/busy': (res) => res.writeHead(503, { 'retry-after': '2' }).end('busy'),
  '/slow-down': (res) => res.writeHead(429).end('too many'),
  '/request-timeout': (res) => res.writeHead(408).end(),
  '/missing': (res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('no such hook\n\n  here'),
  '/huge-error': (res) => res.writeHead(500).end('x'.repeat(1024 * 1024)),
  '/hang': () => {
    // never answers
  },
  '/endless-body': (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
  },
};

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

let hits: Hit[] = [];
let redirectHits = 0;
let receiver: Server;
let redirectTarget: Server;
let base: string;
let redirectUrl: string;
let open: Agent;
let guarded: Agent;

beforeAll(async () => {
  redirectTarget = createServer((_req, res) => {
    redirectHits++;
    res.end('you should not be here');
  });
  redirectUrl = `http://127.0.0.1:${await listen(redirectTarget)}/landed`;
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const header = req.headers['x-pushline-signature'];
      hits.push({
        path: req.url ?? '',
        headers: req.headers,
        body,
        signed: verifySignature(body, typeof header === 'string' ? header : undefined, SECRET),
      });
      if (req.url === '/redirect') return res.writeHead(302, { location: redirectUrl }).end();
      const route = routes[req.url ?? ''];
      if (route) return route(res);
      res.writeHead(404).end();
    });
  });
  base = `http://127.0.0.1:${await listen(receiver)}`;
  open = createGuardedAgent({ allowPrivate: true });
  guarded = createGuardedAgent({ allowPrivate: false });
});

afterAll(async () => {
  await Promise.all([open?.destroy(), guarded?.destroy()]);
  await Promise.all([receiver && shut(receiver), redirectTarget && shut(redirectTarget)]);
});

beforeEach(() => {
  hits = [];
  redirectHits = 0;
});

function deliver(url: string, overrides: Partial<Parameters<typeof deliverWebhook>[0]> = {}): Promise<DeliveryResult> {
  return deliverWebhook({ url, body: BODY, secret: SECRET, timeoutMs: 5000, dispatcher: open, ...overrides });
}

function failure(result: DeliveryResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

describe('deliverWebhook answers', () => {
  it('delivers a signed POST that the receiver can verify', async () => {
    const result = await deliver(`${base}/ok`, { headers: { 'x-pushline-task-id': '000000000042' } });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(hits).toHaveLength(1);
    const hit = hits[0]!;
    expect(hit.body).toBe(BODY);
    expect(hit.signed).toBe(true);
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['user-agent']).toBe('pushline-webhook/1');
    expect(hit.headers['x-pushline-task-id']).toBe('000000000042');
  });

  it('keeps the signature even when extra headers try to replace it', async () => {
    const result = await deliver(`${base}/ok`, { headers: { 'x-pushline-signature': 'sha256=forged' } });
    expect(result.ok).toBe(true);
    expect(hits[0]!.signed).toBe(true);
  });

  it('retries a 500 and quotes the answer', async () => {
    const result = failure(await deliver(`${base}/fail`));
    expect(result).toMatchObject({ retriable: true, status: 500 });
    expect(result.error).toContain('500');
    expect(result.error).toContain('database is on fire');
    expect(result.retryAfterMs).toBeUndefined();
  });

  it('retries a 503 and honours Retry-After in seconds', async () => {
    const result = failure(await deliver(`${base}/busy`));
    expect(result).toMatchObject({ retriable: true, status: 503, retryAfterMs: 2000 });
  });

  it('retries a 429 and a 408', async () => {
    expect(failure(await deliver(`${base}/slow-down`))).toMatchObject({ retriable: true, status: 429 });
    expect(failure(await deliver(`${base}/request-timeout`))).toMatchObject({ retriable: true, status: 408 });
  });

  it('gives up on a 404, naming the status', async () => {
    const result = failure(await deliver(`${base}/missing`));
    expect(result).toMatchObject({ retriable: false, status: 404 });
    expect(result.error).toMatch(/404 Not Found/);
    expect(result.error).toMatch(/not retried/);
    expect(result.error).toContain('no such hook here');
  });

  it('keeps only a short snippet of a huge error answer', async () => {
    const result = failure(await deliver(`${base}/huge-error`));
    expect(result).toMatchObject({ retriable: true, status: 500 });
    expect(result.error.length).toBeLessThan(300);
    expect(result.error).toContain('x'.repeat(100));
  });

  it('does not follow a redirect', async () => {
    const result = failure(await deliver(`${base}/redirect`));
    expect(result).toMatchObject({ retriable: false, status: 302 });
    expect(result.error).toMatch(/redirects are not followed/);
    expect(hits.map((h) => h.path)).toEqual(['/redirect']);
    expect(redirectHits).toBe(0);
  });
});

describe('deliverWebhook failures without an answer', () => {
  it('times out a receiver that never answers, as retriable', async () => {
    const result = failure(await deliver(`${base}/hang`, { timeoutMs: 300 }));
    expect(result.retriable).toBe(true);
    expect(result.status).toBeUndefined();
    expect(result.error).toBe('webhook timed out after 300 ms');
  });

  it('settles a 2xx whose body never ends once the deadline passes', async () => {
    // The headers must arrive before the deadline: 300 ms is less than a loaded machine may stall.
    const result = await deliver(`${base}/endless-body`, { timeoutMs: 2_000 });
    expect(result).toMatchObject({ ok: true, status: 200 });
  });

  it('retries a refused connection', async () => {
    // A free port from outside the range the kernel hands to bind(0): nobody takes it meanwhile.
    const port = await freePort();
    const result = failure(await deliver(`http://127.0.0.1:${port}/`));
    expect(result.retriable).toBe(true);
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it.each(['not a url', 'ftp://127.0.0.1/hook', 'http://user:pw@127.0.0.1/hook'])(
    'gives up on the invalid URL %j without any request',
    async (url) => {
      const result = failure(await deliver(url));
      expect(result.retriable).toBe(false);
      expect(result.error).toMatch(/^hook_url /);
      expect(hits).toHaveLength(0);
    },
  );
});

describe('the SSRF guard', () => {
  const port = () => new URL(base).port;

  it.each([
    ['an IPv4 literal', () => `http://127.0.0.1:${port()}/ok`, /address 127\.0\.0\.1/],
    ['localhost, resolved by DNS', () => `http://localhost:${port()}/ok`, /\(host localhost\)/],
    ['an IPv6 literal', () => `http://[::1]:${port()}/ok`, /address ::1/],
    ['an IPv4-mapped IPv6 literal', () => `http://[::ffff:127.0.0.1]:${port()}/ok`, /address ::ffff:7f00:1/],
  ])('refuses %s for good, before anything is sent', async (_what, url, address) => {
    const result = failure(await deliver(url(), { dispatcher: guarded }));
    expect(result.retriable).toBe(false);
    expect(result.status).toBeUndefined();
    expect(result.error).toMatch(/private or loopback/);
    expect(result.error).toMatch(address);
    expect(result.error).toMatch(/WEBHOOK_ALLOW_PRIVATE=true/);
    expect(hits).toHaveLength(0);
  });

  it('lets loopback through when private targets are allowed', async () => {
    expect(await deliver(`http://localhost:${port()}/ok`)).toMatchObject({ ok: true, status: 200 });
  });

  it('needs its connect wrapper: net.connect skips a custom lookup for IP literals', async () => {
    const looked: string[] = [];
    const lookupOnly = new Agent({
      connect: {
        lookup: (hostname, _options, callback) => {
          looked.push(hostname);
          callback(new Error(`lookup refused ${hostname}`), []);
        },
      },
    });
    try {
      const res = await request(`${base}/ok`, { method: 'POST', dispatcher: lookupOnly, body: '{}' });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      expect(looked).toEqual([]);
      await expect(request(`http://localhost:${port()}/ok`, { dispatcher: lookupOnly })).rejects.toThrow(/lookup refused localhost/);
      expect(looked).toEqual(['localhost']);
    } finally {
      await lookupOnly.destroy();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);
  it.each<[string | string[] | undefined, number | undefined]>([
    ['2', 2000],
    [' 0 ', 0],
    [['5', '9'], 5000],
    ['86400', 3_600_000],
    ['Sun, 22 Nov 2026 12:01:30 GMT', 90_000],
    ['Sunday, 22-Nov-26 12:00:10 GMT', 10_000],
    ['Sun, 22 Nov 2026 11:00:00 GMT', undefined],
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['2026-11-22T12:05:00Z', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('reads %j as %s', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});
