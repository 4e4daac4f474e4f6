// Structured logs (pino). Every process gets one root logger from its composition root;
// modules take a child with their own bindings instead of importing a global.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

// pino-pretty (~50 ms to load) only for the processes that print pretty lines: a production
// process logging JSON starts without it.
const loadPretty = (): typeof import('pino-pretty') => createRequire(import.meta.url)('pino-pretty');

export type { Logger };

export interface LogOptions {
  level: string;
  name: string;
  /** Human-friendly lines (pushline start, a TTY); JSON otherwise. */
  pretty?: boolean;
  /** ANSI colours in pretty lines; see useColour. */
  colour?: boolean;
}

/**
 * Colours only where someone looks at them: a terminal. A pipe, a file or a log collector gets
 * plain text. NO_COLOR (any non-empty value, no-color.org) turns them off, FORCE_COLOR on
 * (0 off), the usual conventions; `pushline start` uses FORCE_COLOR to pass its decision to its
 * children, whose stdout is always a pipe.
 */
export function useColour(env: { NO_COLOR?: string | undefined; FORCE_COLOR?: string | undefined }, stream: { isTTY?: boolean } = process.stdout): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return stream.isTTY === true;
}

export function createLogger(options: LogOptions): Logger {
  if (options.pretty) {
    // In this thread, not as a worker transport: when `pushline start` dies and our stdout pipe
    // breaks, pino-pretty drops lines (EPIPE) and the orderly stop goes on; a worker transport
    // made process.exit wait forever for a flush that could not happen.
    const stream = loadPretty()({ colorize: options.colour ?? false, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true });
    return pino({ name: options.name, level: options.level }, stream);
  }
  return pino({ name: options.name, level: options.level });
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
