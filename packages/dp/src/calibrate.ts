// Inverse accounting: the smallest noise multiplier z whose composed ε meets a target, by bisection.
import { epsilonFor } from './accountant.ts';
import type { Conversion } from './conversion.ts';
import { checkConversion } from './conversion.ts';
import { DEFAULT_ORDERS, checkFractionalSeries } from './rdp.ts';
import type { FractionalSeries } from './rdp.ts';
import { badArgument, checkDelta, checkOrders, checkSampleRate, checkSteps } from './validate.ts';

/** Default relative tolerance of the bisection on z: the result z satisfies ε(z) ≤ target while ε(z·(1 − 1e-12)) > target. */
export const NOISE_TOLERANCE = 1e-12;
const Z_MIN = 2 ** -40;
const Z_MAX = 2 ** 40;

export interface NoiseResult {
  noiseMultiplier: number;
  /** ε actually achieved at `noiseMultiplier` (≤ the target). */
  epsilon: number;
  order: number;
}

/**
 * Smallest noise multiplier z such that `steps` applications of the sampled Gaussian with rate q satisfy
 * (target ε, δ)-DP under the chosen conversion. ε(z) is non-increasing in z, so bisection on a bracket
 * found by doubling/halving from z = 1; the returned z is always the upper end (target is met).
 */
export function noiseMultiplierFor(init: {
  epsilon: number;
  sampleRate: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
  conversion?: Conversion;
  fractionalSeries?: FractionalSeries;
  tolerance?: number;
}): NoiseResult {
  const target = init.epsilon;
  if (typeof target !== 'number' || !(target > 0) || target === Infinity) {
    throw badArgument(`epsilon must be a finite number > 0, got ${String(target)}`, 'The target ε, e.g. 1 or 8.');
  }
  const q = checkSampleRate(init.sampleRate);
  if (q === 0) throw badArgument('sampleRate must be > 0 to calibrate noise (q = 0 spends nothing)', 'Use the Poisson sampling probability.');
  const steps = checkSteps(init.steps);
  const delta = checkDelta(init.delta);
  if (!(delta > 0 && delta < 1)) throw badArgument(`delta must be in (0, 1) to calibrate noise, got ${delta}`, 'e.g. 1e-5.');
  const orders = init.orders === undefined ? DEFAULT_ORDERS : checkOrders(init.orders);
  const conversion = checkConversion(init.conversion ?? 'improved');
  const fractionalSeries = checkFractionalSeries(init.fractionalSeries ?? 'signed');
  const tol = init.tolerance ?? NOISE_TOLERANCE;
  if (typeof tol !== 'number' || !(tol >= 1e-15 && tol < 1)) throw badArgument(`tolerance must be in [1e-15, 1), got ${String(tol)}`, 'The default 1e-12 is relative to z.');

  const eps = (z: number) => epsilonFor({ sampleRate: q, noiseMultiplier: z, steps, delta, orders, conversion, fractionalSeries });
  let lo: number;
  let hi = 1;
  let atHi = eps(hi);
  if (atHi.epsilon <= target) {
    lo = hi / 2;
    while (eps(lo).epsilon <= target) {
      hi = lo;
      lo /= 2;
      if (lo < Z_MIN) throw badArgument(`target epsilon ${target} is met by any noise multiplier down to ${Z_MIN}`, 'Noise this small gives no meaningful privacy; lower the target ε.');
    }
    atHi = eps(hi);
  } else {
    lo = hi;
    do {
      lo = hi;
      hi *= 2;
      if (hi > Z_MAX) {
        throw badArgument(
          `target epsilon ${target} is not reachable with these orders (${conversion} conversion) for any noise multiplier up to ${Z_MAX}`,
          'Raise the target ε or δ, or add larger orders (classic conversion needs log(1/δ)/(α−1) below the target).',
        );
      }
      atHi = eps(hi);
    } while (atHi.epsilon > target);
  }
  // Invariant: ε(lo) > target ≥ ε(hi).
  while (hi - lo > tol * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    const at = eps(mid);
    if (at.epsilon <= target) {
      hi = mid;
      atHi = at;
    } else {
      lo = mid;
    }
  }
  return { noiseMultiplier: hi, epsilon: atHi.epsilon, order: atHi.order };
}
