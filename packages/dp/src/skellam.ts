// The distributed Skellam mechanism (Agarwal, Kairouz & Liu 2021, The Skellam Mechanism for Differentially
// Private Federated Learning, arXiv:2110.04995): each member clips its update, scales it to the integer grid,
// rounds it randomly (conditionally on a norm bound), and adds an integer Skellam share; the shares sum to one
// Skellam exactly, and the accountant bounds its RDP. Pure functions; randomness comes in as a RandomSource.
import { epsilonFor } from './accountant.ts';
import type { Conversion, EpsilonResult } from './conversion.ts';
import { rdpToEpsilon } from './conversion.ts';
import { skellam, skellamTailBound, type Rational } from './poisson.ts';
import { uniform53, type RandomSource } from './random.ts';
import { DEFAULT_ORDERS, type SampledGaussian, type SkellamParams } from './rdp.ts';
import { badArgument } from './validate.ts';

/**
 * RDP at order α of the multi-dimensional Skellam mechanism: integer vectors of L2 / L1 sensitivity Δ₂, Δ₁ plus
 * Sk(μ) = Poisson(μ) − Poisson(μ) per coordinate (variance 2μ). Agarwal, Kairouz & Liu 2021, Theorem 3.5 /
 * Corollary 3.6 (stated for integer α > 1):
 *   αΔ₂²/(4μ) + min(((2α−1)Δ₂² + 6Δ₁)/(16μ²), 3Δ₁/(4μ)).
 * Other orders get +Infinity, so a conversion never picks them. The first term is the RDP of the continuous
 * Gaussian of the same variance 2μ; the second is what integer noise costs on top.
 */
export function skellamRdpOrder(p: SkellamParams, alpha: number): number {
  if (!Number.isInteger(alpha) || alpha < 2) return Infinity;
  const { l1, l2, mu } = p;
  if (l2 === 0) return 0;
  return (alpha * l2 * l2) / (4 * mu) + Math.min(((2 * alpha - 1) * l2 * l2 + 6 * l1) / (16 * mu * mu), (3 * l1) / (4 * mu));
}

/**
 * Validates Skellam parameters (DP_BAD_ARGUMENT naming the field): μ > 0 and finite, Δ₂ ≥ 0, and Δ₁ ≥ Δ₂
 * (on integers ‖x‖₁ ≥ ‖x‖₂, so a smaller Δ₁ cannot be a true bound and would under-report the second term).
 */
export function checkSkellamParams(p: unknown, name = 'skellam'): SkellamParams {
  if (typeof p !== 'object' || p === null) {
    throw badArgument(`${name} must be an object { mu, l1, l2 }, got ${JSON.stringify(p)}`, 'e.g. { mu: 18, l1: 1, l2: 1 }: the summed noise Poisson(μ) − Poisson(μ) and the integer sensitivities');
  }
  const o = p as Record<string, unknown>;
  const fin = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!fin(o.mu) || !(o.mu > 0)) throw badArgument(`${name}.mu must be a finite number > 0, got ${JSON.stringify(o.mu)}`, 'μ is the Poisson mean of each half of the summed noise (variance 2μ)');
  if (!fin(o.l2) || !(o.l2 > 0)) throw badArgument(`${name}.l2 must be a finite number > 0, got ${JSON.stringify(o.l2)}`, 'the L2 sensitivity of one unit on the integer grid');
  if (!fin(o.l1) || !(o.l1 >= o.l2)) throw badArgument(`${name}.l1 must be a finite number ≥ l2 (${String(o.l2)}), got ${JSON.stringify(o.l1)}`, 'on integers ‖x‖₁ ≥ ‖x‖₂: a count vector where one unit changes one cell by 1 has l1 = l2 = 1');
  return { mu: o.mu, l1: o.l1, l2: o.l2 };
}

/** The noise multiplier a Skellam step amounts to: √(2μ)/Δ₂, the Gaussian of the same variance and sensitivity. */
export function skellamNoiseMultiplier(p: SkellamParams): number {
  return Math.sqrt(2 * p.mu) / p.l2;
}

