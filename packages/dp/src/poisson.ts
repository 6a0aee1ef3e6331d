// Exact Poisson and Skellam samplers for rational means, and the Skellam tail bound.
//
// Poisson(λ), λ = p/q ≥ 1: rejection from a discrete Laplace (exact, CKS Algorithm 2) centred at the mode
// m = ⌊λ⌋ with integer scale t = max(3, ⌈√λ⌉). With r(y) = P(m+y)/P(m) (a rational number) and the envelope
// ln r(y) ≤ g(|y|) = −|y|(|y|−1) / (2(λ+|y|−1)) (log-concavity, see poissonEnvelope), a proposal y is accepted
// with probability a(y) = r(y)·exp(|y|/t − b), b ≥ sup_u (g(u) + u/t), so a(y) ≤ 1 and accepted values are
// exactly Poisson(λ). The test "U < a(y)" on a uniform U is decided exactly: first in float64 with a margin of
// 10⁻⁶ relative on ln a(y) (≥ 10⁹ times its rounding error), which settles all but ~10⁻⁶ of the draws; the rest
// compare U, extended bit by bit, with a(y) evaluated as r(y) in BigInt times an interval for exp(|y|/t − b)
// refined until the comparison is decided. λ < 1: Poisson(1) thinned by exact Bernoulli(λ) coins.
import { logGamma } from './math.ts';
import { bernoulli, discreteLaplace } from './exact.ts';
import { uniform53, type RandomSource } from './random.ts';
import { badArgument } from './validate.ts';

/** A positive rational p/q (safe integers). */
export interface Rational {
  num: number;
  den: number;
}

export function checkRational(r: Rational, name: string): Rational {
  if (!r || !Number.isSafeInteger(r.num) || !Number.isSafeInteger(r.den) || r.num < 1 || r.den < 1) {
    throw badArgument(`${name} must be a rational num/den with safe integers ≥ 1, got ${JSON.stringify(r)}`, 'e.g. { num: 5, den: 2 } for 2.5');
  }
  return r;
}

interface PoissonPlan {
  p: number;
  q: number;
  lambda: number;
  logLambda: number;
  m: number;
  t: number;
  /** b as a double, i.e. the exact dyadic rational it stores. */
  b: number;
}

const plans = new Map<string, PoissonPlan>();

/**
 * sup over integers u ≥ 0 of h(u) = u/t − u(u−1)/(2(λ+u−1)), for λ ≥ 1 and t ≥ 3. h is concave on u ≥ 1
 * (u(u−1)/(λ+u−1) = D − (2λ−1) + λ(λ−1)/D with D = λ+u−1, convex in u for λ ≥ 1), so the first u where
 * h(u+1) < h(u) is the maximiser; found by doubling and bisection on the sign of the difference.
 */
