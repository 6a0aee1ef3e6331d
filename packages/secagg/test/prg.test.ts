// The chunked, SIMD mask pass (prg.ts, simd.ts) against the plain definition: one whole AES-128-CTR
// keystream per seed, read as little-endian uint32, added word by word mod 2^32 in ordinary JavaScript.
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { addMask, expandMask } from '../src/index.ts';
import { CHUNK_WORDS, sumStreams, type MaskTerm } from '../src/prg.ts';
import { kernelMemory, simdKernels } from '../src/simd.ts';

/** PRG(seed) as n words, the whole keystream in one cipher call (no chunks, no SIMD). */
function wholeStream(seed: Uint8Array, n: number): Uint32Array {
  const ks = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32)).update(Buffer.alloc(n * 4));
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = ks.readUInt32LE(4 * i);
  return out;
}

/** start + Σ adds + Σ sign·PRG(seed), word by word. */
function reference(n: number, start: Uint32Array | undefined, adds: Uint32Array[], masks: MaskTerm[]): Uint32Array {
  const out = start ? start.slice() : new Uint32Array(n);
  for (const a of adds) for (let i = 0; i < n; i++) out[i] = (out[i] + a[i]) >>> 0;
  for (const m of masks) {
    const s = wholeStream(m.seed, n);
    for (let i = 0; i < n; i++) out[i] = (out[i] + m.sign * s[i]) >>> 0;
  }
  return out;
}

const words = (n: number, fill: (i: number) => number): Uint32Array => Uint32Array.from({ length: n }, (_, i) => fill(i) >>> 0);
// lengths around the chunk and the 4-word / 16-word SIMD steps
const LENGTHS = [1, 3, 4, 5, 15, 16, 17, 63, 65, CHUNK_WORDS - 1, CHUNK_WORDS, CHUNK_WORDS + 1, 2 * CHUNK_WORDS + 7];

describe('mask pass (chunked AES-CTR keystreams, SIMD adds)', () => {
  it('equals whole-stream expansion and plain adds at every length around the chunk and vector sizes', () => {
    for (const n of LENGTHS) {
      const masks: MaskTerm[] = [{ seed: randomBytes(32), sign: 1 }, { seed: randomBytes(32), sign: -1 }, { seed: randomBytes(32), sign: -1 }];
      const adds = [words(n, () => Math.random() * 2 ** 32), words(n, (i) => 0xffffffff - i)];
      const start = words(n, (i) => (i * 2654435761) | 0);
      const out = new Uint32Array(n);
      sumStreams(out, start, adds, masks);
      expect(out).toEqual(reference(n, start, adds, masks));
      const noStart = new Uint32Array(n);
      sumStreams(noStart, undefined, adds, masks);
      expect(noStart).toEqual(reference(n, undefined, adds, masks));
    }
  });

  it('the result does not depend on the chunk size (4 words up to more than the vector)', () => {
    const n = 1001;
    const masks: MaskTerm[] = [{ seed: randomBytes(32), sign: -1 }, { seed: randomBytes(32), sign: 1 }];
    const start = Int32Array.from({ length: n }, (_, i) => (i % 3 ? 1 : -1) * i * 40);
    const adds = [words(n, (i) => i * 2654435761)];
    const want = reference(n, new Uint32Array(start.buffer), adds, masks);
    for (const chunk of [4, 8, 12, 64, 1000, 1004, 4096]) {
      const out = new Uint32Array(n);
      expect(sumStreams(out, start, adds, masks, 32767, chunk)).toBe(start.filter((v) => v > 32767 || v < -32767).length);
      expect(out).toEqual(want);
    }
  });

  it('wraps mod 2^32 in both directions', () => {
    const n = 37;
    const big = words(n, () => 0xfffffffe), one = words(n, () => 1);
    const out = new Uint32Array(n);
    sumStreams(out, big, [one, one, one], []);
    expect([...out]).toEqual(new Array(n).fill(1)); // 2^32 − 2 + 3
    sumStreams(out, new Uint32Array(n), [], [{ seed: new Uint8Array(32).fill(9), sign: -1 }]);
    expect(out).toEqual(words(n, (i) => 2 ** 32 - wholeStream(new Uint8Array(32).fill(9), n)[i]));
  });

  it('the output may be the start vector or one of the inputs (each chunk is read before it is written)', () => {
    const n = 2 * CHUNK_WORDS + 3;
    const seed = randomBytes(32);
    const a = words(n, (i) => i * 7), b = words(n, (i) => i * 13);
    const want = reference(n, a, [b], [{ seed, sign: 1 }]);
    const a1 = a.slice();
    sumStreams(a1, a1, [b], [{ seed, sign: 1 }]);
    expect(a1).toEqual(want);
    const b1 = b.slice();
    sumStreams(b1, a, [b1], [{ seed, sign: 1 }]);
    expect(b1).toEqual(want);
  });

  it('addMask then its negative restores the vector; expandMask is the whole keystream', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 3 * CHUNK_WORDS }), (seed, n) => {
      const acc = words(n, (i) => i ^ 0x5a5a5a5a);
      const before = acc.slice();
      addMask(acc, seed, 1);
      addMask(acc, seed, -1);
      expect(acc).toEqual(before);
      expect(expandMask(seed, n)).toEqual(wholeStream(seed, n));
    }), { numRuns: 8 });
  });

  it('counts the start words outside ±bound exactly (signed, tail lanes ignored)', () => {
    for (const n of LENGTHS) {
      const bound = 32767;
      const pick = [0, 1, -1, bound, -bound, bound + 1, -bound - 1, 2 ** 31 - 1, -(2 ** 31), 12345];
      const x = Int32Array.from({ length: n }, (_, i) => pick[(i * 7) % pick.length]);
      let want = 0;
      for (const v of x) want += v > bound || v < -bound ? 1 : 0;
      expect(sumStreams(new Uint32Array(n), x, [], [], bound)).toBe(want);
    }
  });

  it('refuses vectors of different lengths and seeds that are not 32 bytes', () => {
    expect(() => sumStreams(new Uint32Array(4), new Uint32Array(5), [], [])).toThrow(/different lengths/);
    expect(() => sumStreams(new Uint32Array(4), undefined, [new Uint32Array(3)], [])).toThrow(/different lengths/);
    expect(() => addMask(new Uint32Array(4), new Uint8Array(16), 1)).toThrow(/32 bytes/);
  });
});

describe('SIMD kernels', () => {
  it('add / sub over byte counts that exercise the 64-byte loop and the 16-byte tail', () => {
    const k = simdKernels();
    const mem = new Uint32Array(kernelMemory(1 << 17));
    for (const count of [0, 4, 8, 16, 20, 28, 64, 68]) {
      const dst = 0, src = 1 << 13; // word offsets
      for (let i = 0; i < count + 8; i++) { mem[dst + i] = (0xfffffff0 + i) >>> 0; mem[src + i] = i * 3 + 17; }
      k.add(dst * 4, src * 4, count * 4);
      for (let i = 0; i < count; i++) expect(mem[dst + i]).toBe((0xfffffff0 + i + i * 3 + 17) >>> 0);
      for (let i = count; i < count + 8; i++) expect(mem[dst + i]).toBe((0xfffffff0 + i) >>> 0); // untouched past n
      k.sub(dst * 4, src * 4, count * 4);
      for (let i = 0; i < count + 8; i++) expect(mem[dst + i]).toBe((0xfffffff0 + i) >>> 0);
    }
  });
});
