// Counts on the wire: the update body is a vector of reals that HE quantizes (clip, then round(x·scale)), so
// a count vector travels in units of one quantum: value = count · unit with unit = clip / qmax. A BFV sum of
// counts is then an exact integer sum (up to the rounding of the noise's fractional part, unbiased), and
// the plaintext modulus sized for maxParticipants · qmax holds it. In plaintext (float32) the unit is 1.
import type { JoinResponse } from '@fedtwin/protocol';

export interface CountUnits {
  /** Real value of one count on the wire. */
  unit: number;
  /** Largest count a member sends per cell (exact counts above it are capped: sensitivity stays ≤ 1). */
  cap: number;
}

/** Float32 holds every integer up to 2^24 exactly. */
const F32_EXACT = 2 ** 24;

export async function countUnits(join: JoinResponse): Promise<CountUnits> {
  const sa = join.secureAggregation;
  if (sa.scheme !== 'bfv') return { unit: 1, cap: F32_EXACT / 2 };
  const { DEFAULTS, quantMax } = await import('@fedtwin/he');
  const qmax = quantMax(sa.params.quantBits ?? DEFAULTS.quantBits);
  const clip = sa.params.clip ?? DEFAULTS.clip;
  // Half the quantized range for the count, the rest for its noise share (far beyond any σ the budget gives).
  return { unit: clip / qmax, cap: Math.floor(qmax / 2) };
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
