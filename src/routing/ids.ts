// The one rule for ids that end up in Redis key names and routing: room ids, user ids and
// connection ids. logic (HTTP bodies), comets (token claims, gRPC requests) and job all check
// against it, so an id accepted at one edge is never refused (or, worse, unbounded) at another.

export const ID_MAX_LENGTH = 128;
/** Connection ids the comet makes (`c` + base64url) fit it too. */
export const ID_PATTERN = /^[A-Za-z0-9_.:@-]+$/;
export const ID_RULE_TEXT = 'letters, digits and _ . : @ -';

/** Why `value` is not a valid id, with `what` naming the field; null when it is one. */
export function idProblem(what: string, value: string): string | null {
  if (value.length === 0) return `${what} must not be empty`;
  if (value.length > ID_MAX_LENGTH) return `${what} must be at most ${ID_MAX_LENGTH} characters`;
  if (!ID_PATTERN.test(value)) return `${what} may only contain ${ID_RULE_TEXT}`;
  return null;
}