/**
 * A Skellam step in the accountant's form: q = 1, z = √(2μ)/Δ₂ (for display and for old readers) and the
 * Skellam parameters, which are what the RDP is computed from.
 */
export function skellamMechanism(p: SkellamParams & { steps: number }): SampledGaussian {
  const skellam = checkSkellamParams({ mu: p.mu, l1: p.l1, l2: p.l2 });
  return { sampleRate: 1, noiseMultiplier: skellamNoiseMultiplier(skellam), steps: p.steps, skellam };
}

/**
 * L2 norm bound after conditional randomized rounding of a vector of L2 norm ≤ c (already scaled) in d
 * dimensions, accepting a rounding only when its norm meets the bound (Kairouz, Liu & Steinke 2021, DDG,
 * Theorem 1 / Lemma 24): min(c + √d, √(c² + d/4 + √(2 ln(1/β))·(c + √d/2))). Each try fails with probability ≤ β.
 */
export function roundedL2Bound(c: number, d: number, beta: number): number {
  const b1 = c + Math.sqrt(d);
  const b2 = Math.sqrt(c * c + d / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (c + Math.sqrt(d) / 2));
  return Math.min(b1, b2);
}

/** L1 bound of an integer vector of L2 norm ≤ l2 in d dimensions: ‖x‖₁ ≤ √d·‖x‖₂ and, on integers, ≤ ‖x‖₂². */
export function roundedL1Bound(l2: number, d: number): number {
  return l2 * Math.min(Math.sqrt(d), l2);
}

/** β of the conditional rounding: each try is accepted with probability ≥ 1 − e^{−1/2} (≈ 0.39), as in DDG. */
export const ROUNDING_BETA = Math.exp(-0.5);
/**
 * log₂ of the probability, per coordinate, that a member's Skellam share is redrawn for exceeding the tail bound
 * B the integer range is sized for (the share is then Skellam conditioned on |X| ≤ B; docs/privacy.md).
 */
export const SKELLAM_TAIL_LOG2 = -1100;
/** Denominator of the per-share Poisson mean λ (rounded up to a multiple of 2^-10, so it is an exact rational). */
export const LAMBDA_DENOMINATOR = 1024;

export interface SkellamSiteInit {
  /** Site-level L2 clip C of an update. */
  clip: number;
  /** Per-coordinate clamp c∞ ≤ C applied before scaling (the HE encoding's clip). */
  coordinateClip: number;
  /** z: the summed noise has standard deviation ≥ z·Δ₂ (Δ₂ the rounded sensitivity), as z·C for the Gaussian. */
  noiseMultiplier: number;
  /** The fewest shares any published sum holds: each share carries 1/minParticipants of the variance. */
  minParticipants: number;
  /** Number of values d in the update. */
  dimension: number;
  /** Largest |integer| one member may send (the HE encoding's quantMax). */
  quantMax: number;
}

export interface SkellamSite {
  /** The L2 clip C of an update. */
  clip: number;
  /** Integers per real unit: the member sends round(γ·x) + noise. */
  scale: number;
  coordinateClip: number;
  /** Each member's share per coordinate: Poisson(λ) − Poisson(λ), λ = num/den. */
  lambda: Rational;
  /** No share coordinate exceeds this in absolute value (redrawn beyond it, see SKELLAM_TAIL_LOG2). */
  tailBound: number;
  /** Largest |rounded signal| per coordinate: ⌈γ·c∞⌉. */
  signalBound: number;
  /** What the accountant composes per round, at minParticipants shares (μ = λ·m, variance 2μ). */
  params: SkellamParams;
  /** The L2 bound the conditional rounding enforces (= params.l2). */
  l2Bound: number;
  /** √(2μ) / Δ₂: the noise multiplier the summed noise amounts to. */
  noiseMultiplier: number;
}

/** λ for a share: variance target V/m split in two Poissons, rounded up to a multiple of 1/LAMBDA_DENOMINATOR. */
function shareLambda(variance: number, m: number): Rational {
  const num = Math.max(1, Math.ceil((variance / (2 * m)) * LAMBDA_DENOMINATOR));
  if (!Number.isSafeInteger(num)) throw badArgument(`the Skellam share variance ${variance / m} is too large`, 'lower the noise multiplier or the quantization scale');
  return { num, den: LAMBDA_DENOMINATOR };
}

