import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { packBits, packedSize, unpackBits, firstAtOrAbove } from '../src/bits.ts';

describe('bit packing', () => {
  it('round-trips values of any width 1..64 at any offset (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 7 }),
      fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 0, maxLength: 70 }),
      (bits, offset, raw) => {
        const vals = raw.map((v) => v & ((1n << BigInt(bits)) - 1n));
        const src = new Uint32Array(2 * vals.length);
        vals.forEach((v, i) => { src[2 * i] = Number(v & 0xffffffffn); src[2 * i + 1] = Number(v >> 32n); });
        const out = new Uint8Array(offset + packedSize(vals.length, bits) + 3).fill(0xee);
        const end = packBits(src, vals.length, bits, out, offset);
        expect(end).toBe(offset + packedSize(vals.length, bits));
        expect(out[end]).toBe(0xee); // nothing written past the end
        const dst = new Uint32Array(2 * vals.length);
        expect(unpackBits(out, offset, vals.length, bits, dst)).toBe(end);
        expect(Array.from(dst)).toEqual(Array.from(src));
      },
    ), { numRuns: 300 });
  });

  it('matches a hand-computed little-endian layout', () => {
    // 0x005 | 0x003 << 12 | 0xfff << 24 = 0xfff003005 → bytes 05 30 00 ff 0f
    const exact = new Uint8Array(5);
    packBits(Uint32Array.from([0x005, 0, 0x003, 0, 0xfff, 0]), 3, 12, exact, 0);
    expect(Array.from(exact)).toEqual([0x05, 0x30, 0x00, 0xff, 0x0f]);
  });

  it('refuses to read past the buffer', () => {
    expect(() => unpackBits(new Uint8Array(4), 0, 1, 40, new Uint32Array(2))).toThrow(RangeError);
  });

  it('finds the first value at or above a 64-bit bound', () => {
    const v = Uint32Array.from([5, 1, 0xffffffff, 0, 4, 1]);
    expect(firstAtOrAbove(v, 3, 5, 1)).toBe(0);
    expect(firstAtOrAbove(v, 3, 6, 1)).toBe(-1);
    expect(firstAtOrAbove(v, 3, 0, 0)).toBe(0);
  });
});
