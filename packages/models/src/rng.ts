// Seeded pseudo-random numbers for everything the models draw: weight init, batching, Poisson
// sampling, reparameterization noise and generation. Weights are drawn here (not with tfjs random
// ops) so identical seeds give bit-identical initial weights on every backend and every site.

import { FedtwinError } from '@fedtwin/errors';
import { gaussianTailFrom, ZIGGURAT_R } from './gaussian.ts';

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number;
  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number;
  /** Standard normal N(0, 1) (ziggurat, 128 layers). */
  normal(): number;
  /** Fill `out` with N(0, 1) draws — the same values successive normal() calls would give, in a
   *  tight loop. */
  normals(out: Float32Array): Float32Array;
  /** N(0, 1) for DP noise (seeded simulations): the same ziggurat body with the untruncated tail
   *  (gaussian.ts), i.e. exactly normalsFrom over this stream. normal()/normals() keep the 32-bit
   *  tail (|z| ≤ 10.087) so seeded weights and ML sampling stay as they were. */
  dpNormals(out: Float32Array): Float32Array;
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
  return fromState(splitmix32(st), splitmix32(st), splitmix32(st), splitmix32(st));
}

function fromState(a: number, b: number, c: number, d: number): Rng {
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point

  const nextU32 = (): number => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return r;
  };
  const uniform = (): number => nextU32() / 4294967296;
  // Ziggurat (Marsaglia & Tsang 2000): ~1 table compare per sample in 98.8% of draws. The layer
  // index takes the low 7 bits and the magnitude the high 25, so the two are independent.
  const normalZig = (): number => slowPath(nextU32());
  const slowPath = (first: number): number => zigguratFrom(first, nextU32, tail32);
  const slowPathDp = (first: number): number => zigguratFrom(first, nextU32, gaussianTailFrom);
  const fill = <T extends Float32Array | Float64Array>(out: T, slow: (first: number) => number): T => {
    const { kn, wn } = ZIG;
    // xoshiro128** inlined on local copies of the state (closure variables are context slots,
    // ~2× slower to update); the state is written back around the rare slow path so the
    // sequence matches normal() (or normalsFrom) exactly.
    let s0 = a, s1 = b, s2 = c, s3 = d;
    for (let i = 0; i < out.length; i++) {
      const u = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      const iz = u & 127;
      const hz = (u & ~127) | 0;
      if (Math.abs(hz) < kn[iz]) {
        out[i] = hz * wn[iz];
      } else {
        a = s0; b = s1; c = s2; d = s3;
        out[i] = slow(u);
        s0 = a; s1 = b; s2 = c; s3 = d;
      }
    }
    a = s0; b = s1; c = s2; d = s3;
    return out;
  };
  let pairs = new Float64Array(0);
  const rng: Rng = {
    nextU32,
    uniform,
    normal: normalZig,
    normals: (out) => fill(out, slowPath),
    // Holohan & Braghin's (Z₁ + Z₂)/√2 as normalsFrom, the draws kept in double until they are summed.
    dpNormals: (out) => {
      if (pairs.length < 2 * out.length) pairs = new Float64Array(2 * out.length);
      fill(pairs.subarray(0, 2 * out.length), slowPathDp);
      for (let i = 0; i < out.length; i++) out[i] = (pairs[2 * i]! + pairs[2 * i + 1]!) * Math.SQRT1_2;
      return out;
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

const ZIG_R = ZIGGURAT_R;
/** Ziggurat tables for 128 layers over signed 32-bit magnitudes (Marsaglia & Tsang's RNOR setup). */
const ZIG = (() => {
  const kn = new Float64Array(128), wn = new Float64Array(128), fn = new Float64Array(128);
  const m1 = 2147483648;
  const vn = 9.91256303526217e-3;
  let dn = ZIG_R, tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  kn[0] = Math.floor((dn / q) * m1);
  kn[1] = 0;
  wn[0] = q / m1;
  wn[127] = dn / m1;
  fn[0] = 1;
  fn[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    kn[i + 1] = Math.floor((dn / tn) * m1);
    tn = dn;
    fn[i] = Math.exp(-0.5 * dn * dn);
    wn[i] = dn / m1;
  }
  return { kn, wn, fn };
})();

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The ML sampler's tail beyond r (Rng.normal): Marsaglia's exponential rejection on 32-bit
 *  uniforms, so |z| ≤ r + ln(2³³)/r = 10.087. Not for DP noise (see gaussian.ts). */
function tail32(u32: () => number): number {
  let x: number, y: number;
  do {
    x = -Math.log((u32() + 0.5) / 4294967296) / ZIG_R;
    y = -Math.log((u32() + 0.5) / 4294967296);
  } while (y + y < x * x);
  return x;
}

/** Full ziggurat step for a first draw u (loops with fresh draws from u32 on rejection); `tail`
 *  returns x ≥ 0 for a draw beyond r. */
function zigguratFrom(first: number, u32: () => number, tail: (u32: () => number) => number): number {
  let u = first;
  for (let tries = 0; ; tries++) {
    if (tries > 0) u = u32();
    const iz = u & 127;
    const hz = (u & ~127) | 0;
    if (Math.abs(hz) < ZIG.kn[iz]) return hz * ZIG.wn[iz];
    if (iz === 0) {
      const x = tail(u32);
      return hz > 0 ? ZIG_R + x : -ZIG_R - x;
    }
    const x = hz * ZIG.wn[iz];
    if (ZIG.fn[iz] + (u32() / 4294967296) * (ZIG.fn[iz - 1] - ZIG.fn[iz]) < Math.exp(-0.5 * x * x)) return x;
  }
}

/**
 * Fill `out` with N(0, 1) draws for DP noise, every random bit from `u32()`. Each value is (Z₁ + Z₂)/√2 of two
 * independent draws of Rng.normal's ziggurat body with the untruncated tail of gaussian.ts (|Zᵢ| ≤ 41.5), the
 * secure sampling of Holohan & Braghin (ESORICS 2021) for an infinitely divisible law: one ziggurat draw lies on
 * a sparse grid (a 25-bit integer times its layer's width), which is what floating-point attacks on DP noise
 * (Mironov 2012; Jin et al. 2022 on DP-SGD) test a candidate output against; a sum of two covers the line densely,
 * and undoing it means searching pairs. With a CSPRNG-backed `u32` the noise is as unpredictable as the OS
 * generator. Costs two draws per value, on the noise worker's thread (noise.ts).
 */
export function normalsFrom(u32: () => number, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = (zigguratDraw(u32) + zigguratDraw(u32)) * Math.SQRT1_2;
  return out;
}

/** One ziggurat draw with the untruncated tail: N(0, 1), but on its layers' grids (see normalsFrom). */
export function zigguratDraw(u32: () => number): number {
  return zigguratFrom(u32(), u32, gaussianTailFrom);
}

/** The ziggurat's layer widths: a base-strip draw of layer i is (a multiple of 128) · widths[i]. */
export function zigguratWidths(): Float64Array {
  return Float64Array.from(ZIG.wn);
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
