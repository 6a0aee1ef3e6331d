// Seeded pseudo-random numbers for the data side (splits, sampling of categories, Dirichlet draws).
// Generator: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/), 128-bit state,
// seeded by SplitMix64 as the authors recommend. Not cryptographic: never use it for DP noise or keys.
import { createHash } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';

const MASK64 = (1n << 64n) - 1n;

/** A seeded stream of random numbers. Same seed → same sequence on every platform. */
export interface Prng {
  /** Next raw 32-bit output (unsigned). */
  nextUint32(): number;
  /** Uniform double in [0, 1) with 53 bits of randomness. */
  next(): number;
  /** Uniform integer in [0, n) (n ≤ 2^32; bias below 2^-21, negligible). */
  int(n: number): number;
  /** Standard normal N(0, 1) (Marsaglia polar method). */
  normal(): number;
  /** Gamma(shape, 1) variate (Marsaglia–Tsang). May underflow to 0 for tiny shapes; see logGamma. */
  gamma(shape: number): number;
  /** log of a Gamma(shape, 1) variate, exact also for shapes far below 1. */
  logGamma(shape: number): number;
  /** One draw from Dirichlet(alpha), computed in log space so tiny alphas do not give NaN. */
  dirichlet(alpha: ArrayLike<number>): number[];
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[];
}

/** SplitMix64 step on a BigInt state; returns [newState, output]. */
function splitMix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

function seedToBigInt(seed: number | string): bigint {
  if (typeof seed === 'string') {
    // Strings (e.g. "run-7") are hashed so any label can serve as a seed.
    return createHash('sha256').update(seed, 'utf8').digest().readBigUInt64LE(0);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `seed must be a non-negative safe integer or a string, got ${String(seed)}`, {
      hint: 'Pass e.g. --seed 42',
    });
  }
  return BigInt(seed);
}

/** xoshiro128** with SplitMix64 seeding. */
class Xoshiro128 implements Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare: number | undefined = undefined;

  constructor(seed: number | string) {
    let st = seedToBigInt(seed);
    let a: bigint;
    let b: bigint;
    [st, a] = splitMix64(st);
    [st, b] = splitMix64(st);
    this.#s0 = Number(a & 0xffffffffn) | 0;
    this.#s1 = Number(a >> 32n) | 0;
    this.#s2 = Number(b & 0xffffffffn) | 0;
    this.#s3 = Number(b >> 32n) | 0;
    // SplitMix64 never yields an all-zero pair for consecutive outputs, but guard anyway: zero state is a fixed point.
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Internal: start from an explicit state (test vectors). */
  static fromState(s: [number, number, number, number]): Xoshiro128 {
    const r = new Xoshiro128(0);
    r.#s0 = s[0] | 0;
    r.#s1 = s[1] | 0;
    r.#s2 = s[2] | 0;
    r.#s3 = s[3] | 0;
    return r;
  }

  nextUint32(): number {
    const s1 = this.#s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = (this.#s3 << 11) | (this.#s3 >>> 21);
    return result >>> 0;
  }

  next(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `int(n) needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.#spare = v * f;
    return u * f;
  }

  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `gamma shape must be a positive finite number, got ${shape}`);
    }
    if (shape < 1) {
      // Boost: G(a) = G(a+1) · U^(1/a); kept in logs because U^(1/a) underflows for a ≪ 1.
      let u = this.next();
      while (u === 0) u = this.next();
      return this.logGamma(shape + 1) + Math.log(u) / shape;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
      if (u > 0 && Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
  }

  dirichlet(alpha: ArrayLike<number>): number[] {
    const k = alpha.length;
    if (k === 0) throw new FedtwinError('DATA_BAD_ARGUMENT', 'dirichlet needs at least one alpha');
    const logs = new Array<number>(k);
    let max = -Infinity;
    for (let i = 0; i < k; i++) {
      logs[i] = this.logGamma(alpha[i]);
      if (logs[i] > max) max = logs[i];
    }
    let sum = 0;
    for (let i = 0; i < k; i++) {
      logs[i] = Math.exp(logs[i] - max);
      sum += logs[i];
    }
    for (let i = 0; i < k; i++) logs[i] /= sum;
    return logs;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

/** A new seeded generator (xoshiro128**, SplitMix64-seeded). `seed`: safe integer ≥ 0 or any string. */
export function createPrng(seed: number | string): Prng {
  return new Xoshiro128(seed);
}

/** A generator started from an explicit 128-bit state (four uint32 words); for test vectors. */
export function prngFromState(state: [number, number, number, number]): Prng {
  return Xoshiro128.fromState(state);
}

/**
 * Index k < n drawn with probability ∝ w[off + k] from one uniform u ∈ [0, 1); `total` is the sum of the positive
 * weights (> 0). Non-positive weights are never drawn; rounding that leaves u·total unspent returns the last
 * positive weight.
 */
export function drawIndex(w: ArrayLike<number>, off: number, n: number, total: number, u: number): number {
  let r = u * total;
  let last = -1;
  for (let k = 0; k < n; k++) {
    const p = w[off + k]!;
    if (!(p > 0)) continue;
    last = k;
    r -= p;
    if (r < 0) return k;
  }
  return last;
}
