import { pino, type Logger as PinoLogger } from 'pino';

/** Daemons log JSON lines to stdout (pino); `name` says which daemon wrote a line. */
export function createLogger(name: string, level: string): PinoLogger {
  return pino({ name, level, base: { name, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

interface EventLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/**
 * The same logger, with every structured event also handed to `onEvent` — whatever the configured log level, so
 * a daemon's status does not depend on it. An `onEvent` that throws is ignored: logging must not fail the caller.
 */
export function observeEvents<L extends EventLogger>(log: L, onEvent: (e: Record<string, unknown>) => void): EventLogger {
  const tap = (e: Record<string, unknown>) => {
    try {
      onEvent(e);
    } catch {
      // a view of the daemon; never its problem
    }
  };
  return {
    info: (o, m) => { tap(o); log.info(o, m); },
    warn: (o, m) => { tap(o); log.warn(o, m); },
    error: (o, m) => { tap(o); log.error(o, m); },
  };
}
