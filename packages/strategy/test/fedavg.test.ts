import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createStrategy, fedAvg, versionHash } from '../src/index.ts';

describe('fedavg', () => {
  it('equals the sample-weighted mean of the members\' models', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 8 }),
      fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }),
      (members, g) => {
        const s = fedAvg();
        const global = Float32Array.from(g);
        const sum = new Float64Array(4);
        let total = 0;
        for (const [d, n] of members) {
          const u = s.encodeUpdate(Float32Array.from(d), n);
          u.values.forEach((v, i) => { sum[i]! += v; });
          total += u.weight;
        }
        const next = s.applyAggregate(global, sum, total, members.length);
        for (let i = 0; i < 4; i++) {
          const expected = global[i]! + members.reduce((a, [d, n]) => a + Math.fround(d[i]!) * n, 0) / total;
          expect(next[i]).toBeCloseTo(expected, 2);
        }
      }));
  });

  it('rejects mismatched sizes and bad weights with codes', () => {
    const s = fedAvg();
    expect(() => s.applyAggregate(new Float32Array(3), new Float64Array(2), 1, 1)).toThrow(/3 values|2 values/);
    expect(() => s.encodeUpdate(new Float32Array(2), 0)).toThrowError(expect.objectContaining({ code: 'STRATEGY_BAD_ARGUMENT' }));
    expect(() => createStrategy('nope')).toThrowError(expect.objectContaining({ code: 'STRATEGY_UNKNOWN' }));
  });

  it('version hash depends on every weight', () => {
    const a = new Float32Array([1, 2, 3]);
    const b = new Float32Array([1, 2, 3.0000002]);
    expect(versionHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(versionHash(a)).not.toBe(versionHash(b));
    expect(versionHash(a)).toBe(versionHash(Float32Array.from(a)));
  });
});
