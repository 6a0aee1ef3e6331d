import type { z } from 'zod';

/** A pino-compatible logger: structured object first, message second. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RpcRequestContext<H> {
  peer: string;
  header: H;
  body?: Uint8Array;
}

export interface RpcHandlerSpec<S extends z.ZodType> {
  request: S;
  maxBodyBytes: number;
  handler: (ctx: RpcRequestContext<z.infer<S>>) => Promise<{ header: unknown; body?: Uint8Array }>;
}

/** The part of a wire host the aggregator needs (so tests can swap the transport). */
export interface AggregatorHost {
  readonly peerId: string;
  handle<S extends z.ZodType>(name: string, spec: RpcHandlerSpec<S>): void;
}