/** The mechanism at scale γ (undefined if it does not fit the integer range). */
function siteAt(init: SkellamSiteInit, scale: number): SkellamSite | undefined {
  const { clip, noiseMultiplier: z, minParticipants: m, dimension: d } = init;
  const cInf = Math.min(init.coordinateClip, clip);
  const l2 = roundedL2Bound(scale * clip, d, ROUNDING_BETA);
  const lambda = shareLambda((z * l2) ** 2, m);
  const lam = lambda.num / lambda.den;
  const tailBound = skellamTailBound(lam, SKELLAM_TAIL_LOG2);
  const signalBound = Math.ceil(scale * cInf);
  if (signalBound + tailBound > init.quantMax) return undefined;
  const mu = lam * m; // exact: a multiple of m/1024
  return {
    clip, scale, coordinateClip: cInf, lambda, tailBound, signalBound, l2Bound: l2,
    params: { l1: roundedL1Bound(l2, d), l2, mu },
    noiseMultiplier: Math.sqrt(2 * mu) / l2,
  };
}

/**
 * The largest scale γ = quantMax / (c∞ · 2^(j/8)), j = 0, 1, 2, …, at which the rounded signal plus a share's
 * tail bound fits in ±quantMax, and the mechanism it gives. A coarse grid of scales, so every member derives the
 * same γ from the same inputs. DP_BAD_ARGUMENT if none down to γ·C = 1 fits.
 */
export function skellamSite(init: SkellamSiteInit): SkellamSite {
  const { clip, coordinateClip, noiseMultiplier: z, minParticipants: m, dimension: d, quantMax } = init;
  if (!(clip > 0) || !(coordinateClip > 0) || !(z > 0) || !(Number.isInteger(m) && m >= 1) || !(Number.isInteger(d) && d >= 1) || !(Number.isInteger(quantMax) && quantMax >= 1)) {
    throw badArgument(`skellamSite: clip ${clip}, coordinateClip ${coordinateClip}, noiseMultiplier ${z} must be > 0, minParticipants ${m}, dimension ${d}, quantMax ${quantMax} integers ≥ 1`, 'pass the site-level policy and the HE encoding');
  }
  const cInf = Math.min(coordinateClip, clip);
  for (let j = 0; j < 8 * 64; j++) {
    const scale = quantMax / (cInf * 2 ** (j / 8));
    if (scale * clip < 1) break;
    const s = siteAt(init, scale);
    if (s) return s;
  }
  throw badArgument(`site-level Skellam noise (z = ${z}, ${m} shares) does not fit the ±${quantMax} integer range of the encoding at any useful scale`, 'raise secureAggregation.params.quantBits (e.g. 20) or lower maxParticipants');
}

export interface SkellamShare {
  values: Int32Array;
  /** L2 norm of the update before clipping. */
  norm: number;
  scaled: boolean;
  /** Randomized roundings drawn until one met the L2 bound. */
  roundingTries: number;
}

/**
 * A member's integer update under the distributed Skellam mechanism: clip to L2 norm C, clamp each value to
 * ±c∞ (a contraction: the norm only shrinks), scale by γ, round each value to floor or ceiling with probability
 * given by its fraction (unbiased), redrawing the whole rounding until its L2 norm is ≤ Δ₂ (conditional rounding:
 * the sensitivity is Δ₂ whatever the data), then add a Skellam(λ) share per value, each redrawn beyond the tail
 * bound B. Every value then lies within ±(⌈γc∞⌉ + B) ≤ quantMax.
 */
