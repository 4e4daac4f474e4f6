// One webhook delivery attempt, classified for the retry policy (DESIGN §6): 2xx done;
// 408, 429, 5xx, timeouts and network errors retriable; anything else final. Never throws,
// never follows redirects, reads at most 64 KiB of the answer.
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
const MAX_RETRY_AFTER_MS = 3_600_000;

export function parseRetryAfter(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const ms = /^\d+$/.test(text.trim()) ? Number(text.trim()) * 1000 : Date.parse(text) - nowMs;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function findForbidden(err: unknown): Error | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    if ((e as { code?: unknown }).code === 'FORBIDDEN_TARGET') return e as Error;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  let text = '';
  let bytes = 0;
  try {
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      if (text.length < 200) text += (chunk as Buffer).toString('utf8');
      if (bytes >= MAX_ANSWER_BYTES) break;
    }
  } catch {
    // an answer cut short does not change the verdict
  } finally {
    body.destroy();
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
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
        'x-pushline-signature': signBody(options.body, options.secret),
        ...options.headers,
      },
      body: options.body,
      signal: AbortSignal.timeout(options.timeoutMs),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const status = res.statusCode;
    const snippet = await readSnippet(res.body);
    if (status >= 200 && status < 300) return { ok: true, status, durationMs: elapsed() };
    const answered = `webhook answered ${status}${snippet ? `: ${snippet}` : ''}`;
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined;
      return { ok: false, retriable: true, status, error: answered, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), durationMs: elapsed() };
    }
    if (status >= 300 && status < 400) {
      return { ok: false, retriable: false, status, error: `webhook answered ${status} (redirect to ${res.headers.location ?? '?'}); redirects are not followed`, durationMs: elapsed() };
    }
    return { ok: false, retriable: false, status, error: `${answered}; not retried (only 408, 429 and 5xx are)`, durationMs: elapsed() };
  } catch (err) {
    const forbidden = findForbidden(err);
    if (forbidden) return { ok: false, retriable: false, error: forbidden.message, durationMs: elapsed() };
    const name = (err as Error)?.name;
    if (name === 'TimeoutError' || name === 'AbortError' || errorCode(err)?.includes('TIMEOUT')) {
      return { ok: false, retriable: true, error: `webhook timed out after ${options.timeoutMs} ms`, durationMs: elapsed() };
    }
    const code = errorCode(err);
    const message = (err as Error)?.message ?? String(err);
    // Refused connections, resets and DNS failures are usually passing: all network errors retry.
    return { ok: false, retriable: true, error: `webhook request failed: ${code ? `${code} ` : ''}${message}`, durationMs: elapsed() };
  }
}
