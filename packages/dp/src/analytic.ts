// The analytic Gaussian mechanism (Balle & Wang 2018, arXiv:1805.06530, Thm 8): the exact (ε, δ) curve of
// one Gaussian release with noise multiplier s = σ/Δ and no sampling:
//   δ(ε) = Φ(1/(2s) − εs) − e^ε Φ(−1/(2s) − εs).
// Computed in log space, as dp_accounting's gaussian_mechanism.py does, then inverted by bisection.
import { logNormalCdf } from './math.ts';
import { badArgument, checkDelta, checkEpsilon } from './validate.ts';

const REL_TOL = 1e-15;

/** log δ(ε) for noise multiplier s; -Infinity when δ underflows to 0. */
export function analyticGaussianLogDelta(s: number, epsilon: number): number {
  const tStar = epsilon * s + 1 / (2 * s);
  const x = logNormalCdf(1 / s - tStar);
  const y = epsilon + logNormalCdf(-tStar);
  return y <= x ? x + Math.log1p(-Math.exp(y - x)) : -Infinity;
}

function checkS(s: unknown): number {
  if (typeof s !== 'number' || !(s >= 0)) throw badArgument(`noiseMultiplier must be a number >= 0, got ${String(s)}`, 'σ divided by the L2 sensitivity.');
  return s;
}

/** δ of one Gaussian release with noise multiplier s at privacy loss ε. */
export function analyticGaussianDelta(init: { noiseMultiplier: number; epsilon: number }): number {
  const s = checkS(init.noiseMultiplier);
  const eps = checkEpsilon(init.epsilon);
  if (s === 0) return 1;
  if (s === Infinity) return 0;
  return Math.exp(analyticGaussianLogDelta(s, eps));
}

// Bisection on a decreasing f: returns the smallest x in [lo, hi] (to REL_TOL) with f(x) ≤ 0.
function bisectDecreasing(f: (x: number) => number, lo: number, hi: number): number {
  while (hi - lo > REL_TOL * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (f(mid) <= 0) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Smallest ε ≥ 0 such that one Gaussian release with noise multiplier s = σ/Δ is (ε, δ)-DP (exact).
 * δ = 1 → 0; s = 0 or δ = 0 → Infinity (edge cases as dp_accounting's get_epsilon_gaussian).
 */
export function analyticGaussianEpsilon(init: { noiseMultiplier: number; delta: number }): number {
  const s = checkS(init.noiseMultiplier);
  const delta = checkDelta(init.delta);
  if (delta === 1) return 0;
  if (s === 0) return Infinity;
  if (s === Infinity) return 0;
  if (delta === 0) return Infinity;
  const logDelta = Math.log(delta);
  const g = (eps: number) => analyticGaussianLogDelta(s, eps) - logDelta;
  if (g(0) <= 0) return 0;
  let lo = 0;
  let hi = 1;
  while (g(hi) > 0) {
    lo = hi;
    hi *= 10;
    if (hi > 1e300) return Infinity;
  }
  return bisectDecreasing(g, lo, hi);
}

/**
 * Smallest σ such that adding N(0, σ²) to a query of L2 sensitivity `sensitivity` is (ε, δ)-DP (exact).
 * δ = 1 or ε = ∞ → 0; δ = 0 → Infinity.
 */
export function analyticGaussianSigma(init: { epsilon: number; delta: number; sensitivity?: number }): number {
  const eps = init.epsilon === Infinity ? Infinity : checkEpsilon(init.epsilon);
  const delta = checkDelta(init.delta);
  const sens = init.sensitivity ?? 1;
  if (typeof sens !== 'number' || !(sens > 0) || sens === Infinity) throw badArgument(`sensitivity must be a finite number > 0, got ${String(sens)}`, 'The L2 sensitivity of the query.');
  if (delta === 1 || eps === Infinity) return 0;
  if (delta === 0) return Infinity;
  const logDelta = Math.log(delta);
  const g = (s: number) => analyticGaussianLogDelta(s, eps) - logDelta;
  let lo = 0.1;
  let hi = 1;
  while (g(lo) <= 0) {
    hi = lo;
    lo /= 10;
    if (lo < 1e-300) return 0;
  }
  while (g(hi) > 0) {
    lo = hi;
    hi *= 10;
    if (hi > 1e300) return Infinity;
  }
  return bisectDecreasing(g, lo, hi) * sens;
}
