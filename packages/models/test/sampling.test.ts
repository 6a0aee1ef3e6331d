// Poisson sampling for DP-SGD: 53-bit uniforms from the OS CSPRNG (or, only when asked, a seeded
// stream), inclusion iff u < q, and whole units (patients) sampled together.
import { describe, expect, it } from 'vitest';
import { isFedtwinError } from '@fedtwin/errors';
import { createRng } from '../src/rng.ts';
import { dpSampleRate, groupUnits, osUniforms, poissonSample, seededUniforms, uniform53 } from '../src/sampling.ts';

describe('DP-SGD sampling', () => {
  it('uniform53 spans [0, 1) on a 2^-53 grid from two u32 words', () => {
    expect(uniform53(0, 0)).toBe(0);
    expect(uniform53(0xffffffff, 0xffffffff)).toBe(1 - 2 ** -53);
    expect(uniform53(0, 0x40)).toBe(2 ** -53); // lowest bit that counts
    expect(uniform53(0, 0x3f)).toBe(0); // bits below it are dropped, not rounded up
    expect(uniform53(0x80000000, 0)).toBe(0.5);
    // A rate far below 2^-32 still has its own inclusion probability (a 32-bit uniform would give 0 or 2^-32).
    const q = 1e-12;
    let included = 0;
    for (let lo = 0; lo < 2 ** 20; lo += 64) if (uniform53(0, lo) < q) included++;
    expect(included).toBe(Math.ceil(q * 2 ** 53)); // exactly the grid points below q: 9008
  });

  it('OS-CSPRNG uniforms are fresh on every call; seeded ones repeat per seed', () => {
    const a = osUniforms(), b = osUniforms();
    const x = Float64Array.from(a.fill(new Float64Array(64)));
    const y = Float64Array.from(b.fill(new Float64Array(64)));
    const x2 = Float64Array.from(a.fill(new Float64Array(64)));
    expect(x).not.toEqual(y);
    expect(x).not.toEqual(x2);
    expect(a.kind).toBe('os-csprng');
    const s1 = seededUniforms(createRng(3)).fill(new Float64Array(64));
    const s2 = seededUniforms(createRng(3)).fill(new Float64Array(64));
    expect(s1).toEqual(s2);
    for (const v of [...x, ...s1]) expect(v >= 0 && v < 1).toBe(true);
  });

  it('inclusion frequency is q (6σ, 2·10⁶ trials per source)', () => {
    for (const src of [osUniforms(), seededUniforms(createRng(11))]) {
      const n = 20_000, steps = 100, q = 0.037;
      const picked = new Int32Array(n), groups = new Int32Array(n + 1);
      const u = new Float64Array(n);
      let total = 0;
      const perRow = new Int32Array(n);
      for (let s = 0; s < steps; s++) {
        const { rows, groups: g } = poissonSample(src.fill(u), q, undefined, picked, groups);
        expect(g).toBe(rows); // one group per row without units
        for (let i = 0; i < rows; i++) perRow[picked[i]]++;
        total += rows;
      }
      const trials = n * steps, sd = Math.sqrt(trials * q * (1 - q));
      expect(Math.abs(total - trials * q)).toBeLessThan(6 * sd);
      // No row is favoured: the first and second half are included equally often (6σ of their difference).
      let first = 0;
      for (let i = 0; i < n / 2; i++) first += perRow[i];
      expect(Math.abs(2 * first - total)).toBeLessThan(6 * Math.sqrt(total));
    }
  });

  it('with units, a unit is in or out as a whole and groups are its rows', () => {
    // 6 rows, 3 patients: rows 0,3,5 → unit 0; rows 1,4 → unit 1; row 2 → unit 2.
    const units = groupUnits(Int32Array.from([0, 1, 2, 0, 1, 0]), 6);
    expect(units.count).toBe(3);
    expect(Array.from(units.start)).toEqual([0, 3, 5, 6]);
    expect(Array.from(units.rows)).toEqual([0, 3, 5, 1, 4, 2]);
    const picked = new Int32Array(6), groups = new Int32Array(7);
    const r = poissonSample(Float64Array.from([0.1, 0.9, 0.2]), 0.5, units, picked, groups);
    expect(r).toEqual({ rows: 4, groups: 2 });
    expect(Array.from(picked.subarray(0, 4))).toEqual([0, 3, 5, 2]);
    expect(Array.from(groups.subarray(0, 3))).toEqual([0, 3, 4]);
  });

  it('the sampling rate counts units when there are units', () => {
    expect(dpSampleRate(64, 1024)).toBe(1 / 16);
    expect(dpSampleRate(16, 1024, 256)).toBe(1 / 16);
    expect(dpSampleRate(2000, 1024)).toBe(1);
    for (const bad of [[0, 10], [8, 0], [8, 10, 11], [8, 10, 0], [8.5, 10]] as const) {
      expect(() => dpSampleRate(bad[0], bad[1], bad[2])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
    }
  });

  it('unit ids must be dense 0..U-1, one per row', () => {
    const err = (f: () => unknown): string => {
      try { f(); } catch (e) { return isFedtwinError(e) ? e.code : String(e); }
      return 'no error';
    };
    expect(err(() => groupUnits(Int32Array.from([0, 1]), 3))).toBe('MODELS_BAD_ARGUMENT'); // length
    expect(err(() => groupUnits(Int32Array.from([0, 2, 2]), 3))).toBe('MODELS_BAD_ARGUMENT'); // unit 1 has no row
    expect(err(() => groupUnits(Int32Array.from([0, -1, 1]), 3))).toBe('MODELS_BAD_ARGUMENT');
  });
});
