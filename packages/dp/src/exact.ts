// Exact samplers of Canonne, Kamath & Steinke 2020 (The Discrete Gaussian for Differential Privacy,
// arXiv:2004.00010, Algorithms 1–3): Bernoulli(exp(−γ)) for rational γ, the discrete Laplace and the discrete
// Gaussian. Only uniform integers and integer comparisons: no floating point touches the distribution, so the
// output law is exactly the stated one (no Mironov-2012 float artefacts).
import { uniformBigInt, uniformInt, type RandomSource } from './random.ts';
import { badArgument } from './validate.ts';

const SAFE = 9007199254740991;

/** Bernoulli(num/den), 0 ≤ num ≤ den, den ≥ 1 (safe integers). */
export function bernoulli(rng: RandomSource, num: number, den: number): boolean {
  return uniformInt(rng, den) < num;
}

/** Bernoulli(num/den) for BigInt num, den. */
export function bernoulliBig(rng: RandomSource, num: bigint, den: bigint): boolean {
  return uniformBigInt(rng, den) < num;
}

/**
 * Bernoulli(exp(−num/den)) for integers num ≥ 0, den ≥ 1 (CKS Algorithm 1). γ ≤ 1: K counts successes of
 * Bernoulli(γ/1), Bernoulli(γ/2), … until the first failure; P(K odd) = exp(−γ). γ > 1: ⌊γ⌋ independent
 * Bernoulli(exp(−1)) and one Bernoulli(exp(−frac γ)), all must succeed.
 */
export function bernoulliExpNeg(rng: RandomSource, num: number, den: number): boolean {
  if (!(Number.isSafeInteger(num) && num >= 0 && Number.isSafeInteger(den) && den >= 1)) {
    throw badArgument(`bernoulliExpNeg needs integers num ≥ 0, den ≥ 1, got ${num}/${den}`, 'pass γ as a ratio of safe integers');
  }
  if (num > den) {
    const whole = Math.floor(num / den);
    for (let k = 0; k < whole; k++) if (!expNegUnit(rng, 1, 1)) return false;
    return expNegUnit(rng, num - whole * den, den);
  }
  return expNegUnit(rng, num, den);
}

/** γ = num/den ∈ [0, 1]: Bernoulli(γ/K) as uniformInt(den·K) < num while den·K is a safe integer. */
function expNegUnit(rng: RandomSource, num: number, den: number): boolean {
  let k = 1;
  for (;;) {
    const d = den * k;
    const success = d <= SAFE ? uniformInt(rng, d) < num : bernoulliBig(rng, BigInt(num), BigInt(den) * BigInt(k));
    if (!success) return (k & 1) === 1;
    k++;
  }
}

/** Bernoulli(exp(−num/den)) for BigInt num ≥ 0, den ≥ 1 (CKS Algorithm 1). */
export function bernoulliExpNegBig(rng: RandomSource, num: bigint, den: bigint): boolean {
  if (num < 0n || den < 1n) throw badArgument(`bernoulliExpNegBig needs num ≥ 0, den ≥ 1, got ${num}/${den}`, 'pass γ as a ratio of integers');
  let n = num;
  if (n > den) {
    const whole = n / den;
    for (let k = 0n; k < whole; k++) if (!expNegUnit(rng, 1, 1)) return false;
    n -= whole * den;
  }
  let k = 1n;
  for (;;) {
    if (!(uniformBigInt(rng, den * k) < n)) return (k & 1n) === 1n;
    k++;
  }
}

/**
 * Discrete Laplace with scale t/s: P(Y = y) ∝ exp(−|y|·s/t) over all integers (CKS Algorithm 2), for safe
 * integers s, t ≥ 1.
 */
export function discreteLaplace(rng: RandomSource, t: number, s = 1): number {
  if (!(Number.isSafeInteger(t) && t >= 1 && Number.isSafeInteger(s) && s >= 1)) {
    throw badArgument(`discreteLaplace needs integers t, s ≥ 1, got t = ${t}, s = ${s}`, 'the scale is t/s');
  }
  for (;;) {
    const u = uniformInt(rng, t);
    if (!bernoulliExpNeg(rng, u, t)) continue;
    let v = 0;
    while (expNegUnit(rng, 1, 1)) v++;
    const y = Math.floor((u + t * v) / s);
    const negative = (rng.uint32() & 1) === 1;
    if (negative && y === 0) continue;
    return negative ? -y : y;
  }
}

/** ⌊√n⌋ for a BigInt n ≥ 0 (Newton's method on integers). */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/**
 * Discrete Gaussian N_Z(0, σ²) with σ² = num/den rational (CKS Algorithm 3): P(Y = y) ∝ exp(−y²/(2σ²)).
 * Proposal: discrete Laplace of scale t = ⌊σ⌋ + 1; acceptance Bernoulli(exp(−(|y| − σ²/t)²/(2σ²))), whose
 * exponent (|y|·t·den − num)² / (2·num·den·t²) is evaluated exactly in BigInt.
 */
export function discreteGaussian(rng: RandomSource, num: number | bigint, den: number | bigint = 1): number {
  const a = BigInt(num);
  const b = BigInt(den);
  if (a <= 0n || b <= 0n) throw badArgument(`discreteGaussian needs σ² = num/den > 0, got ${a}/${b}`, 'pass the variance as a ratio of positive integers');
  const t = isqrt(a / b) + 1n; // ⌊σ⌋ + 1 (⌊√⌊σ²⌋⌋ = ⌊σ⌋)
  if (t > BigInt(SAFE)) throw badArgument('discreteGaussian: σ is too large (> 2^53)', 'scale the problem down');
  const tn = Number(t);
  const gammaDen = 2n * a * b * t * t;
  for (;;) {
    const y = discreteLaplace(rng, tn);
    const diff = BigInt(Math.abs(y)) * t * b - a;
    if (bernoulliExpNegBig(rng, diff * diff, gammaDen)) return y;
  }
}
