// Runs a started process until SIGTERM/SIGINT, then stops it in order within a bounded time.
// A second signal, or a stop that overruns, exits at once: an operator must never wait forever.
// Under `pushline start` the process runs in its own process group (a terminal's Ctrl-C reaches
// only the supervisor, which sends exactly one SIGTERM) and watches the supervisor through the
// IPC channel: when that closes without a signal (the supervisor was killed), it stops as if
// sent SIGTERM rather than living on as an orphan.
import type { Logger } from '../util/log.ts';
import { claimEarlySignals } from './early-signals.ts';

export function stopOnSignals(stop: () => Promise<void>, log: Logger, hardLimitMs: number): void {
  let stopping = false;
  const beginStop = (why: string) => {
    stopping = true;
    log.info(`${why}: shutting down`);
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
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    beginStop(`${signal} received`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A signal that came while loading is acted on now.
  const early = claimEarlySignals();
  if (early) onSignal(early);
  if (process.channel) {
    // The channel only watches; it must not keep a stopped process alive.
    process.channel.unref();
    const onParentGone = () => {
      if (!stopping) beginStop('the supervisor (pushline start) is gone');
    };
    if (process.connected) process.once('disconnect', onParentGone);
    else onParentGone();
  }
}
