// The exact samplers (CKS 2020 Bernoulli(exp(−γ)), discrete Laplace, discrete Gaussian; Poisson and Skellam):
// moments and chi-square goodness of fit on fixed seeds, the exact acceptance path on its own, the float64
// log-ratio against a compensated direct sum, and the Skellam tail bound against the exact tail.
import { describe, expect, it } from 'vitest';
import {
  bernoulliExpNeg, bernoulliExpNegBig, discreteGaussian, discreteLaplace, expInterval, osRandom, poisson, poissonLogRatio,
  poissonStats, poissonTuning, seededRandom, skellam, skellamLogTail, skellamTailBound, uniformBigInt, uniformInt,
} from '../src/index.ts';

/** Wilson–Hilferty upper quantile of χ²(k) at z standard deviations (z = 4.75: p ≈ 1e-6). */
function chi2Critical(k: number, z = 4.75): number {
  return k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3;
}

/**
 * Pearson's χ² of `samples` against pmf(k) over the integers: cells with expected count ≥ 20, the rest pooled
 * into two tail cells. Returns the statistic and degrees of freedom.
 */
function chiSquare(samples: number[], pmf: (k: number) => number, lo: number, hi: number): { stat: number; dof: number } {
  const n = samples.length;
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const cells: Array<{ obs: number; exp: number }> = [];
  let below = { obs: 0, exp: 0 };
  let inner = 0;
  for (let k = lo; k <= hi; k++) {
    const e = pmf(k) * n;
    if (e < 20 && cells.length === 0) {
      below.obs += counts.get(k) ?? 0;
      below.exp += e;
      continue;
    }
    if (e < 20) break;
    cells.push({ obs: counts.get(k) ?? 0, exp: e });
    inner += e;
  }
  const seen = cells.reduce((a, c) => a + c.obs, 0) + below.obs;
  const above = { obs: n - seen, exp: n - inner - below.exp };
  if (below.exp > 0) cells.push(below);
  if (above.exp > 1e-9) cells.push(above);
  let stat = 0;
  for (const c of cells) stat += (c.obs - c.exp) ** 2 / c.exp;
  return { stat, dof: cells.length - 1 };
}

const logFact = (k: number) => { let s = 0; for (let i = 2; i <= k; i++) s += Math.log(i); return s; };
const poissonPmf = (l: number) => (k: number) => (k < 0 ? 0 : Math.exp(-l + k * Math.log(l) - logFact(k)));

describe('uniform integers', () => {
  it('uniformInt and uniformBigInt stay in range and are unbiased across a non-power-of-two range', () => {
    const rng = seededRandom([11]);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[uniformInt(rng, 6)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    const big = 3n ** 50n;
    for (let i = 0; i < 200; i++) {
      const v = uniformBigInt(rng, big);
      expect(v >= 0n && v < big).toBe(true);
    }
    expect(uniformInt(osRandom(), 1)).toBe(0);
  });
});

describe('CKS 2020 exact samplers', () => {
  it('Bernoulli(exp(−γ)) has frequency exp(−γ) for γ below, at and above 1 (number and BigInt versions)', () => {
    const rng = seededRandom([1]);
    const n = 100_000;
    for (const [num, den] of [[3, 10], [1, 1], [5, 2], [0, 7]] as const) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < n; i++) {
        if (bernoulliExpNeg(rng, num, den)) a++;
        if (bernoulliExpNegBig(rng, BigInt(num), BigInt(den))) b++;
      }
      const p = Math.exp(-num / den);
      const sd = Math.sqrt((p * (1 - p)) / n) + 1e-12;
      expect(Math.abs(a / n - p)).toBeLessThan(5 * sd + 1e-12);
      expect(Math.abs(b / n - p)).toBeLessThan(5 * sd + 1e-12);
    }
  });

  it('discrete Laplace (scale 3) fits exp(−|y|/3) by χ², with a fixed seed', () => {
    const rng = seededRandom([2]);
    const xs = Array.from({ length: 100_000 }, () => discreteLaplace(rng, 3));
    const r = Math.exp(-1 / 3);
    const pmf = (y: number) => ((1 - r) / (1 + r)) * r ** Math.abs(y);
    const { stat, dof } = chiSquare(xs, pmf, -60, 60);
    expect(stat).toBeLessThan(chi2Critical(dof));
  });

  it('discrete Gaussian σ² = 5/2 fits exp(−y²/(2σ²)) by χ²; σ² = 400 has variance ≈ 400 (slightly below)', () => {
    const rng = seededRandom([3]);
    const xs = Array.from({ length: 100_000 }, () => discreteGaussian(rng, 5, 2));
    let z = 0;
    for (let y = -40; y <= 40; y++) z += Math.exp(-(y * y) / 5);
    const { stat, dof } = chiSquare(xs, (y) => Math.exp(-(y * y) / 5) / z, -40, 40);
    expect(stat).toBeLessThan(chi2Critical(dof));
    const ys = Array.from({ length: 50_000 }, () => discreteGaussian(rng, 400));
    const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
    const v = ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length;
    expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(400 / ys.length));
    expect(Math.abs(v - 400) / 400).toBeLessThan(0.03);
  });
});

