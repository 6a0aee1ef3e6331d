import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRng, deriveSeed } from '../src/index.ts';

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

describe('rng', () => {
  it('is deterministic per seed and differs across seeds and tags', () => {
    const a = createRng(42), b = createRng(42), c = createRng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
    expect(deriveSeed(1, 2)).toBe(deriveSeed(1, 2));
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(1, 3));
    expect(deriveSeed(1, 2, 3)).not.toBe(deriveSeed(1, 3, 2));
  });

  it('uniform in [0,1), int in range, shuffle is a permutation (property)', () => {
    fc.assert(fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
      const r = createRng(seed);
      for (let i = 0; i < 50; i++) {
        const u = r.uniform();
        expect(u >= 0 && u < 1).toBe(true);
        const k = r.int(n);
        expect(Number.isInteger(k) && k >= 0 && k < n).toBe(true);
      }
      const p = r.shuffle(Int32Array.from({ length: 30 }, (_, i) => i));
      expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    }), { numRuns: 50 });
  });

  it('normals(out) gives exactly the normal() sequence', () => {
    const a = createRng(99), b = createRng(99);
    const bulk = a.normals(new Float32Array(50_000));
    for (let i = 0; i < bulk.length; i++) expect(bulk[i]).toBe(Math.fround(b.normal()));
    expect(a.nextU32()).toBe(b.nextU32()); // same state afterwards
  });

  it('normal() is standard normal: moments, KS distance and tail mass', () => {
    const r = createRng(7);
    const n = 200_000;
    const xs = new Float64Array(n);
    let s1 = 0, s2 = 0, s4 = 0, tail = 0;
    for (let i = 0; i < n; i++) {
      const x = r.normal();
      xs[i] = x; s1 += x; s2 += x * x; s4 += x ** 4;
      if (Math.abs(x) > 3.442619855899) tail++;
    }
    expect(Math.abs(s1 / n)).toBeLessThan(0.01); // sd of mean ≈ 0.0022
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.015);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.1);
    // P(|X| > r) = 5.77e-4 → 115 expected; the ziggurat tail path must fire at that rate.
    expect(tail).toBeGreaterThan(70);
    expect(tail).toBeLessThan(170);
    xs.sort();
    let d = 0;
    for (let i = 0; i < n; i++) {
      const f = phi(xs[i]);
      d = Math.max(d, Math.abs(f - i / n), Math.abs(f - (i + 1) / n));
    }
    expect(d).toBeLessThan(1.63 / Math.sqrt(n)); // KS critical value at α = 0.01
  });
});
