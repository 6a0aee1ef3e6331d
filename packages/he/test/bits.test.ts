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

  const toPairs = (vals: bigint[]) => {
    const a = new Uint32Array(2 * vals.length);
    vals.forEach((v, i) => { a[2 * i] = Number(v & 0xffffffffn); a[2 * i + 1] = Number(v >> 32n); });
    return a;
  };

  it('lays values out as one little-endian bit stream at every width, byte-aligned fast path included (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 64 }), fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 1, maxLength: 30 }),
      (bits, raw) => {
        const vals = raw.map((v) => v & ((1n << BigInt(bits)) - 1n));
        let stream = 0n;
        vals.forEach((v, i) => { stream |= v << BigInt(i * bits); });
        const expected = Array.from({ length: packedSize(vals.length, bits) }, (_, k) => Number((stream >> BigInt(8 * k)) & 0xffn));
        const out = new Uint8Array(packedSize(vals.length, bits));
        packBits(toPairs(vals), vals.length, bits, out, 0);
        expect(Array.from(out)).toEqual(expected);
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

describe('unpackNumbers', () => {
  it('reads what packBits wrote, as numbers, for every width up to 64 bits (rounded beyond 53), and can accumulate', async () => {
    const { packBits, packedSize, unpackNumbers } = await import('../src/bits.ts');
    for (let bits = 54; bits <= 64; bits++) {
      const vals = [(1n << BigInt(bits)) - 1n, (1n << BigInt(bits - 1)) + 12345n, 987654321987n, 0n];
      const pairs = new Uint32Array(2 * vals.length);
      vals.forEach((v, i) => { pairs[2 * i] = Number(v & 0xffffffffn); pairs[2 * i + 1] = Number(v >> 32n); });
      const buf = new Uint8Array(packedSize(vals.length, bits));
      packBits(pairs, vals.length, bits, buf, 0);
      const out = new Float64Array(vals.length);
      unpackNumbers(buf, 0, vals.length, bits, out, 0, false);
      expect([bits, Array.from(out)]).toEqual([bits, vals.map((v) => Number(v))]); // Number(bigint) rounds to nearest
    }
    for (let bits = 1; bits <= 53; bits++) {
      const count = 37;
      const vals = Array.from({ length: count }, (_, i) => Math.floor(((i * 2654435761) % 1000003) / 1000003 * 2 ** bits) % 2 ** bits);
      vals[0] = 2 ** bits - 1; // all ones
      const pairs = new Uint32Array(2 * count);
      vals.forEach((v, i) => { pairs[2 * i] = v % 4294967296; pairs[2 * i + 1] = Math.floor(v / 4294967296); });
      const buf = new Uint8Array(3 + packedSize(count, bits) + 2).fill(0xff); // neighbouring bytes must not leak in
      packBits(pairs, count, bits, buf, 3);
      const out = new Float64Array(count + 1);
      expect(unpackNumbers(buf.subarray(0, 3 + packedSize(count, bits)), 3, count, bits, out, 1, false)).toBe(3 + packedSize(count, bits));
      expect([bits, Array.from(out.subarray(1))]).toEqual([bits, vals]);
      unpackNumbers(buf, 3, count, bits, out, 1, true);
      expect([bits, Array.from(out.subarray(1))]).toEqual([bits, vals.map((v) => 2 * v)]);
    }
  });

  it('writes 4-byte-aligned whole-word bodies (the word path) byte for byte like the byte path, for every width up to 64', async () => {
    const { packBits, packedSize } = await import('../src/bits.ts');
    for (let bits = 1; bits <= 64; bits++) {
      for (const count of [128, 125]) { // whole words, and a body whose last word is partly filled
        const size = packedSize(count, bits);
        if (size % 4 !== 0) continue;
        const pairs = new Uint32Array(2 * count);
        for (let i = 0; i < count; i++) {
          const lo = bits >= 32 ? (Math.imul(i + 1, 2654435761) >>> 0) : (Math.imul(i + 1, 2654435761) >>> 0) % 2 ** bits;
          pairs[2 * i] = i === 0 ? (bits >= 32 ? 0xffffffff : 2 ** bits - 1) : lo;
          pairs[2 * i + 1] = bits > 32 ? (i === 0 ? 2 ** (bits - 32) - 1 : (Math.imul(i, 40503) >>> 0) % 2 ** (bits - 32)) : 0;
        }
        const aligned = new Uint8Array(8 + size + 8).fill(0xab);
        expect(packBits(pairs, count, bits, aligned, 8)).toBe(8 + size);
        const viaBytes = new Uint8Array(1 + size + 8).fill(0xab);
        packBits(pairs, count, bits, viaBytes, 1);
        expect([bits, count, Buffer.from(aligned.subarray(8, 8 + size)).toString('hex')]).toEqual([bits, count, Buffer.from(viaBytes.subarray(1, 1 + size)).toString('hex')]);
        expect(Array.from(aligned.subarray(0, 8)).concat(Array.from(aligned.subarray(8 + size)))).toEqual(new Array(16).fill(0xab));
      }
    }
  });

  it('reads 4-byte-aligned whole-word bodies (the word path) exactly like the byte path, for every width up to 53', async () => {
    const { packBits, packedSize, unpackNumbers } = await import('../src/bits.ts');
    for (let bits = 1; bits <= 53; bits++) {
      const count = 128; // 16·bits bytes: whole words
      const vals = Array.from({ length: count }, (_, i) => Math.floor(((i * 2654435761 + bits) % 1000003) / 1000003 * 2 ** bits) % 2 ** bits);
      vals[0] = 2 ** bits - 1;
      vals[count - 1] = 2 ** bits - 1;
      vals[5] = 0;
      const pairs = new Uint32Array(2 * count);
      vals.forEach((v, i) => { pairs[2 * i] = v % 4294967296; pairs[2 * i + 1] = Math.floor(v / 4294967296); });
      const size = packedSize(count, bits);
      const buf = new Uint8Array(8 + size + 8).fill(0xff); // neighbouring words must not leak in
      packBits(pairs, count, bits, buf, 8);
      const body = buf.subarray(0, 8 + size + 4); // the word after the body is there, and all ones
      const aligned = new Float64Array(count);
      expect(unpackNumbers(body, 8, count, bits, aligned, 0, false)).toBe(8 + size);
      const unaligned = new Uint8Array(1 + size);
      unaligned.set(buf.subarray(8, 8 + size), 1);
      const viaBytes = new Float64Array(count);
      unpackNumbers(unaligned, 1, count, bits, viaBytes, 0, false);
      expect([bits, Array.from(aligned)]).toEqual([bits, vals]);
      expect([bits, Array.from(viaBytes)]).toEqual([bits, vals]);
      unpackNumbers(body, 8, count, bits, aligned, 0, true);
      expect([bits, Array.from(aligned)]).toEqual([bits, vals.map((v) => 2 * v)]);
    }
  });
});
