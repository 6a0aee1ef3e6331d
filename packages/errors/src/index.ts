/**
 * One error type for the whole project. `code` is stable (scripts and tests match on it);
 * `hint` says how to fix the cause, so a CLI can print both.
 */
export class FedtwinError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FedtwinError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

export function isFedtwinError(e: unknown, code?: string): e is FedtwinError {
  return e instanceof FedtwinError && (code === undefined || e.code === code);
}
