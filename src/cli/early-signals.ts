// bin/pushline.js remembers a SIGTERM/SIGINT that arrives while the code is still loading.
// A command that handles signals itself claims them here: the early handler goes, and a signal
// that already came is handed over so the command can act on it now.
interface EarlySignals {
  received: NodeJS.Signals | null;
  handler: (signal: NodeJS.Signals) => void;
}

const KEY = Symbol.for('pushline.earlySignals');

export function claimEarlySignals(): NodeJS.Signals | null {
  const holder = globalThis as unknown as Record<symbol, EarlySignals | undefined>;
  const early = holder[KEY];
  if (!early) return null;
  process.off('SIGTERM', early.handler);
  process.off('SIGINT', early.handler);
  delete holder[KEY];
  return early.received;
}