export function skellamShare(delta: Float32Array | Float64Array, site: SkellamSite, rng: RandomSource): SkellamShare {
  const d = delta.length;
  let sq = 0;
  for (let i = 0; i < d; i++) sq += delta[i]! * delta[i]!;
  const norm = Math.sqrt(sq);
  const C = site.clip;
  const factor = norm > C ? C / norm : 1;
  const scaled = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const x = Math.min(site.coordinateClip, Math.max(-site.coordinateClip, delta[i]! * factor));
    if (x !== x) throw badArgument(`value ${i} of the update is NaN`, 'the update diverged; check training');
    scaled[i] = x * site.scale;
  }
  const bound2 = site.l2Bound * site.l2Bound;
  const values = new Int32Array(d);
  let tries = 0;
  for (;;) {
    tries++;
    let n2 = 0;
    for (let i = 0; i < d; i++) {
      const y = scaled[i]!;
      const f = Math.floor(y);
      // up with probability frac(y), to 2^-53 (the rounding only moves the signal: the conditioning below, not
      // this coin, is what bounds the sensitivity)
      const r = f + (uniform53(rng) < (y - f) * 9007199254740992 ? 1 : 0);
      values[i] = r;
      n2 += r * r;
    }
    if (n2 <= bound2) break;
    if (tries > 10_000) throw badArgument('conditional rounding did not meet its bound in 10 000 tries', 'internal: the bound is met with probability ≥ 0.39 per try');
  }
  const limit = site.tailBound;
  for (let i = 0; i < d; i++) {
    let x: number;
    do x = skellam(rng, site.lambda);
    while (x > limit || x < -limit);
    values[i] = values[i]! + x;
  }
  return { values, norm, scaled: factor < 1, roundingTries: tries };
}

/** ε of `steps` rounds of a Skellam mechanism (integer default orders), δ as given. */
export function skellamEpsilon(init: { params: SkellamParams; steps: number; delta: number; orders?: readonly number[]; conversion?: Conversion }): EpsilonResult {
  const orders = init.orders ?? DEFAULT_ORDERS;
  const rdp = orders.map((a) => skellamRdpOrder(init.params, a) * init.steps);
  return rdpToEpsilon({ orders, rdp, delta: init.delta, conversion: init.conversion ?? 'improved' });
}

/** ε of the continuous Gaussian with the same variance and L2 sensitivity, at the same integer orders (for comparison). */
export function gaussianEpsilonAtIntegerOrders(init: { noiseMultiplier: number; steps: number; delta: number }): EpsilonResult {
  return epsilonFor({ sampleRate: 1, noiseMultiplier: init.noiseMultiplier, steps: init.steps, delta: init.delta, orders: DEFAULT_ORDERS.filter((a) => Number.isInteger(a)) });
}

/**
 * Smallest noise multiplier z (to 1e-12 relative) whose Skellam site mechanism spends at most `epsilon` over
 * `steps` rounds; bisection like noiseMultiplierFor. The returned z meets the target.
 */
export function skellamNoiseFor(init: Omit<SkellamSiteInit, 'noiseMultiplier'> & { epsilon: number; steps: number; delta: number }): { noiseMultiplier: number; epsilon: number; site: SkellamSite } {
  const eps = (z: number) => {
    const site = skellamSite({ ...init, noiseMultiplier: z });
    return { site, epsilon: skellamEpsilon({ params: site.params, steps: init.steps, delta: init.delta }).epsilon };
  };
  if (!(init.epsilon > 0) || !Number.isFinite(init.epsilon)) throw badArgument(`epsilon must be finite and > 0, got ${init.epsilon}`, 'e.g. 8');
  let hi = 1;
  let atHi = eps(hi);
  let lo: number;
  if (atHi.epsilon <= init.epsilon) {
    lo = hi / 2;
    while (eps(lo).epsilon <= init.epsilon) {
      hi = lo;
      lo /= 2;
      if (lo < 2 ** -20) break;
    }
    atHi = eps(hi);
  } else {
    do {
      lo = hi;
      hi *= 2;
      if (hi > 2 ** 20) throw badArgument(`target ε ${init.epsilon} is not reachable with Skellam noise up to z = 2^20`, 'raise the target ε or δ');
      atHi = eps(hi);
    } while (atHi.epsilon > init.epsilon);
  }
  while (hi - lo > 1e-12 * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    const at = eps(mid);
    if (at.epsilon <= init.epsilon) {
      hi = mid;
      atHi = at;
    } else lo = mid;
  }
  return { noiseMultiplier: hi, epsilon: atHi.epsilon, site: atHi.site };
}
