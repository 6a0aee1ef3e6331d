// Numerics the accountant needs, all in double precision and written for accuracy in the tails:
// log-space sums, log|Γ|, erfc / log erfc and the normal CDF. No dependencies.

const HALF_LOG_2PI = 0.9189385332046727; // log(2π)/2
const INV_SQRT_PI = 0.5641895835477563; // 1/√π
const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const LOG_HALF = -0.6931471805599453;

/** log(e^a + e^b) without overflow; -Infinity stands for 0. */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log|e^a - e^b| and whether e^a >= e^b. */
export function logSubSign(a: number, b: number): { positive: boolean; log: number } {
  if (a > b) return { positive: true, log: a + Math.log1p(-Math.exp(b - a)) };
  if (a < b) return { positive: false, log: b + Math.log1p(-Math.exp(a - b)) };
  return { positive: true, log: -Infinity };
}

/**
 * log|Γ(x)| (like scipy's gammaln): +Infinity at the poles 0, -1, -2, …
 * Stirling's series for x ≥ 20 (truncation < 1e-19), upward shift below, reflection for x < 0.
 */
export function logGamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return Infinity;
  if (x <= 0 && Number.isInteger(x)) return Infinity;
  if (x === 1 || x === 2) return 0;
  if (x < 0) {
    // |Γ(x)| = π / (|sin(πx)| Γ(1-x)); reduce x mod 2 first so sin(πx) keeps its accuracy.
    const r = x - 2 * Math.round(x / 2);
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * r))) - logGamma(1 - x);
  }
  if (x < 20) {
    // Γ(x) = Γ(x+n) / (x(x+1)…(x+n-1)); the product stays far below overflow for n ≤ 20.
    let prod = 1;
    let y = x;
    while (y < 20) {
      prod *= y;
      y += 1;
    }
    return stirling(y) - Math.log(prod);
  }
  return stirling(x);
}

function stirling(x: number): number {
  const r = 1 / x;
  const r2 = r * r;
  const series =
    r * (1 / 12 + r2 * (-1 / 360 + r2 * (1 / 1260 + r2 * (-1 / 1680 + r2 * (1 / 1188 + r2 * (-691 / 360360 + r2 * (1 / 156)))))));
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + series;
}

/** log of the (generalized) binomial coefficient |C(n, k)| via log|Γ|, as scipy-based references do. */
export function logComb(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

// erf(x) for 0 ≤ x < 2 from the all-positive series e^{-x²} Σ 2^n x^{2n+1} / (2n+1)!! (no cancellation).
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

// erfcx(x) = e^{x²} erfc(x) for x ≥ 2 from Laplace's continued fraction (modified Lentz).
// erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
function erfcxCf(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return INV_SQRT_PI / f;
}

/** Complementary error function, relative error ~1e-14 or better over the whole real line. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // below the smallest subnormal
  return Math.exp(-x * x) * erfcxCf(x);
}

/** log(erfc(x)), finite far into the tail (where erfc itself underflows). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x < 2) return Math.log(erfc(x));
  return -x * x + Math.log(erfcxCf(x));
}

/** Standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** log Φ(x), accurate for very negative x. */
export function logNormalCdf(x: number): number {
  return LOG_HALF + logErfc(-x / Math.SQRT2);
}
