import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { quantize, dequantize } from '../src/quantize.ts';
import { isFedtwinError } from '@fedtwin/errors';

describe('quantize', () => {
  it('is deterministic for a seed and independent of how the vector is split', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 0.9);
    const a = quantize(x, { scale: 1000, clip: 1, seed: 7 }).values;
    const b = quantize(x, { scale: 1000, clip: 1, seed: 7 }).values;
    expect(Array.from(a)).toEqual(Array.from(b));
    const left = quantize(x.subarray(0, 333), { scale: 1000, clip: 1, seed: 7 }).values;
    const right = quantize(x.subarray(333), { scale: 1000, clip: 1, seed: 7, offset: 333 }).values;
    expect([...left, ...right]).toEqual(Array.from(a));
    const c = quantize(x, { scale: 1000, clip: 1, seed: 8 }).values;
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  it('rounds each value to one of its two neighbours, within the clip range (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 200 }),
      fc.integer({ min: 1, max: 2 ** 20 }), fc.nat(),
      (xs, scale, seed) => {
        const clip = 1.5;
        const { values, clipped } = quantize(xs, { scale, clip, seed });
        let outside = 0;
        xs.forEach((x, i) => {
          const c = Math.max(-clip, Math.min(clip, x));
          if (c !== x) outside++;
          const y = c * scale;
          expect(values[i] === Math.floor(y) || values[i] === Math.ceil(y) || Math.abs(values[i]) === Math.floor(clip * scale)).toBe(true);
          expect(Math.abs(values[i])).toBeLessThanOrEqual(Math.floor(clip * scale));
        });
        expect(clipped).toBe(outside);
      },
    ), { numRuns: 100 });
  });

  it('is unbiased: the mean of many roundings of y converges to y', () => {
    const n = 200_000;
    const x = new Float64Array(n).fill(0.3);
    const { values } = quantize(x, { scale: 1, clip: 1, seed: 3 }); // each value is 0 or 1, P(1) = 0.3
    const mean = values.reduce((a, v) => a + v, 0) / n;
    expect(Math.abs(mean - 0.3)).toBeLessThan(0.005); // 5 sigma for n = 2e5
  });

  it('counts clipped values and rejects NaN / Infinity', () => {
    expect(quantize([2, -2, 0.5], { scale: 10, clip: 1, seed: 1 })).toMatchObject({ clipped: 2 });
    expect(Array.from(quantize([2, -2], { scale: 10, clip: 1, seed: 1 }).values)).toEqual([10, -10]);
    for (const bad of [NaN, Infinity, -Infinity]) {
      try {
        quantize([0, bad], { scale: 10, clip: 1 });
        expect.unreachable();
      } catch (e) {
        expect(isFedtwinError(e, 'HE_BAD_ARGUMENT')).toBe(true);
      }
    }
  });

  it('dequantize divides by the scale', () => {
    expect(Array.from(dequantize(Int32Array.from([4, -6]), 2))).toEqual([2, -3]);
  });
});
