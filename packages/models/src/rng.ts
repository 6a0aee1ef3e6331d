// Seeded pseudo-random numbers for everything the models draw: weight init, batching, Poisson
// sampling, reparameterization noise and generation. Weights are drawn here (not with tfjs random
// ops) so identical seeds give bit-identical initial weights on every backend and every site.

import { FedtwinError } from '@fedtwin/errors';

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number;
  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number;
  /** Standard normal N(0, 1) (Box–Muller, second value cached). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T;
  /** A fresh 32-bit seed drawn from this stream (for tfjs ops that take a seed, or child streams). */
  seed(): number;
}

/** splitmix32: spreads arbitrary (even consecutive) seeds into well-mixed 32-bit states. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function checkSeed(seed: number): number {
  if (!Number.isFinite(seed)) {
    throw new FedtwinError('MODELS_BAD_SEED', `seed must be a finite number, got ${seed}`, {
      hint: 'pass an integer seed, e.g. 42',
    });
  }
  // Fold the integer part of any finite number (incl. > 2^32) into 32 bits, deterministically.
  const hi = Math.floor(seed / 4294967296);
  return (Math.trunc(seed) ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
}

/** xoshiro128** seeded through splitmix32. Small, fast, good enough for ML sampling (not crypto). */
export function createRng(seed: number): Rng {
  const st = { s: checkSeed(seed) };
  let a = splitmix32(st), b = splitmix32(st), c = splitmix32(st), d = splitmix32(st);
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point
  let spare: number | undefined;

  const nextU32 = (): number => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return r;
  };
  const uniform = (): number => nextU32() / 4294967296;
  const rng: Rng = {
    nextU32,
    uniform,
    normal(): number {
      if (spare !== undefined) { const s = spare; spare = undefined; return s; }
      let u = uniform();
      while (u === 0) u = uniform();
      const v = uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    int(n: number): number {
      if (!(n >= 1) || !Number.isInteger(n)) throw new FedtwinError('MODELS_BAD_ARGUMENT', `rng.int needs a positive integer, got ${n}`);
      return Math.floor(uniform() * n);
    },
    shuffle(arr) {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = Math.floor(uniform() * (i + 1));
        const t = arr[i]; arr[i] = arr[j]; arr[j] = t;
      }
      return arr;
    },
    seed: () => nextU32(),
  };
  return rng;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Derive an independent seed from a base seed and integer tags (e.g. round, epoch, site). */
export function deriveSeed(seed: number, ...tags: number[]): number {
  const st = { s: checkSeed(seed) };
  let h = splitmix32(st);
  for (const t of tags) {
    st.s = (h ^ checkSeed(t)) | 0;
    h = splitmix32(st);
  }
  return h;
}

/** Fill a Float32Array with N(mean, std²) draws. */
export function fillNormal(rng: Rng, out: Float32Array, mean = 0, std = 1): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = mean + std * rng.normal();
  return out;
}
