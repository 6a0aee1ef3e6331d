// Site-level DP-FedAvg, the member's half: clipping to C and this member's noise share z·C/√m.
import { describe, expect, it } from 'vitest';
import { privatizeSiteUpdate } from '../src/index.ts';

/** A deterministic "sampler" that records the std it was asked for and writes std·k into slot k. */
function recording(): { normal: (out: Float32Array, std: number) => void; stds: number[] } {
  const stds: number[] = [];
  return { stds, normal: (out, std) => { stds.push(std); out.forEach((_, k) => (out[k] = std * (k % 3 - 1))); } };
}

/** Seeded Box–Muller, for the statistical check. */
function gaussian(seed: number): (out: Float32Array, std: number) => void {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return (out, std) => {
    for (let i = 0; i < out.length; i++) out[i] = std * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  };
}

describe('privatizeSiteUpdate', () => {
  it('clips an update above C to norm C and leaves one below C unscaled', () => {
    const big = Float32Array.from([3, 4]); // norm 5
    const r = privatizeSiteUpdate(big, 1, 0, 1, recording().normal);
    expect(r.norm).toBeCloseTo(5, 6);
    expect(r.scaled).toBe(true);
    expect(Array.from(r.values)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    const small = Float32Array.from([0.3, 0.4]);
    const s = privatizeSiteUpdate(small, 1, 0, 1, recording().normal);
    expect(s.scaled).toBe(false);
    expect(Array.from(s.values)).toEqual(Array.from(small));
  });

  it("asks for this member's share z·C/√minParticipants and adds it to the clipped update", () => {
    const rec = recording();
    const r = privatizeSiteUpdate(Float32Array.from([3, 4, 0]), 2, 1.5, 9, rec.normal);
    expect(rec.stds).toEqual([(1.5 * 2) / 3]);
    // clipped to norm 2: (1.2, 1.6, 0); noise std·(k % 3 − 1) = (−1, 0, 1)
    expect(Array.from(r.values).map((v) => Number(v.toFixed(5)))).toEqual([0.2, 1.6, 1]);
  });

  it('the noise summed over minParticipants members has variance (z·C)² per coordinate', () => {
    const m = 4, z = 1.1, C = 0.5, n = 40_000;
    const total = new Float64Array(n);
    for (let k = 0; k < m; k++) {
      const r = privatizeSiteUpdate(new Float32Array(n), C, z, m, gaussian(1000 + k));
      for (let i = 0; i < n; i++) total[i] += r.values[i]!;
    }
    let s2 = 0;
    for (const v of total) s2 += v * v;
    // 40k draws: the sample variance is within ~1.5% (sd ≈ √(2/n)) of (zC)² = 0.3025
    expect(s2 / n / (z * C) ** 2).toBeGreaterThan(0.95);
    expect(s2 / n / (z * C) ** 2).toBeLessThan(1.05);
  });

  it('rejects a non-positive clip, a negative noise multiplier and a non-integer minParticipants (DP_BAD_ARGUMENT)', () => {
    const d = new Float32Array(2);
    for (const [c, z, m] of [[0, 1, 1], [1, -1, 1], [1, 1, 1.5], [Number.NaN, 1, 1]]) {
      expect(() => privatizeSiteUpdate(d, c!, z!, m!, recording().normal)).toThrow(expect.objectContaining({ code: 'DP_BAD_ARGUMENT' }));
    }
  });
});
