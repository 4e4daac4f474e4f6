#!/usr/bin/env node
// Entry point of the `pushline` CLI. The sources are TypeScript run through tsx's loader,
// so a clean checkout needs no build step and no generated output is ever committed.
import { register } from 'tsx/esm/api';

// Loading takes a second or two, and exiting while the loader is busy can hang. So a
// SIGTERM/SIGINT in that time is only remembered; the command's own shutdown takes it over
// (src/cli/early-signals.ts) and acts on it once it can stop cleanly.
const early = { received: null, handler: (signal) => (early.received ??= signal) };
globalThis[Symbol.for('pushline.earlySignals')] = early;
process.on('SIGTERM', early.handler);
process.on('SIGINT', early.handler);

register();
await import('../src/cli/main.ts');
