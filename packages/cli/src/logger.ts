import { pino, type Logger as PinoLogger } from 'pino';

/** Daemons log JSON lines to stdout (pino); `name` says which daemon wrote a line. */
export function createLogger(name: string, level: string): PinoLogger {
  return pino({ name, level, base: { name, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
