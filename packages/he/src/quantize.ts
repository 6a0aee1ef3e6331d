// Fixed-point quantization with unbiased stochastic rounding, deterministic given a seed.
// The random draw for value i depends only on (seed, i), so any split of a vector across workers
// produces the same integers as quantizing it in one piece.
import { randomBytes } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';

export interface QuantizeOptions {
  /** Integer units per real unit: the quantized value is round_stochastic(x · scale). */
  scale: number;
  /** Values are clipped to [-clip, clip] first. */
  clip: number;
  /** Seed of the rounding stream (uint32 pair); random when omitted. Same seed ⇒ same integers. */
  seed?: QuantSeed;
  /** Index of values[0] within the whole vector (used when quantizing a slice). */
  offset?: number;
}

export type QuantSeed = number | readonly [number, number];

export interface Quantized {
  values: Int32Array;
  /** How many inputs lay outside [-clip, clip] and were clipped. */
  clipped: number;
}

/** A fresh random seed (uint32 pair). */
export function randomSeed(): [number, number] {
  const b = randomBytes(8);
  return [b.readUInt32LE(0), b.readUInt32LE(4)];
}

/** Normalizes a seed to two uint32 keys. */
export function seedKeys(seed: QuantSeed): [number, number] {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new FedtwinError('HE_BAD_ARGUMENT', `seed must be a non-negative safe integer, got ${seed}`, { hint: 'pass e.g. seed: 42' });
    return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
  }
  if (!Array.isArray(seed) || seed.length !== 2 || !seed.every((k) => Number.isInteger(k) && k >= 0 && k < 4294967296)) {
    throw new FedtwinError('HE_BAD_ARGUMENT', 'seed must be a number or a pair of uint32', { hint: 'pass e.g. seed: [1, 2]' });
  }
  return [seed[0], seed[1]];
}

/** lowbias32 (a bijective 32-bit mixer); two rounds keyed by the seed give a counter-based stream. */
function mix(i: number, k0: number, k1: number): number {
  let x = (i ^ k0) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  x = (x ^ (x >>> 16) ^ k1) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Clips to [-clip, clip], multiplies by scale and rounds stochastically: floor(y) + 1 with probability
 * frac(y), so E[q] = y exactly (up to the 2^-32 resolution of the draw). Rejects NaN and ±Infinity.
 */
export function quantize(values: ArrayLike<number>, opts: QuantizeOptions): Quantized {
  const { scale, clip } = opts;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new FedtwinError('HE_BAD_ARGUMENT', `scale must be finite and > 0, got ${scale}`, { hint: 'use scale = (2^(bits-1) - 1) / clip' });
  if (!(clip > 0) || !Number.isFinite(clip)) throw new FedtwinError('HE_BAD_ARGUMENT', `clip must be finite and > 0, got ${clip}`, { hint: 'use the DP clipping bound' });
  const [k0, k1] = seedKeys(opts.seed ?? randomSeed());
  const offset = opts.offset ?? 0;
  const limit = Math.floor(clip * scale * (1 + 1e-12));
  const n = values.length;
  const out = new Int32Array(n);
  let clipped = 0;
  for (let i = 0; i < n; i++) {
    let v = values[i];
    if (v > clip) {
      if (v === Infinity) throw new FedtwinError('HE_BAD_ARGUMENT', `value ${offset + i} is Infinity`, { hint: 'check the update for overflow before encrypting', details: { index: offset + i } });
      v = clip;
      clipped++;
    } else if (v < -clip) {
      if (v === -Infinity) throw new FedtwinError('HE_BAD_ARGUMENT', `value ${offset + i} is -Infinity`, { hint: 'check the update for overflow before encrypting', details: { index: offset + i } });
      v = -clip;
      clipped++;
    } else if (v !== v) {
      throw new FedtwinError('HE_BAD_ARGUMENT', `value ${offset + i} is NaN`, { hint: 'check the update for NaN before encrypting (diverged training?)', details: { index: offset + i } });
    }
    const y = v * scale;
    const f = Math.floor(y);
    const frac = y - f;
    const r = mix(offset + i, k0, k1) < frac * 4294967296 ? f + 1 : f;
    // clip·scale can exceed the integer limit by one ulp; keep the result inside [-limit, limit].
    out[i] = r > limit ? limit : r < -limit ? -limit : r;
  }
  return { values: out, clipped };
}

/** Real values from quantized integers (or their sums). */
export function dequantize(values: ArrayLike<number>, scale: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / scale;
  return out;
}
