import { FedtwinError } from '@fedtwin/errors';

/** Largest finite RDP order accepted: the integer-order sum has α+1 terms, so this caps the work. */
export const MAX_ORDER = 1_000_000;
/** Most orders accepted in one list (caps allocation). */
export const MAX_ORDERS = 1_000_000;

export function badArgument(message: string, hint: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError('DP_BAD_ARGUMENT', message, details === undefined ? { hint } : { hint, details });
}

function show(v: unknown): string {
  if (typeof v === 'number') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export function checkSampleRate(q: unknown, name = 'sampleRate'): number {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) {
    throw badArgument(`${name} must be a number in [0, 1], got ${show(q)}`, 'Use the Poisson sampling probability, e.g. batch size / dataset size.');
  }
  return q;
}

export function checkNoiseMultiplier(z: unknown, name = 'noiseMultiplier'): number {
  if (typeof z !== 'number' || !(z >= 0) || z === Infinity) {
    throw badArgument(`${name} must be a finite number >= 0, got ${show(z)}`, 'The noise multiplier is the noise standard deviation divided by the L2 sensitivity (clip norm).');
  }
  return z;
}

export function checkSteps(t: unknown, name = 'steps'): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1) {
    throw badArgument(`${name} must be an integer >= 1, got ${show(t)}`, 'Count every application of the sampled Gaussian mechanism (one per training step or round).');
  }
  return t;
}

export function checkDelta(d: unknown, name = 'delta'): number {
  if (typeof d !== 'number' || !(d >= 0 && d <= 1)) {
    throw badArgument(`${name} must be a number in [0, 1], got ${show(d)}`, 'Pick δ well below 1/(number of records), e.g. 1e-5.');
  }
  return d;
}

export function checkEpsilon(e: unknown, name = 'epsilon'): number {
  if (typeof e !== 'number' || !(e >= 0) || e === Infinity) {
    throw badArgument(`${name} must be a finite number >= 0, got ${show(e)}`, 'ε is the privacy-loss bound, e.g. 1 or 8.');
  }
  return e;
}

/** Orders for RDP computation: each > 1 and ≤ MAX_ORDER, or +Infinity (whose RDP is +Infinity unless q = 0). */
export function checkOrders(orders: unknown, allowOne = false, name = 'orders'): readonly number[] {
  if (!Array.isArray(orders) || orders.length === 0) {
    throw badArgument(`${name} must be a non-empty array of numbers`, 'Omit it to use DEFAULT_ORDERS.');
  }
  if (orders.length > MAX_ORDERS) {
    throw badArgument(`${name} has ${orders.length} entries; at most ${MAX_ORDERS} are accepted`, 'A few hundred orders are plenty.');
  }
  for (const a of orders) {
    const ok = typeof a === 'number' && (a === Infinity || ((allowOne ? a >= 1 : a > 1) && a <= MAX_ORDER));
    if (!ok) {
      const low = allowOne ? '>= 1' : '> 1';
      throw badArgument(`${name} must contain only numbers ${low} and <= ${MAX_ORDER} (or Infinity), got ${show(a)}`, 'RDP orders α must exceed 1; see DEFAULT_ORDERS.');
    }
  }
  return orders as readonly number[];
}
