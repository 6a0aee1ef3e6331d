// One-run privacy auditing: Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run",
// NeurIPS 2023 (arXiv:2305.08846), Theorem 3, and the p-value / ε search of their reference code
// (p_value_DP_audit, get_eps_audit). Pure math: no model, no I/O.
import { FedtwinError } from '@fedtwin/errors';
import { binomialLogPmf } from './binomial.ts';

export interface OneRunCounts {
  /** Canaries, each included independently with probability 1/2. */
  m: number;
  /** Guesses made (canaries not abstained on). */
  r: number;
  /** Correct guesses. */
  v: number;
}

/**
 * Theorem 3: if the training run is (ε, δ)-DP in each canary's inclusion, the number of correct guesses W
 * among r satisfies, for every v,
 *   P[W ≥ v] ≤ f(v) + 2mδ · max_{i=1..m} (f(v − i) − f(v)) / i,   f(v) = P[Binomial(r, e^ε/(1+e^ε)) ≥ v].
 * Returns that bound (capped at 1): the p-value of observing v correct guesses under "(ε, δ)-DP".
 * f(v − i) − f(v) = P[v − i ≤ B < v]; for i > v it is 1 − f(v) and (1 − f(v))/i < (1 − f(v))/v, so the
 * maximum is attained at some i ≤ v (the reference code's loop).
 */
export function oneRunPValue(c: OneRunCounts & { epsilon: number; delta: number }): number {
  checkCounts(c);
  if (!(c.epsilon >= 0)) throw bad(`epsilon must be ≥ 0, got ${c.epsilon}`);
  if (!(c.delta >= 0 && c.delta <= 1)) throw bad(`delta must be in [0, 1], got ${c.delta}`);
  const { m, r, v, epsilon, delta } = c;
  // q = e^ε/(1+e^ε): the accuracy of ε-DP randomized response, the best any guesser can do per canary.
  const logP = -Math.log1p(Math.exp(-epsilon));
  const logQ = -epsilon - Math.log1p(Math.exp(-epsilon));
  const pmf = (k: number) => Math.exp(binomialLogPmf(r, k, logP, logQ));
  let beta = 0;
  for (let k = r; k >= v; k--) beta += pmf(k); // upper tail, smallest terms first
  let alpha = 0;
  let window = 0; // P[v − i ≤ B < v]
  for (let i = 1; i <= v; i++) {
    window += pmf(v - i);
    if (window / i > alpha) alpha = window / i;
  }
  return Math.min(1, beta + 2 * m * delta * alpha);
}

/**
 * ε_lower: the largest ε at which the observed counts still reject "(ε, δ)-DP" at significance `alpha`
 * (oneRunPValue < alpha), by bisection as in the reference code (the p-value grows with ε: f(v) does, and the
 * δ term is too small to reverse it; test/one-run.test.ts checks this on a grid). 0 when even ε = 0 is not
 * rejected. Reading: with confidence 1 − alpha the run is not (ε, δ)-DP for any ε < ε_lower.
 */
export function oneRunEpsilonLower(c: OneRunCounts & { delta: number; alpha: number }): number {
  checkCounts(c);
  if (!(c.alpha > 0 && c.alpha < 1)) throw bad(`alpha (1 − confidence) must be in (0, 1), got ${c.alpha}`);
  const rejects = (epsilon: number) => oneRunPValue({ ...c, epsilon }) < c.alpha;
  if (!rejects(0)) return 0;
  let lo = 0;
  let hi = 1;
  while (rejects(hi)) {
    lo = hi;
    hi *= 2;
    // Unreachable for v ≤ r (f(v) → 1 as ε → ∞); a guard, not a result.
    if (hi > 1e4) throw bad('the ε search did not terminate', { counts: c });
  }
  while (hi - lo > 1e-10 * Math.max(1, hi)) {
    const mid = (lo + hi) / 2;
    if (rejects(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function checkCounts(c: OneRunCounts): void {
  const { m, r, v } = c;
  if (![m, r, v].every((x) => Number.isInteger(x) && x >= 0) || !(v <= r && r <= m)) {
    throw bad(`need integers 0 ≤ v ≤ r ≤ m, got m = ${m}, r = ${r}, v = ${v}`, { m, r, v });
  }
}

function bad(message: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError('AUDIT_BAD_ARGUMENT', message, { hint: 'see packages/audit/README.md', ...(details ? { details } : {}) });
}