export function poissonEnvelope(lambda: number, t: number): number {
  const h = (u: number) => u / t - (u * (u - 1)) / (2 * (lambda + u - 1));
  const rising = (u: number) => h(u + 1) >= h(u);
  let lo = 1;
  let hi = 2;
  while (rising(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (!rising(lo)) return Math.max(0, h(1));
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (rising(mid)) lo = mid;
    else hi = mid;
  }
  // h(hi) is the largest value (rising until lo, falling from hi); keep a margin for its float64 error.
  const top = Math.max(0, h(lo), h(hi));
  return top + 1e-9 * (1 + top);
}

function planFor(lambda: Rational): PoissonPlan {
  const key = `${lambda.num}/${lambda.den}`;
  let plan = plans.get(key);
  if (!plan) {
    const l = lambda.num / lambda.den;
    const m = Math.floor(lambda.num / lambda.den); // exact: floor of a quotient of safe integers
    const t = Math.max(3, Math.ceil(Math.sqrt(l)));
    plan = { p: lambda.num, q: lambda.den, lambda: l, logLambda: Math.log(l), m, t, b: poissonEnvelope(l, t) };
    if (plans.size > 64) plans.clear();
    plans.set(key, plan);
  }
  return plan;
}

/**
 * ln r(y) = ln(P(m+y)/P(m)) in float64 (k = m + y ≥ 0): a direct sum of logs for |y| ≤ 64, a Stirling difference
 * written without cancellation when both m and k are ≥ 200, log-gamma otherwise.
 */
export function poissonLogRatio(plan: Pick<PoissonPlan, 'lambda' | 'logLambda' | 'm'>, y: number): number {
  const { lambda, m } = plan;
  const k = m + y;
  if (y === 0) return 0;
  if (Math.abs(y) <= 64) {
    let s = 0;
    if (y > 0) for (let i = 1; i <= y; i++) s += Math.log(lambda / (m + i));
    else for (let i = 1; i <= -y; i++) s += Math.log((m - i + 1) / lambda);
    return s;
  }
  if (m >= 200 && k >= 200) {
    // ln Γ(x+1) = (x+½)ln x − x + ½ln 2π + 1/(12x) − 1/(360x³) + O(x⁻⁵); the difference between x0 = m and
    // x1 = k, with (x1+½)ln x1 − (x0+½)ln x0 = (x0+½)·log1p(y/x0) + y·ln x1.
    const x0 = m;
    const x1 = k;
    const corr = (1 / (12 * x1) - 1 / (12 * x0)) - (1 / (360 * x1 ** 3) - 1 / (360 * x0 ** 3));
    return y * Math.log(lambda / x1) + y - (x0 + 0.5) * Math.log1p(y / x0) - corr;
  }
  return y * plan.logLambda - (logGamma(k + 1) - logGamma(m + 1));
}

/** Relative margin on ln a(y) within which the float64 test defers to the exact one. */
export const POISSON_FAST_MARGIN = 1e-6;
const TWO53 = 9007199254740992;

/** Counts of the exact (BigInt) acceptance tests run, for tests. */
export const poissonStats = { exactTests: 0 };
/** The float64 test's margin (tests set it to Infinity to run every acceptance through the exact test). */
export const poissonTuning = { fastMargin: POISSON_FAST_MARGIN };

/** Exact Poisson(λ) for rational λ = num/den > 0. */
export function poisson(rng: RandomSource, lambda: Rational): number {
  checkRational(lambda, 'lambda');
  if (lambda.num < lambda.den) {
    // λ < 1: each of Poisson(1) events kept with probability λ.
    const n = poissonRejection(rng, planFor({ num: 1, den: 1 }));
    let kept = 0;
    for (let i = 0; i < n; i++) if (bernoulli(rng, lambda.num, lambda.den)) kept++;
    return kept;
  }
  return poissonRejection(rng, planFor(lambda));
}

function poissonRejection(rng: RandomSource, plan: PoissonPlan): number {
  const { m, t, b } = plan;
  for (;;) {
    const y = discreteLaplace(rng, t);
    const k = m + y;
    if (k < 0) continue;
    const u = Math.abs(y);
    const logA = poissonLogRatio(plan, y) + u / t - b;
    const margin = poissonTuning.fastMargin * (1 + Math.abs(logA));
    const U = uniform53(rng);
    if ((U + 1) / TWO53 <= Math.exp(logA - margin)) return k;
    if (U / TWO53 >= Math.exp(logA + margin)) continue;
    poissonStats.exactTests++;
    if (acceptExact(rng, plan, y, BigInt(U))) return k;
  }
}

/** Whether U < r(y)·exp(|y|/t − b), U a uniform real whose first 53 bits are `u53`, decided exactly. */
function acceptExact(rng: RandomSource, plan: PoissonPlan, y: number, u53: bigint): boolean {
  const { p, q, m, t } = plan;
  const P = BigInt(p);
  const Q = BigInt(q);
  const n = Math.abs(y);
  // r(y) = N/D exactly: powers and a balanced product tree of the factorial ratio (a running product of |y| factors
  // is quadratic in its size, hours at λ ~ 10^11 where |y| ~ 10^6; the tree is one large multiplication per level).
  let N: bigint;
  let D: bigint;
  if (y > 0) {
    N = P ** BigInt(n);
    D = Q ** BigInt(n) * rangeProduct(m + 1, m + n);
  } else {
    N = Q ** BigInt(n) * rangeProduct(m - n + 1, m);
    D = P ** BigInt(n);
  }
  // c = |y|/t − b, b = bn/2^be exactly.
  const [bn, be] = dyadic(plan.b);
  const cn = BigInt(n) * (1n << be) - BigInt(t) * bn;
  const cd = BigInt(t) * (1n << be);
  let ub = u53;
  let bits = 53n;
  for (let prec = 96n; ; prec += 64n) {
    const [elo, ehi, s] = expInterval(cn, cd, prec); // elo/s ≤ e^c ≤ ehi/s
    // a ∈ [N·elo/(D·s), N·ehi/(D·s)], U ∈ [ub/2^bits, (ub+1)/2^bits)
    if ((ub + 1n) * D * s <= N * elo * (1n << bits)) return true;
    if (ub * D * s >= N * ehi * (1n << bits)) return false;
    ub = (ub << 32n) | BigInt(rng.uint32());
    bits += 32n;
  }
}

/** a·(a+1)·…·b as a BigInt (1 if b < a), by balanced binary splitting. */
export function rangeProduct(a: number, b: number): bigint {
  if (b < a) return 1n;
  if (b - a < 16) {
    let p = 1n;
    for (let i = a; i <= b; i++) p *= BigInt(i);
    return p;
  }
  const mid = Math.floor((a + b) / 2);
  return rangeProduct(a, mid) * rangeProduct(mid + 1, b);
}

/** A finite double x ≥ 0 as bn / 2^be exactly. */
function dyadic(x: number): [bigint, bigint] {
  if (!(x >= 0) || !Number.isFinite(x)) throw badArgument(`dyadic: ${x}`, 'internal');
  let e = 0n;
  let v = x;
  while (!Number.isInteger(v)) {
    v *= 2; // exact for doubles
    e++;
  }
  return [BigInt(v), e];
}

/** e^{fn/fd} · S for 0 ≤ fn/fd ≤ 1 as [lo, hi] integers (Taylor series, floored terms, bounded remainder). */
function expTaylor(fn: bigint, fd: bigint, S: bigint): [bigint, bigint] {
  let term = S;
  let lo = S;
  let j = 1n;
  for (;;) {
    term = (term * fn) / (fd * j); // ≤ the true term; the true one exceeds it by at most j
    if (term === 0n) break;
    lo += term;
    j++;
  }
  // terms 1..j−1 are each short by ≤ their index; the true term j is ≤ j, and the tail after it ≤ that again.
  return [lo, lo + (j * (j - 1n)) / 2n + 2n * j + 1n];
}

/** [lo, hi, s] with lo/s ≤ exp(cn/cd) ≤ hi/s, s = 2^(prec+16), for any rational cn/cd (cd > 0). */
export function expInterval(cn: bigint, cd: bigint, prec: bigint): [bigint, bigint, bigint] {
  const S = 1n << (prec + 16n);
  let k = cn / cd;
  if (k * cd > cn) k -= 1n; // floor
  const [flo, fhi] = expTaylor(cn - k * cd, cd, S);
  const [e1lo, e1hi] = expTaylor(1n, 1n, S);
  let plo = S;
  let phi = S;
  const kk = k < 0n ? -k : k;
  for (let i = 0n; i < kk; i++) {
    plo = (plo * e1lo) / S;
    phi = (phi * e1hi + S - 1n) / S;
  }
  if (k < 0n) [plo, phi] = [(S * S) / phi, (S * S + plo - 1n) / plo];
  return [(plo * flo) / S, (phi * fhi + S - 1n) / S, S];
}

/**
 * Exact symmetric Skellam: Poisson(λ) − Poisson(λ), variance 2λ. A sum of independent Skellam(λ_i) is exactly
 * Skellam(Σλ_i): this is why the members' shares add up to the central mechanism with nothing left over.
 */
export function skellam(rng: RandomSource, lambda: Rational): number {
  return poisson(rng, lambda) - poisson(rng, lambda);
}

/**
 * Chernoff bound on ln P(X ≥ k) for X ~ Skellam(λ) (E e^{sX} = exp(2λ(cosh s − 1)), optimised at
 * s = asinh(k/(2λ))): 2λ(√(1 + (k/2λ)²) − 1) − k·asinh(k/(2λ)).
 */
export function skellamLogTail(lambda: number, k: number): number {
  if (k <= 0) return 0;
  const r = k / (2 * lambda);
  return 2 * lambda * (Math.hypot(1, r) - 1) - k * Math.asinh(r);
}

/**
 * Smallest integer B ≥ 0 with P(|X| > B) ≤ 2^log2Tail for X ~ Skellam(λ), by the two-sided Chernoff bound
 * (ln 2 + skellamLogTail(λ, B + 1)), with one nat of margin for the float64 evaluation.
 */
export function skellamTailBound(lambda: number, log2Tail: number): number {
  const target = log2Tail * Math.LN2 - 1;
  const ok = (bound: number) => Math.LN2 + skellamLogTail(lambda, bound + 1) <= target;
  let hi = Math.max(1, Math.ceil(Math.sqrt(2 * lambda)));
  while (!ok(hi)) hi *= 2;
  let lo = 0;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return ok(lo) ? lo : hi;
}
