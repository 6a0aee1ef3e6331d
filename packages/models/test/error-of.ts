import { FedtwinError } from '@fedtwin/errors';

/** The FedtwinError `f` throws (anything else is rethrown; no throw fails the test). */
export function errorOf(f: () => unknown): FedtwinError {
  try {
    f();
  } catch (e) {
    if (e instanceof FedtwinError) return e;
    throw e;
  }
  throw new Error('expected a FedtwinError');
}
