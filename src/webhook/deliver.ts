// One webhook delivery attempt, classified for the retry policy (DESIGN §6): 2xx done;
// 408, 429, 5xx, timeouts and network errors retriable; anything else final. Never throws,
// never follows redirects, reads at most 64 KiB of the answer.
import { STATUS_CODES } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { checkTargetUrl } from '../net/ssrf.ts';
import { signBody } from './signature.ts';

export type DeliveryResult =
  | { ok: true; status: number; durationMs: number }
  | { ok: false; retriable: boolean; status?: number; error: string; retryAfterMs?: number; durationMs: number };

export interface DeliveryOptions {
  url: string;
  body: string;
  secret: string;
  timeoutMs: number;
  dispatcher: Dispatcher;
  headers?: Record<string, string>;
}

const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_SNIPPET_CHARS = 200;
const MAX_RETRY_AFTER_MS = 3_600_000;
// Date.parse accepts nearly anything; an HTTP-date always starts with a day name.
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /i;

/** Retry-After as seconds or HTTP-date, in ms from now; undefined for garbage or the past. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (HTTP_DATE.test(text)) ms = Date.parse(text) - nowMs;
  else return undefined;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** Errors that come from our own request (bad header value, ...): retrying repeats them. */
const FINAL_ERROR_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);

/** Walks the cause chain, since undici and fetch wrap the socket's error. */
function findInChain(err: unknown, test: (e: { code?: unknown; name?: unknown }) => boolean): (Error & { code?: unknown }) | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (test(e as { code?: unknown })) return e as Error;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function errorCode(err: unknown): string | undefined {
  const code = findInChain(err, (e) => typeof e.code === 'string')?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeStatus(status: number, statusText: string): string {
  const name = STATUS_CODES[status] ?? statusText.replace(/[^\x20-\x7e]/g, '').slice(0, 60);
  return name ? `${status} ${name}` : String(status);
}

/** Reads up to 64 KiB (enough to reuse the socket for small answers) and always frees it. */
async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  let text = '';
  let bytes = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (text.length < MAX_SNIPPET_CHARS * 4) text += chunk.toString('utf8', 0, Math.min(chunk.length, MAX_SNIPPET_CHARS * 4));
      if (bytes >= MAX_ANSWER_BYTES) break;
    }
  } catch {
    // an answer cut short (deadline, reset) does not change the verdict its status gave
  } finally {
    body.destroy();
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, MAX_SNIPPET_CHARS);
}

export async function deliverWebhook(options: DeliveryOptions): Promise<DeliveryResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const target = checkTargetUrl(options.url);
  if (!target.ok) return { ok: false, retriable: false, error: `hook_url ${target.reason}`, durationMs: 0 };

  try {
    const res = await request(target.url, {
      method: 'POST',
      dispatcher: options.dispatcher,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'pushline-webhook/1',
        ...options.headers,
        'x-pushline-signature': signBody(options.body, options.secret),
      },
      body: options.body,
      // One deadline for connect, headers and body; undici's own timers are only a backstop.
      signal: AbortSignal.timeout(options.timeoutMs),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      // undici 7 crashes the process when the server closes while the parser is paused by
      // backpressure (nodejs/undici#5360; the fix is in undici 8, which needs Node 22). We read
      // at most MAX_ANSWER_BYTES, so a buffer four times that never pauses it before we stop.
      highWaterMark: MAX_ANSWER_BYTES * 4,
    });
    const status = res.statusCode;
    const snippet = await readSnippet(res.body);
    if (status >= 200 && status < 300) return { ok: true, status, durationMs: elapsed() };
    const answered = `webhook answered ${describeStatus(status, res.statusText)}`;
    const said = snippet ? `: ${snippet}` : '';
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined;
      return {
        ok: false,
        retriable: true,
        status,
        error: `${answered}${said}`,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        durationMs: elapsed(),
      };
    }
    if (status >= 300 && status < 400) {
      const location = res.headers.location;
      const to = typeof location === 'string' ? ` to ${location.slice(0, MAX_SNIPPET_CHARS)}` : '';
      return { ok: false, retriable: false, status, error: `${answered}${to}; redirects are not followed`, durationMs: elapsed() };
    }
    return {
      ok: false,
      retriable: false,
      status,
      error: `${answered}; not retried (only 408, 429 and 5xx are)${said}`,
      durationMs: elapsed(),
    };
  } catch (err) {
    const forbidden = findInChain(err, (e) => e.code === 'FORBIDDEN_TARGET');
    if (forbidden) return { ok: false, retriable: false, error: forbidden.message, durationMs: elapsed() };
    const code = errorCode(err);
    const name = (err as Error | undefined)?.name;
    if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return { ok: false, retriable: true, error: `webhook timed out after ${options.timeoutMs} ms`, durationMs: elapsed() };
    }
    const message = (err as Error | undefined)?.message ?? String(err);
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      return { ok: false, retriable: true, error: `webhook connect timed out: ${message}`, durationMs: elapsed() };
    }
    const detail = `${code ? `${code} ` : ''}${message}`;
    if (code && FINAL_ERROR_CODES.has(code)) {
      return { ok: false, retriable: false, error: `webhook request invalid: ${detail}`, durationMs: elapsed() };
    }
    // Refused connections, resets, hang-ups and DNS failures are usually passing trouble.
    return { ok: false, retriable: true, error: `webhook request failed: ${detail}`, durationMs: elapsed() };
  }
}
