// Stable error codes of @fedtwin/secagg (scripts and tests match on them), each thrown with a hint.
import { FedtwinError } from '@fedtwin/errors';

export type SecaggCode =
  | 'SECAGG_BAD_CONFIG'
  | 'SECAGG_BAD_ARGUMENT'
  | 'SECAGG_BAD_SIGNATURE'
  | 'SECAGG_BAD_MESSAGE'
  | 'SECAGG_TOO_FEW_MEMBERS'
  | 'SECAGG_OUT_OF_ORDER'
  | 'SECAGG_SHARE_DECRYPT_FAILED'
  | 'SECAGG_VALUE_OUT_OF_RANGE'
  | 'SECAGG_RECOVERY_WRONG_ROUND'
  | 'SECAGG_RECOVERY_REPLAYED'
  | 'SECAGG_RECOVERY_CONFLICT'
  | 'SECAGG_RECOVERY_INCONSISTENT'
  | 'SECAGG_RECOVERY_TOO_FEW'
  | 'SECAGG_NOT_ENOUGH_SHARES'
  | 'SECAGG_RECONSTRUCTION_FAILED';

export function secaggError(code: SecaggCode, message: string, hint: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError(code, message, { hint, details });
}
