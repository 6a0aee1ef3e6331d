// Loads the Microsoft SEAL WASM module once per thread and turns its exceptions into FedtwinErrors.
import initialize from 'node-seal';
import type { MainModule } from 'node-seal';
import { FedtwinError } from '@fedtwin/errors';

export type SealModule = MainModule;

let sealPromise: Promise<SealModule> | undefined;

/** The SEAL runtime for this thread (each worker thread instantiates its own WASM memory). */
export function loadSeal(): Promise<SealModule> {
  sealPromise ??= initialize();
  return sealPromise;
}

/** SEAL throws WebAssembly.Exception whose `message` is `[type, what]`; give it a readable form. */
export function describeSealError(err: unknown): string {
  if (err instanceof FedtwinError) return err.message;
  const m = (err as { message?: unknown } | null)?.message;
  if (Array.isArray(m)) return m.map(String).join(': ');
  if (typeof m === 'string') return m;
  return String(err);
}

/** Runs a SEAL call; a SEAL exception becomes `code` (the caller knows what was being checked). */
export function sealCall<T>(code: string, what: string, fn: () => T, hint?: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FedtwinError) throw err;
    throw new FedtwinError(code, `${what}: ${describeSealError(err)}`, { hint, cause: err });
  }
}
