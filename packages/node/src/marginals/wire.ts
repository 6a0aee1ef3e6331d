// Counts on the wire: the update body is a vector that HE sums as integers in [−qmax, qmax] (quanta), so a count
// vector travels in whole quanta: one count is one quantum (unit = clip / qmax in real terms) and a BFV sum of counts
// is an exact integer sum. A member's value is its count plus its integer Skellam share (noise.ts), and both must fit
// in ±qmax quanta without clipping (clipping a noisy value would make the sum other than counts + Sk(μ)): the count is
// capped at qmax/2 quanta and the share is drawn within ±B (shareBound), which must fit the other half. Under BFV the
// member hands the integers to the encryption as they are (`quanta`), so no float rounding touches them. In plaintext
// (float32, exact for integers below 2^24) the unit is 1.
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

export async function wireScale(join: Pick<JoinResponse, 'secureAggregation'>): Promise<WireScale> {
  const sa = join.secureAggregation;
  if (sa.scheme === 'secagg') {
    // Masked integers: the same 16-bit range as BFV's, so the count and its Skellam share fit ±qmax quanta.
    const { DEFAULT_VALUE_BOUND } = await import('@fedtwin/secagg');
    return { unit: sa.clip / DEFAULT_VALUE_BOUND, qmax: DEFAULT_VALUE_BOUND };
  }
  if (sa.scheme !== 'bfv') return { unit: 1, qmax: F32_EXACT };
  const { DEFAULTS, quantMax } = await import('@fedtwin/he');
  const qmax = quantMax(sa.params.quantBits ?? DEFAULTS.quantBits);
  return { unit: (sa.params.clip ?? DEFAULTS.clip) / qmax, qmax };
}

/**
 * The encoding of a round whose noise shares lie within ±`shareBound` counts: same on every member. Resolution 1 (one
 * count per quantum) when the bound fits half the range; otherwise a quantum would have to stand for several counts,
 * which integer noise cannot do exactly: countLocal refuses that round (NODE_NOISE_RANGE).
 */
export function roundUnits(scale: WireScale, shareBound: number): CountUnits {
  const half = Math.floor(scale.qmax / 2);
  const resolution = Math.max(1, Math.ceil(shareBound / half));
  return { unit: scale.unit / resolution, cap: half * resolution, resolution };
}

/**
 * Counts (noise included) as the update's values, and at resolution 1 as whole quanta (what BFV encrypts as is);
 * capped cells are counted, never named.
 */
export function toWire(noisy: Float64Array, exact: Float64Array, u: CountUnits): { values: Float32Array; quanta: Int32Array | undefined; capped: number } {
  const values = new Float32Array(noisy.length);
  const quanta = u.resolution === 1 ? new Int32Array(noisy.length) : undefined;
  let capped = 0;
  for (let i = 0; i < noisy.length; i++) {
    const over = exact[i]! - u.cap;
    if (over > 0) capped++;
    const v = over > 0 ? noisy[i]! - over : noisy[i]!;
    values[i] = v * u.unit;
    if (quanta) quanta[i] = v;
  }
  return { values, quanta, capped };
}

/** The released counts after a round: the ones held plus the decrypted sum, back in count units. */
export function addReleased(global: Float32Array, sum: Float64Array, u: CountUnits): Float32Array {
  const next = new Float32Array(global.length);
  for (let i = 0; i < global.length; i++) next[i] = global[i]! + sum[i]! / u.unit;
  return next;
}
