// Counts on the wire: the update body is a vector of reals that HE quantizes (clip, then round(x·scale) into
// [−qmax, qmax]), so a count vector travels in whole quanta: value = count · unit. At resolution 1 one count is one
// quantum (unit = clip / qmax) and a BFV sum of counts is an exact integer sum (up to the unbiased rounding of
// the noise's fractional part); the plaintext modulus sized for maxParticipants · qmax holds it. A member's
// value is its count plus its noise share, and both must fit in ±qmax quanta without clipping (clipping a noisy
// value would make the sum other than counts + Gaussian noise): the count is capped at qmax/2 quanta, and when
// the round's noise share is too wide for the other half, a quantum stands for s > 1 counts (s public: a
// function of σ and m), the counts then rounded stochastically, unbiased, adding at most s²/4 variance ≪ σ².
// In plaintext (float32) the unit is 1.
import type { JoinResponse } from '@fedtwin/protocol';

/** The wire's range: the real value of one quantum per count at resolution 1, and the largest quantum. */
export interface WireScale {
  unit: number;
  qmax: number;
}

/** One round's encoding. */
export interface CountUnits {
  /** Real value of one count on the wire. */
  unit: number;
  /** Largest count a member sends per cell (exact counts above it are capped: sensitivity stays ≤ 1). */
  cap: number;
  /** Counts per quantum (1 unless the noise share needs the room). */
  resolution: number;
}

/** Float32 holds every integer up to 2^24 exactly. */
const F32_EXACT = 2 ** 24;
/** Noise share kept inside the range up to this many standard deviations (P(|z| > 8) ≈ 1e-15 per cell). */
const SHARE_SDS = 8;

export async function wireScale(join: JoinResponse): Promise<WireScale> {
  const sa = join.secureAggregation;
  if (sa.scheme !== 'bfv') return { unit: 1, qmax: F32_EXACT };
  const { DEFAULTS, quantMax } = await import('@fedtwin/he');
  const qmax = quantMax(sa.params.quantBits ?? DEFAULTS.quantBits);
  return { unit: (sa.params.clip ?? DEFAULTS.clip) / qmax, qmax };
}

/** The encoding of a round whose noise share has std-dev `shareSigma` (σ/√m): same on every member. */
export function roundUnits(scale: WireScale, shareSigma: number): CountUnits {
  const half = Math.floor(scale.qmax / 2);
  const resolution = Math.max(1, Math.ceil((SHARE_SDS * shareSigma) / half));
  return { unit: scale.unit / resolution, cap: half * resolution, resolution };
}

/** Counts (noise included) as the update's values; capped cells are counted, never named. */
export function toWire(noisy: Float64Array, exact: Float64Array, u: CountUnits): { values: Float32Array; capped: number } {
  const values = new Float32Array(noisy.length);
  let capped = 0;
  for (let i = 0; i < noisy.length; i++) {
    const over = exact[i]! - u.cap;
    if (over > 0) capped++;
    values[i] = (over > 0 ? noisy[i]! - over : noisy[i]!) * u.unit;
  }
  return { values, capped };
}

/** The released counts after a round: the ones held plus the decrypted sum, back in count units. */
export function addReleased(global: Float32Array, sum: Float64Array, u: CountUnits): Float32Array {
  const next = new Float32Array(global.length);
  for (let i = 0; i < global.length; i++) next[i] = global[i]! + sum[i]! / u.unit;
  return next;
}
