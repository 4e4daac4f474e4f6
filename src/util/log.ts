// Structured logs (pino). Every process gets one root logger from its composition root;
// modules take a child with their own bindings instead of importing a global.
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level: string;
  name: string;
  /** Human-friendly lines (pushline start, a TTY); JSON otherwise. */
  pretty?: boolean;
}

export function createLogger(options: LogOptions): Logger {
  if (options.pretty) {
    return pino({
      name: options.name,
      level: options.level,
      transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ name: options.name, level: options.level });
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
