// The tail of the DP noise sampler, and what its finite precision costs in δ.
//
// A ziggurat (rng.ts) draws |Z| > r from Marsaglia's exponential tail: x = −ln(u₁)/r, accepted when
// −2·ln(u₂) ≥ x². With 32-bit uniforms −ln u ≤ ln 2³³, which cuts the output at |Z| ≤ 10.087: the
// noise is then a truncated Gaussian, and a neighbouring dataset that shifts the sum by Δ = C puts
// mass Φ̄(10.087 − 1/z) where the other dataset's output has none (1.8e-7 extra δ per step at z = 0.2).
// Here the tail draws `openUniform`s instead, which reach down to 2^-1045: the largest |Z| the DP
// sampler can return is r + √(2·1045·ln 2) ≈ 41.50, and the extra δ at any z ≥ MIN_NOISE_MULTIPLIER is
// below 10^-330 per step even for 10⁹ noised coordinates — under the smallest double, so δ as
// accounted is exact to float64.

/** r of the 128-layer ziggurat (Marsaglia & Tsang 2000): the right edge of the base strip. */
export const ZIGGURAT_R = 3.442619855899;

/** DP-SGD refuses noise multipliers below this (MODELS_NOISE_TOO_SMALL): at z = 0.5 the sampler's
 *  truncation adds < 10^-330 to δ per step (samplerTruncationLog10Delta); much smaller z would also
 *  give ε that no release could defend. */
export const MIN_NOISE_MULTIPLIER = 0.5;

/** Zero 32-bit words after which openUniform stops going lower (probability 2^-992 of getting there). */
const MAX_ZERO_WORDS = 31;

/**
 * A uniform in (0, 1) from a u32 stream: the midpoint (k + ½)·2^-52 of one of 2^52 equal cells, so
 * 53 significant bits, exactly representable, never 0 or 1 (−ln u is finite). While the leading word
 * is 0 (probability 2^-32 each time) the true uniform lies in the lowest 2^-32 of the current
 * interval, so the interval shrinks by 2^-32 and the next word is read: the resolution stays 2^-52
 * relative to the interval at every scale, down to 2^-1045 (−ln u ≤ 1045·ln 2 ≈ 724). Two words per
 * draw in all but 2^-32 of the cases.
 */
export function openUniform(u32: () => number): number {
  let scale = 2 ** -52;
  let hi = u32();
  for (let k = 0; hi === 0 && k < MAX_ZERO_WORDS; k++) {
    scale *= 2 ** -32;
    hi = u32();
  }
  return (hi * 1048576 + (u32() >>> 12) + 0.5) * scale;
}

/** The smallest value openUniform can return: ½·2^-52·2^(-32·31) = 2^-1045. */
const OPEN_UNIFORM_MIN = 2 ** -1045;

/** Marsaglia's tail beyond r on openUniform draws: returns x ≥ 0, the output being ±(r + x). */
export function gaussianTailFrom(u32: () => number): number {
  for (;;) {
    const x = -Math.log(openUniform(u32)) / ZIGGURAT_R;
    const y = -Math.log(openUniform(u32));
    if (y + y >= x * x) return x;
  }
}

/** The largest |Z| the DP sampler returns: an accepted tail x needs 2y ≥ x² with y ≤ −ln(2^-1045). */
export const SAMPLER_MAX_ABS_Z = ZIGGURAT_R + Math.sqrt(-2 * Math.log(OPEN_UNIFORM_MIN));

/**
 * log10 Φ̄(t) = log10 P(N(0,1) > t), also where Φ̄(t) itself underflows a double (t > 38.5). t < 3:
 * Φ̄ = ½·erfc(t/√2) from erf's positive-term series; t ≥ 3: Φ̄ = φ(t)·R(t) with Mills' ratio R as a
 * continued fraction, evaluated in log space. Relative error < 1e-12 (tested against 30-digit values).
 */
export function log10GaussianTail(t: number): number {
  if (!Number.isFinite(t)) return t > 0 ? -Infinity : 0;
  if (t < 0) return Math.log10(1 - 10 ** log10GaussianTail(-t));
  if (t < 3) {
    // erf(x) = 2/√π·e^{−x²}·Σ_n 2ⁿx^{2n+1}/(1·3·…·(2n+1)): every term positive, no cancellation.
    const x = t / Math.SQRT2, x2 = x * x;
    let term = x, sum = x;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    const erf = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
    return Math.log10(0.5 * (1 - erf));
  }
  // R(t) = 1/(t + 1/(t + 2/(t + 3/(t + …)))), evaluated bottom-up; 400 levels converge to 1e-16 at t = 3.
  let f = t;
  for (let n = 400; n >= 1; n--) f = t + n / f;
  const lnTail = -0.5 * t * t - 0.5 * Math.log(2 * Math.PI) - Math.log(f);
  return lnTail / Math.LN10;
}

/**
 * log10 of the δ one DP-SGD step loses to the sampler's cut at |Z| ≤ SAMPLER_MAX_ABS_Z, for noise
 * multiplier z and `coordinates` noised values. Model: each coordinate is N(0, 1) conditioned on
 * |Z| ≤ T (inside, density ratios between neighbours are the Gaussian ones; the normalising constants
 * cancel). Neighbours shift the mean by Δ with ‖Δ‖₂ ≤ 1/z (in noise units); an output the other
 * dataset cannot produce needs some coordinate past T − |Δⱼ| ≥ T − 1/z, so the extra δ is at most
 * coordinates · Φ̄(T − 1/z) (union bound).
 */
export function samplerTruncationLog10Delta(z: number, coordinates: number): number {
  return Math.log10(coordinates) + log10GaussianTail(SAMPLER_MAX_ABS_Z - 1 / z);
}
