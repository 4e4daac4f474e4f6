#!/usr/bin/env node
// Entry point of the `pushline` CLI: runs the compiled dist/ (`npm run build`; `npm start` and
// `npm test` build it when it is missing or older than src/). No loader at run time.

// A SIGTERM/SIGINT that arrives before a command has set up its own shutdown is only
// remembered; the command takes it over (src/cli/early-signals.ts) and stops cleanly (exit 0)
// instead of dying of the signal half-started. Loading takes about a tenth of a second now,
// but orchestrators send signals whenever.
const early = { received: null, handler: (signal) => (early.received ??= signal) };
globalThis[Symbol.for('pushline.earlySignals')] = early;
process.on('SIGTERM', early.handler);
process.on('SIGINT', early.handler);

try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('pushline: dist/ is missing: run `npm run build` in the pushline checkout first\n');
    process.exit(1);
  }
  throw err;
}
