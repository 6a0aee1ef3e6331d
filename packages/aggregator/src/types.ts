import type { WireHost } from '@fedtwin/wire';

/** A pino-compatible logger: structured object first, message second. */
export interface Logger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/** The part of a wire host the aggregator needs (so tests can swap the transport). */
export type AggregatorHost = Pick<WireHost, 'peerId' | 'handle'>;
