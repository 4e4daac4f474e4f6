// The one rule for user, room and similar ids wherever they enter: logic's HTTP bodies
// (src/logic/schemas.ts `identifier`), connection token claims (src/auth/token.ts) and the
// gRPC services. Ids become Redis key parts and log fields, so they are short and plain:
// 1..128 characters of letters, digits and _ . : @ - (which also rules out control characters,
// invalid UTF-8 and lone surrogates). Pure functions: importable without fastify or zod.

export const MAX_IDENTIFIER_LENGTH = 128;
export const IDENTIFIER_CHARACTERS = 'letters, digits and _ . : @ -';
const IDENTIFIER = /^[A-Za-z0-9_.:@-]+$/;

/** Why `value` is not a valid id (`what` names it in the message), or null when it is. */
export function identifierProblem(value: unknown, what: string): string | null {
  if (typeof value !== 'string') return `${what} must be a string`;
  if (value.length === 0) return `${what} must not be empty`;
  if (value.length > MAX_IDENTIFIER_LENGTH) return `${what} must be at most ${MAX_IDENTIFIER_LENGTH} characters`;
  if (!IDENTIFIER.test(value)) return `${what} may only contain ${IDENTIFIER_CHARACTERS}`;
  return null;
}

export const MAX_DISPLAY_NAME_LENGTH = 64;
// C0/C1 control characters, and a surrogate not paired with its other half (how invalid
// UTF-8 arrives in a JSON string: "\ud800"); with the u flag a proper pair is one code point.
const CONTROL = /\p{Cc}/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** Why a shown-to-others name (userName) is unacceptable, or null: free text, but bounded and printable. */
export function displayNameProblem(value: unknown, what: string): string | null {
  if (typeof value !== 'string') return `${what} must be a string`;
  if (value.length > MAX_DISPLAY_NAME_LENGTH) return `${what} must be at most ${MAX_DISPLAY_NAME_LENGTH} characters`;
  if (CONTROL.test(value)) return `${what} must not contain control characters`;
  if (LONE_SURROGATE.test(value)) return `${what} must be valid UTF-8 (it holds an unpaired surrogate)`;
  return null;
}
