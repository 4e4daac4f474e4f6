// Credential header values that already passed a constant-time check, remembered so that a
// client sending the same header on every request (an API client's Authorization, a job's gRPC
// bearer token) skips the parsing and digests next time. Only accepted values are kept, so a
// wrong guess always takes the constant-time path; the lookup is a hash-table probe (the whole
// string is hashed), not a prefix-revealing compare. Bounded: full, it starts again empty.
export class AcceptedCredentials {
  private readonly values = new Set<string>();

  constructor(private readonly max = 8) {}

  has(value: unknown): boolean {
    return typeof value === 'string' && this.values.has(value);
  }

  /** Call only after `value` passed the real check. */
  remember(value: unknown): void {
    if (typeof value !== 'string') return;
    if (this.values.size >= this.max) this.values.clear();
    this.values.add(value);
  }
}
