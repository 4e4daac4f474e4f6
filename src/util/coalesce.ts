// Coalesces calls to an async write: a call while a write is in flight waits for one more write
// that starts after the current one, shared by every call made in the meantime. So each caller
// gets a write that began after its call, and a burst of N calls costs at most two writes.
export function coalesce(write: () => Promise<void>): () => Promise<void> {
  let inFlight: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const run = (): Promise<void> => {
    const p: Promise<void> = write().finally(() => {
      if (inFlight === p) inFlight = null;
    });
    inFlight = p;
    return p;
  };
  return () => {
    if (!inFlight) return run();
    queued ??= inFlight
      .catch(() => {})
      .then(() => {
        queued = null;
        return run();
      });
    return queued;
  };
}
