import type { z } from 'zod';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The part of a wire host a member needs (so tests can swap the transport). */
export interface NodeHost {
  readonly peerId: string;
  request<S extends z.ZodType>(
    peer: string,
    name: string,
    msg: { header: unknown; body?: Uint8Array },
    opts: { response: S; maxBodyBytes: number; timeoutMs: number; signal?: AbortSignal },
  ): Promise<{ header: z.infer<S>; body?: Uint8Array }>;
}
