// Message ids a comet has already delivered to a target (room, connection, everyone). Job is
// at-least-once, so a retried push can reach a comet twice; this keeps a connection from ever
// getting the same message id twice. Bounded: the oldest entries go first.
export class RecentIds {
  private readonly seen = new Map<string, true>();

  constructor(private readonly capacity: number) {}

  /** True the first time `scope`/`id` is offered, false for a repeat. */
  firstTime(scope: string, id: string): boolean {
    const key = `${scope}\u0000${id}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }
}
