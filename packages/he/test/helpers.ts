import { isFedtwinError } from '@fedtwin/errors';

/** The FedtwinError code `fn` throws, a marker for any other throw, or undefined if it returns. */
export function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isFedtwinError(e) ? e.code : `non-fedtwin: ${String(e)}`;
  }
  return undefined;
}
