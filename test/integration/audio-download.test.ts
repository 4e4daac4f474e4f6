// The download guard against real HTTP on loopback: size caps (announced and streamed), the
// deadline, status classification, redirects re-checked hop by hop, the SSRF guard, and that a
// failed download never leaves a partial file behind.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, downloadToFile, type DownloadOptions } from '../../src/audio/download.ts';
import { freePort } from '../../src/local/redis-server.ts';
import { createGuardedAgent } from '../../src/net/ssrf.ts';
import { noise, wav } from '../helpers/audio.ts';
import { routes, startFileServer, type FileServer } from '../helpers/file-server.ts';

let server: FileServer;
let open: Agent;
let guarded: Agent;
let dir: string;
let n = 0;
const body = wav({ seconds: 1 });

beforeAll(async () => {
  server = await startFileServer();
  open = createGuardedAgent({ allowPrivate: true });
  guarded = createGuardedAgent({ allowPrivate: false, allowSetting: 'AUDIO_ALLOW_PRIVATE' });
  dir = mkdtempSync(join(tmpdir(), 'pushline-download-'));
  server.file('/a.wav', body, 'audio/wav');
  server.file('/big.bin', noise(2 * 1024 * 1024));
  server.route('/big-chunked', routes.chunked(noise(2 * 1024 * 1024)));
  server.route('/stall', routes.stall(body.subarray(0, 1000)));
  server.route('/cut', routes.cutShort(body));
  server.route('/closing.wav', routes.closing(wav({ seconds: 30 })));
  server.route('/gone', routes.status(404));
  server.route('/busy', routes.status(503));
  server.route('/hop1', routes.redirect('/hop2', 301));
  server.route('/hop2', routes.redirect(`${server.url}/a.wav`, 307));
  server.route('/loop', routes.redirect('/loop'));
  server.route('/to-ftp', routes.redirect('ftp://example.com/a.wav'));
});
afterAll(async () => {
  await server.close();
  await open.close();
  await guarded.close();
  rmSync(dir, { recursive: true, force: true });
});

function options(path: string, extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return {
    url: path.startsWith('http') || path.includes(':') ? path : `${server.url}${path}`,
    dest: join(dir, `file-${++n}`),
    maxBytes: 1024 * 1024,
    timeoutMs: 15_000,
    maxRedirects: 3,
    dispatcher: open,
    ...extra,
  };
}

async function failure(o: DownloadOptions): Promise<DownloadError> {
  const err = await downloadToFile(o).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DownloadError);
  // Whatever went wrong, no partial file stays behind.
  expect(existsSync(o.dest)).toBe(false);
  return err as DownloadError;
}

describe('downloadToFile', () => {
  it('writes the body to the file and reports size, type and SHA-256', async () => {
    const o = options('/a.wav');
    const got = await downloadToFile(o);
    expect(readFileSync(o.dest).equals(body)).toBe(true);
    expect(got).toMatchObject({ bytes: body.length, contentType: 'audio/wav', redirects: 0, finalUrl: o.url });
    expect(got.sha256).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('survives a server that closes the connection right after a large body', async () => {
    // undici 7.30 asserts (uncatchably, crashing the process) when the socket ends while its
    // parser is paused by backpressure (nodejs/undici#5360); the download must never pause it.
    for (let i = 0; i < 10; i++) {
      const got = await downloadToFile(options('/closing.wav'));
      expect(got.bytes).toBe(wav({ seconds: 30 }).length);
    }
  });

  it('refuses a body whose Content-Length is over the limit before reading it', async () => {
    const err = await failure(options('/big.bin'));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/too large: the server announces 2\.0 MiB.*AUDIO_MAX_BYTES/);
  });

  it('stops a streamed body without Content-Length as soon as it passes the limit', async () => {
    const err = await failure(options('/big-chunked'));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/too large: the body passed 1\.0 MiB/);
  });

  it('gives up at the deadline on a server that stalls (retryable)', async () => {
    const err = await failure(options('/stall', { timeoutMs: 500 }));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/timed out after 500 ms \(AUDIO_DOWNLOAD_TIMEOUT_MS\)/);
  });

  it('treats a body cut short as passing trouble (retryable)', async () => {
    const err = await failure(options('/cut'));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/audio download failed/);
  });

  it('fails for good on 404 and retries 503', async () => {
    const gone = await failure(options('/gone'));
    expect(gone).toMatchObject({ retryable: false, status: 404 });
    expect(gone.message).toMatch(/answered 404 Not Found; not retried/);
    const busy = await failure(options('/busy'));
    expect(busy).toMatchObject({ retryable: true, status: 503 });
  });

  it('follows a few redirects, each checked, and reports where the bytes came from', async () => {
    const o = options('/hop1');
    const got = await downloadToFile(o);
    expect(got).toMatchObject({ redirects: 2, finalUrl: `${server.url}/a.wav`, bytes: body.length });
  });

  it('refuses redirect loops, redirects when none are allowed, and redirects to other schemes', async () => {
    expect((await failure(options('/loop'))).message).toMatch(/redirected more than 3 times/);
    const none = await failure(options('/hop1', { maxRedirects: 0 }));
    expect(none.message).toMatch(/redirects are not followed \(AUDIO_MAX_REDIRECTS=0\)/);
    const ftp = await failure(options('/to-ftp'));
    expect(ftp.retryable).toBe(false);
    expect(ftp.message).toMatch(/redirected to ftp:\/\/example\.com\/a\.wav, which must use http or https/);
  });

  it('refuses loopback targets with the guarded dispatcher, without connecting', async () => {
    const before = server.hits.length;
    const err = await failure(options('/a.wav', { dispatcher: guarded }));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/refusing to connect to private or loopback address 127\.0\.0\.1.*AUDIO_ALLOW_PRIVATE=true/);
    const named = await failure(options(server.url.replace('127.0.0.1', 'localhost') + '/a.wav', { dispatcher: guarded }));
    expect(named.message).toMatch(/refusing to connect/);
    expect(server.hits.length).toBe(before);
  });

  it('refuses URLs that are not http(s) or carry credentials', async () => {
    expect((await failure(options('file:///etc/passwd'))).message).toMatch(/must use http or https/);
    expect((await failure(options(`http://u:p@127.0.0.1:1/x`))).message).toMatch(/username or password/);
  });

  it('retries a refused connection', async () => {
    // A free port from outside the range the kernel hands to bind(0): nobody takes it meanwhile.
    const port = await freePort();
    const err = await failure(options(`http://127.0.0.1:${port}/a.wav`));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("passes the task's own abort through instead of calling it a download failure", async () => {
    const controller = new AbortController();
    const o = options('/stall', { signal: controller.signal });
    const pending = downloadToFile(o).then(
      () => null,
      (e: unknown) => e,
    );
    setTimeout(() => controller.abort(new Error('lease lost')), 100);
    const err = (await pending) as Error;
    expect(err).not.toBeInstanceOf(DownloadError);
    expect(err.message).toBe('lease lost');
    expect(existsSync(o.dest)).toBe(false);
  });
});
