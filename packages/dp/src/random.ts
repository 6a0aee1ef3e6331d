// Uniform random integers for the exact samplers: the OS CSPRNG by default, a keyed AES-CTR stream only when a
// simulation asks for seeded noise. Every sampler in this package draws through `RandomSource`, so a test can
// run one with a fixed seed and a daemon with the OS CSPRNG, through the same code.
import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { badArgument } from './validate.ts';

export interface RandomSource {
  /** A uniform 32-bit unsigned integer. */
  uint32(): number;
}

const BUFFER_WORDS = 16_384; // 64 KiB per refill

/** Words from `fill`, refilled 64 KiB at a time. */
function buffered(fill: (buf: Uint32Array) => void): RandomSource {
  const buf = new Uint32Array(BUFFER_WORDS);
  let i = BUFFER_WORDS;
  return {
    uint32() {
      if (i === BUFFER_WORDS) {
        fill(buf);
        i = 0;
      }
      return buf[i++]!;
    },
  };
}

/** The OS CSPRNG (`crypto.randomFillSync`): what every daemon uses. */
export function osRandom(): RandomSource {
  return buffered((b) => randomFillSync(b));
}

/**
 * A reproducible stream for simulations (`--seeded-noise`): AES-256-CTR keystream under SHA-256 of the seed
 * words. Whoever knows the seed knows every draw, so noise from it protects nothing against them.
 */
export function seededRandom(seed: readonly number[]): RandomSource {
  if (!Array.isArray(seed) || seed.length === 0 || !seed.every((s) => Number.isSafeInteger(s))) {
    throw badArgument(`seed must be a non-empty array of safe integers, got ${JSON.stringify(seed)}`, 'e.g. [seed, round]');
  }
  const key = createHash('sha256').update('fedtwin/dp/seeded-random/v1\0').update(JSON.stringify(seed)).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = new Uint8Array(BUFFER_WORDS * 4);
  return buffered((b) => {
    const out = cipher.update(zeros);
    new Uint8Array(b.buffer, b.byteOffset, b.byteLength).set(out);
  });
}

const TWO32 = 4294967296;

/** Uniform integer in [0, n) for 1 ≤ n ≤ 2^53, by rejection (no modulo bias). */
export function uniformInt(rng: RandomSource, n: number): number {
  if (n <= TWO32) {
    if (n === TWO32) return rng.uint32();
    // Largest multiple of n below 2^32: values at or above it are redrawn.
    const limit = TWO32 - (TWO32 % n);
    for (;;) {
      const u = rng.uint32();
      if (u < limit) return u % n;
    }
  }
  const hiRange = Math.ceil(n / TWO32);
  for (;;) {
    const hi = uniformInt(rng, hiRange);
    const v = hi * TWO32 + rng.uint32();
    if (v < n) return v;
  }
}

/** Uniform BigInt in [0, n) for any n ≥ 1, by rejection on whole 32-bit words. */
export function uniformBigInt(rng: RandomSource, n: bigint): bigint {
  if (n <= 9007199254740992n) return BigInt(uniformInt(rng, Number(n)));
  const bits = n.toString(2).length;
  const words = Math.ceil(bits / 32);
  const excess = BigInt(words * 32 - bits);
  for (;;) {
    let v = 0n;
    for (let w = 0; w < words; w++) v = (v << 32n) | BigInt(rng.uint32());
    v >>= excess;
    if (v < n) return v;
  }
}

/** A uniform 53-bit integer: the first 53 bits of a uniform real in [0, 1). */
export function uniform53(rng: RandomSource): number {
  return (rng.uint32() >>> 11) * TWO32 + rng.uint32();
}
