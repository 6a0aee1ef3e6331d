import type { WireHost } from '@fedtwin/wire';

export interface Logger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/** The part of a wire host a member needs (so tests can swap the transport). */
export type NodeHost = Pick<WireHost, 'peerId' | 'request'>;
