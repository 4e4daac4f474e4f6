// Runs a started process until SIGTERM/SIGINT, then stops it in order within a bounded time.
// A second signal, or a stop that overruns, exits at once: an operator must never wait forever.
import type { Logger } from '../util/log.ts';
import { claimEarlySignals } from './early-signals.ts';

export function stopOnSignals(stop: () => Promise<void>, log: Logger, hardLimitMs: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal} received: shutting down`);
    const timer = setTimeout(() => {
      log.error(`shutdown took longer than ${hardLimitMs} ms: exiting`);
      process.exit(1);
    }, hardLimitMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A signal that came while loading is acted on now.
  const early = claimEarlySignals();
  if (early) onSignal(early);
}
