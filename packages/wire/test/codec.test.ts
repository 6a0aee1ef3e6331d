import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeVarint, encodeVarint } from '../src/varint.ts';

describe('varint', () => {
  it('round-trips every safe non-negative integer with its exact length', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const bytes = encodeVarint(n);
        expect(decodeVarint(bytes)).toEqual({ value: n, length: bytes.byteLength });
        expect(bytes.byteLength).toBeLessThanOrEqual(8);
      }),
    );
  });

  it('matches the unsigned LEB128 vectors used by multiformats', () => {
    expect([...encodeVarint(0)]).toEqual([0]);
    expect([...encodeVarint(1)]).toEqual([1]);
    expect([...encodeVarint(127)]).toEqual([0x7f]);
    expect([...encodeVarint(128)]).toEqual([0x80, 0x01]);
    expect([...encodeVarint(300)]).toEqual([0xac, 0x02]);
    expect([...encodeVarint(16384)]).toEqual([0x80, 0x80, 0x01]);
    expect([...encodeVarint(4 * 1024 * 1024)]).toEqual([0x80, 0x80, 0x80, 0x02]);
  });

  it('asks for more bytes on any strict prefix, and ignores trailing bytes', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.uint8Array({ maxLength: 4 }), (n, tail) => {
        const bytes = encodeVarint(n);
        for (let i = 0; i < bytes.byteLength; i++) expect(decodeVarint(bytes.subarray(0, i))).toBeUndefined();
        const joined = new Uint8Array([...bytes, ...tail]);
        expect(decodeVarint(joined)).toEqual({ value: n, length: bytes.byteLength });
      }),
    );
  });

  it('rejects overlong, non-minimal and unsafe encodings', () => {
    expect(() => decodeVarint(new Uint8Array(9).fill(0xff))).toThrow(RangeError);
    expect(() => decodeVarint(Uint8Array.of(0x80, 0x00))).toThrow(/minimal/);
    expect(() => decodeVarint(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))).toThrow(/safe/);
    expect(() => encodeVarint(-1)).toThrow(RangeError);
    expect(() => encodeVarint(2 ** 53)).toThrow(RangeError);
    expect(() => encodeVarint(1.5)).toThrow(RangeError);
  });
});
