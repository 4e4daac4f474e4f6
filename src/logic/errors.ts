// The API's error catalogue: one stable code per failure, its HTTP status, and the JSON shape
// every 4xx/5xx uses: { error: <code>, message, fields?: [{ field, message }] }.
export const API_ERRORS = {
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  not_found: 404,
  not_cancelable: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  internal: 500,
  not_supported: 501,
  queue_unavailable: 503,
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
