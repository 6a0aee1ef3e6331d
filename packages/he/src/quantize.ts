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
  const out = new Int32Array(values.length);
  const outside = roundStochastic(values, out, k0, k1, scale, clip, limit, offset);
  if (outside === 0) return { values: out, clipped: 0 };
  // Rare: say which value was not finite, or count the clipped ones.
  let clipped = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v || v === Infinity || v === -Infinity) {
      const what = v !== v ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      throw new FedtwinError('HE_BAD_ARGUMENT', `value ${offset + i} is ${what}`, {
        hint: v !== v ? 'check the update for NaN before encrypting (diverged training?)' : 'check the update for overflow before encrypting',
        details: { index: offset + i },
      });
    }
    if (v > clip || v < -clip) clipped++;
  }
  return { values: out, clipped };
}

/**
 * The hot loop of quantize, without a data-dependent branch (the rounding direction is a coin flip, and a
 * mispredicted branch per value cost more than the arithmetic): r = floor(y) + floor(frac(y) + u) with u the
 * value's uniform draw in [0, 1), which is floor(y) + 1 exactly when u ≥ 1 − frac(y). Returns how many
 * inputs were outside [-clip, clip] or NaN (their outputs are then sorted out by the caller).
 */
function roundStochastic(values: ArrayLike<number>, out: Int32Array, k0: number, k1: number, scale: number, clip: number, limit: number, offset: number): number {
  let outside = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    outside += v > clip || v < -clip || v !== v ? 1 : 0;
    const y = Math.min(clip, Math.max(-clip, v)) * scale;
    const f = Math.floor(y);
    const r = f + Math.floor(y - f + mix(offset + i, k0, k1) * 2.3283064365386963e-10);
    // clip·scale can exceed the integer limit by one ulp; keep the result inside [-limit, limit].
    out[i] = Math.min(limit, Math.max(-limit, r));
  }
  return outside;
}

/** Real values from quantized integers (or their sums). */
export function dequantize(values: ArrayLike<number>, scale: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / scale;
  return out;
}
