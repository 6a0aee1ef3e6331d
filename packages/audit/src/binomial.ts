// The binomial distribution in double precision, in log space where the tails are tiny
// (the one-run bound lives at P ≈ 0.05 of Binomial(r, q) with q close to 1).
import { FedtwinError } from '@fedtwin/errors';
import { logGamma } from '@fedtwin/dp';

/** log P[X = k] for X ~ Binomial(n, p), given log p and log(1 − p) (so p near 1 keeps its precision). */
export function binomialLogPmf(n: number, k: number, logP: number, logQ: number): number {
  if (k < 0 || k > n) return -Infinity;
  // 0·log 0 = 0: the point masses at p ∈ {0, 1} come out exactly.
  const a = k === 0 ? 0 : k * logP;
  const b = n - k === 0 ? 0 : (n - k) * logQ;
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + a + b;
}

/** P[X ≥ k] for X ~ Binomial(n, p) (scipy: binom.sf(k − 1, n, p)). */
export function binomialUpperTail(n: number, k: number, p: number): number {
  checkBinomial(n, p);
  if (k <= 0) return 1;
  if (k > n) return 0;
  const { logP, logQ } = logs(p);
  return Math.min(1, sumExp(k, n, (j) => binomialLogPmf(n, j, logP, logQ)));
}

/** P[X = k] for X ~ Binomial(n, p) (scipy: binom.pmf(k, n, p)). */
export function binomialPmf(n: number, k: number, p: number): number {
  checkBinomial(n, p);
  if (!Number.isInteger(k)) return 0;
  const { logP, logQ } = logs(p);
  return Math.exp(binomialLogPmf(n, k, logP, logQ));
}

function logs(p: number): { logP: number; logQ: number } {
  return { logP: Math.log(p), logQ: Math.log1p(-p) };
}

/** Σ_{j=lo}^{hi} e^{f(j)}, scaled by the largest term so that no term underflows before it matters. */
function sumExp(lo: number, hi: number, f: (j: number) => number): number {
  const terms: number[] = [];
  let max = -Infinity;
  for (let j = lo; j <= hi; j++) {
    const t = f(j);
    terms.push(t);
    if (t > max) max = t;
  }
  if (max === -Infinity) return 0;
  let s = 0;
  for (const t of terms) s += Math.exp(t - max);
  return s * Math.exp(max);
}

function checkBinomial(n: number, p: number): void {
  if (!Number.isInteger(n) || n < 0) throw new FedtwinError('AUDIT_BAD_ARGUMENT', `binomial n must be an integer ≥ 0, got ${n}`);
  if (!(p >= 0 && p <= 1)) throw new FedtwinError('AUDIT_BAD_ARGUMENT', `binomial p must be in [0, 1], got ${p}`);
}
