// The API's error catalogue: one stable code per failure, its HTTP status, and the JSON shape
// every 4xx/5xx uses: { error: <code>, message, fields?: [{ field, message }] }. Every error body
// logic can answer — route errors, fastify's own (bad URL, long params, content type, body
// limit) and those Node's HTTP parser raises before fastify sees a request (timeouts, header
// overflow, malformed requests) — is built here, so clients only ever see these codes.
import { STATUS_CODES } from 'node:http';

export const API_ERRORS = {
  bad_request: 400,
  validation_failed: 400,
  invalid_json: 400,
  json_too_deep: 400,
  unauthorized: 401,
  not_found: 404,
  request_timeout: 408,
  not_cancelable: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  headers_too_large: 431,
  internal: 500,
  not_supported: 501,
  queue_unavailable: 503,
  /** REDIS_WAIT_REPLICAS: written, but not confirmed by enough replicas; it may exist, retry with the same Idempotency-Key. */
  not_replicated: 503,
  service_unavailable: 503,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export interface FieldError {
  field: string;
  message: string;
}

export interface ApiErrorBody {
  error: ApiErrorCode;
  message: string;
  fields?: FieldError[];
  [extra: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly fields?: FieldError[],
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return API_ERRORS[this.code];
  }

  body(): ApiErrorBody {
    return { error: this.code, message: this.message, ...(this.fields ? { fields: this.fields } : {}), ...this.extra };
  }
}

/**
 * The catalogue code for an HTTP status raised outside our routes (a plugin, fastify, Node):
 * the one code whose status it is, `validation_failed` for other 400s and `bad_request` for
 * any 4xx the catalogue has no own code for, `internal` for 5xx.
 */
export function codeForStatus(status: number): ApiErrorCode {
  switch (status) {
    case 400:
      return 'validation_failed';
    case 503:
      return 'service_unavailable';
  }
  const own = (Object.keys(API_ERRORS) as ApiErrorCode[]).filter((c) => API_ERRORS[c] === status);
  if (own.length === 1) return own[0]!;
  return status >= 500 ? 'internal' : 'bad_request';
}

/**
 * A complete HTTP/1.1 response with a catalogue body, for answering on a raw socket (Node's
 * clientError: the request never became one fastify could reply to).
 */
export function rawErrorResponse(code: ApiErrorCode, message: string): string {
  const status = API_ERRORS[code];
  const body = JSON.stringify({ error: code, message });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
