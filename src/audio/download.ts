// Fetches an audio URL to a file with the limits an unattended worker needs: http(s) only, the
// SSRF-guarded dispatcher (every resolved address is checked at connect time, on every hop), a
// size cap enforced on Content-Length and again on the bytes actually streamed, and one deadline
// for the whole transfer. Redirects are followed by hand, a few at most, so each Location gets
// the same URL check as the original before anything connects to it.
// Failures are DownloadErrors that say whether retrying can help: network trouble, timeouts,
// 408/429/5xx can; other 4xx, refused targets, oversized bodies and redirect loops cannot.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { checkTargetUrl } from '../net/ssrf.ts';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  url: string;
  /** Created exclusively (never overwrites); removed again when the download fails. */
  dest: string;
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  dispatcher: Dispatcher;
  /** The task's signal: aborting it stops the transfer and rethrows its reason. */
  signal?: AbortSignal;
}

export interface Downloaded {
  url: string;
  /** Where the bytes came from after redirects (the same as url without any). */
  finalUrl: string;
  redirects: number;
  bytes: number;
  contentType: string | null;
  sha256: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_SHOWN_URL = 300;
const MAX_BODY_BUFFER = 2 ** 30;

/** Walks the cause chain: undici wraps the socket's (and the SSRF guard's) errors. */
function inChain(err: unknown, test: (e: { code?: unknown; name?: unknown }) => boolean): (Error & { code?: unknown }) | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (test(e as { code?: unknown })) return e as Error;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${bytes} bytes`;
}

function tooLarge(what: string, maxBytes: number): DownloadError {
  return new DownloadError(`audio is too large: ${what}, more than the limit of ${mib(maxBytes)} (AUDIO_MAX_BYTES)`, false);
}

function shown(url: URL | string): string {
  const text = String(url);
  return text.length > MAX_SHOWN_URL ? `${text.slice(0, MAX_SHOWN_URL)}…` : text;
}

/** Frees an answer we will not read; a small one lets the connection be reused. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  await body.dump({ limit: 64 * 1024 }).catch(() => {});
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** GETs until a non-redirect answer, checking every Location like the original URL. */
async function follow(start: URL, options: DownloadOptions, signal: AbortSignal): Promise<{ res: Dispatcher.ResponseData; url: URL; redirects: number }> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    const res = await request(url, {
      method: 'GET',
      dispatcher: options.dispatcher,
      headers: { 'user-agent': 'pushline-audio/1', accept: 'audio/*, application/ogg, application/octet-stream;q=0.9, */*;q=0.5' },
      signal,
      // The signal is the deadline; undici's own timers are only a backstop.
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      // undici 7 crashes the process (an uncatchable assert) when a server closes the connection
      // while the response parser is paused by backpressure (nodejs/undici#5360, fixed upstream
      // in #5474). A body buffer as large as the size cap never pauses it; what it may hold is
      // bounded by AUDIO_MAX_BYTES and only grows when the disk is slower than the network.
      highWaterMark: Math.min(options.maxBytes + 1, MAX_BODY_BUFFER),
    });
    const location = headerValue(res.headers.location);
    if (!REDIRECTS.has(res.statusCode) || !location) return { res, url, redirects };
    await discard(res.body);
    if (redirects >= options.maxRedirects) {
      throw new DownloadError(
        options.maxRedirects === 0
          ? `audio URL redirects (${res.statusCode} to ${shown(location)}) and redirects are not followed (AUDIO_MAX_REDIRECTS=0)`
          : `audio URL redirected more than ${options.maxRedirects} times (AUDIO_MAX_REDIRECTS); last to ${shown(location)}`,
        false,
        res.statusCode,
      );
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new DownloadError(`audio URL redirected to an invalid location ${shown(location)}`, false, res.statusCode);
    }
    const checked = checkTargetUrl(next.href);
    if (!checked.ok) throw new DownloadError(`audio URL redirected to ${shown(next)}, which ${checked.reason}`, false, res.statusCode);
    url = checked.url;
  }
}

function statusError(status: number, statusText: string, url: URL): DownloadError {
  const name = STATUS_CODES[status] ?? statusText.replace(/[^\x20-\x7e]/g, '').slice(0, 60);
  const answered = `audio URL ${shown(url)} answered ${status}${name ? ` ${name}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) return new DownloadError(answered, true, status);
  return new DownloadError(`${answered}; not retried (only 408, 429 and 5xx are)`, false, status);
}

export async function downloadToFile(options: DownloadOptions): Promise<Downloaded> {
  const checked = checkTargetUrl(options.url);
  if (!checked.ok) throw new DownloadError(`audio URL ${checked.reason}`, false);
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
  let bytes = 0;
  try {
    const { res, url, redirects } = await follow(checked.url, options, signal);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await discard(res.body);
      throw statusError(res.statusCode, res.statusText, url);
    }
    const declared = Number(headerValue(res.headers['content-length']));
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      await discard(res.body);
      throw tooLarge(`the server announces ${mib(declared)}`, options.maxBytes);
    }
    const hash = createHash('sha256');
    // Counts what really arrives: Content-Length can be absent or lie (chunked, compressed).
    const limit = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > options.maxBytes) return done(tooLarge(`the body passed ${mib(options.maxBytes)}`, options.maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(res.body, limit, createWriteStream(options.dest, { flags: 'wx', mode: 0o600 }), { signal });
    return {
      url: options.url,
      finalUrl: url.href,
      redirects,
      bytes,
      contentType: headerValue(res.headers['content-type']) ?? null,
      sha256: hash.digest('hex'),
    };
  } catch (err) {
    await rm(options.dest, { force: true });
    throw classify(err, options, deadline, bytes);
  }
}

function classify(err: unknown, options: DownloadOptions, deadline: AbortSignal, bytes: number): unknown {
  if (err instanceof DownloadError) return err;
  const forbidden = inChain(err, (e) => e.code === 'FORBIDDEN_TARGET');
  if (forbidden) return new DownloadError(`audio URL refused: ${forbidden.message}`, false);
  // The task's own abort (lease lost, shutdown) is not the download's fault: pass it through.
  if (options.signal?.aborted) return options.signal.reason ?? err;
  const code = inChain(err, (e) => typeof e.code === 'string')?.code;
  const received = bytes > 0 ? ` (${mib(bytes)} received)` : '';
  if (deadline.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new DownloadError(`audio download timed out after ${options.timeoutMs} ms (AUDIO_DOWNLOAD_TIMEOUT_MS)${received}`, true);
  }
  const message = (err as Error | undefined)?.message ?? String(err);
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL') {
    return new DownloadError(`audio URL cannot be requested: ${message}`, false);
  }
  // Refused connections, resets, DNS failures, a body cut short: usually passing trouble.
  return new DownloadError(`audio download failed: ${typeof code === 'string' ? `${code} ` : ''}${message}${received}`, true);
}