describe('exact Poisson', () => {
  it('fits Poisson(λ) by χ² for λ = 3/10, 1, 5/2, 17 and 1000 (fixed seed)', () => {
    const rng = seededRandom([4]);
    for (const [num, den] of [[3, 10], [1, 1], [5, 2], [17, 1], [1000, 1]] as const) {
      const l = num / den;
      const xs = Array.from({ length: 60_000 }, () => poisson(rng, { num, den }));
      const { stat, dof } = chiSquare(xs, poissonPmf(l), 0, Math.ceil(l + 12 * Math.sqrt(l) + 20));
      expect(stat, `λ = ${l}`).toBeLessThan(chi2Critical(dof));
    }
  });

  it('the exact (BigInt) acceptance test alone gives the same law (every proposal through it)', () => {
    const rng = seededRandom([5]);
    const saved = poissonTuning.fastMargin;
    poissonTuning.fastMargin = Infinity;
    const before = poissonStats.exactTests;
    try {
      for (const [num, den] of [[5, 2], [40, 1]] as const) {
        const l = num / den;
        const xs = Array.from({ length: 6_000 }, () => poisson(rng, { num, den }));
        const { stat, dof } = chiSquare(xs, poissonPmf(l), 0, Math.ceil(l + 12 * Math.sqrt(l) + 20));
        expect(stat, `λ = ${l}`).toBeLessThan(chi2Critical(dof));
      }
    } finally {
      poissonTuning.fastMargin = saved;
    }
    expect(poissonStats.exactTests - before).toBeGreaterThanOrEqual(12_000);
  });

  it('large λ (10^7 and 2^40/3): mean and variance within 5 standard errors (a draw the exact test must settle at |y| ~ 10^6 takes a product tree, not hours)', () => {
    const rng = seededRandom([6]);
    for (const [num, den] of [[10_000_000 * 1024, 1024], [2 ** 40, 3]] as const) {
      const l = num / den;
      const n = 40_000;
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const x = poisson(rng, { num, den }) - l;
        s += x;
        s2 += x * x;
      }
      expect(Math.abs(s / n) / Math.sqrt(l / n)).toBeLessThan(5);
      // Var of the sample variance of a Poisson ≈ (2λ² + λ)/n
      expect(Math.abs(s2 / n - l) / Math.sqrt((2 * l * l + l) / n)).toBeLessThan(5);
    }
  });

  it('the float64 log-ratio is within 1e-9 of a compensated sum of logs (the fast test keeps a 1e-6 margin)', () => {
    for (const lambda of [1.5, 250.25, 1e6 + 0.5, 3e8]) {
      const m = Math.floor(lambda);
      const plan = { lambda, logLambda: Math.log(lambda), m };
      for (const y of [1, -1, 63, -63, 65, -65, 500, -500, 3000, -3000]) {
        if (m + y < 0) continue;
        // Kahan sum of ln(λ/(m+i)) or ln((m−i+1)/λ)
        let s = 0;
        let c = 0;
        const add = (v: number) => { const t = s + (v - c); c = (t - s) - (v - c); s = t; };
        if (y > 0) for (let i = 1; i <= y; i++) add(Math.log(lambda / (m + i)));
        else for (let i = 1; i <= -y; i++) add(Math.log((m - i + 1) / lambda));
        const got = poissonLogRatio(plan, y);
        expect(Math.abs(got - s), `λ ${lambda}, y ${y}`).toBeLessThan(1e-9 * (1 + Math.abs(s)));
      }
    }
  });

  it('expInterval brackets exp(c) for rational c of either sign', () => {
    for (const [cn, cd] of [[-3n, 2n], [7n, 3n], [0n, 1n], [-41n, 1n], [123456789n, 1000000000n]] as const) {
      const [lo, hi, s] = expInterval(cn, cd, 64n);
      const x = Math.exp(Number(cn) / Number(cd));
      expect(Number(lo) / Number(s)).toBeLessThanOrEqual(x * (1 + 1e-15));
      expect(Number(hi) / Number(s)).toBeGreaterThanOrEqual(x * (1 - 1e-15));
      // fixed point: the width is absolute (2^-64-ish of s), so tiny exp(c) is bracketed loosely in relative terms
      // until the caller raises the precision, as acceptExact does
      expect(Number(hi - lo) / Number(s)).toBeLessThan(1e-15 * Math.max(1, x));
      const [lo2, hi2] = expInterval(cn, cd, 256n);
      expect(Number(hi2 - lo2) / Number(lo2)).toBeLessThan(1e-15);
    }
  });
});

describe('Skellam', () => {
  it('Poisson(λ) − Poisson(λ) has mean 0 and variance 2λ', () => {
    const rng = seededRandom([7]);
    const lambda = { num: 12345, den: 1024 };
    const n = 60_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = skellam(rng, lambda);
      s += x;
      s2 += x * x;
    }
    const v = (2 * 12345) / 1024;
    expect(Math.abs(s / n) / Math.sqrt(v / n)).toBeLessThan(5);
    expect(Math.abs(s2 / n - v) / v).toBeLessThan(0.03);
  });

  it('the tail bound B holds: the exact P(|X| > B) (Bessel series, summed directly) is ≤ 2^target', () => {
    for (const [lambda, log2] of [[2, -20], [10, -40], [50.5, -60]] as const) {
      const B = skellamTailBound(lambda, log2);
      // exact pmf of Poisson(λ) − Poisson(λ) by convolution
      const K = Math.ceil(lambda + 40 * Math.sqrt(lambda) + 200);
      const p = Array.from({ length: K + 1 }, (_, k) => Math.exp(-lambda + k * Math.log(lambda) - logFact(k)));
      let tail = 0;
      for (let a = 0; a <= K; a++) for (let b = 0; b <= K; b++) if (Math.abs(a - b) > B) tail += p[a]! * p[b]!;
      expect(tail, `λ ${lambda}`).toBeLessThanOrEqual(2 ** log2);
      // and B is not wasteful: one less fails the Chernoff bound the function uses
      expect(Math.LN2 + skellamLogTail(lambda, B)).toBeGreaterThan(log2 * Math.LN2 - 1);
    }
  });
});
