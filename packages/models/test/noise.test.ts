// DP noise sources: the worker-fed OS-CSPRNG ring hands out fresh N(0,1) draws every step, and the
// ziggurat over an arbitrary u32 stream is the very ziggurat of Rng.normal.
import { describe, expect, it } from 'vitest';
import { createRng, normalsFrom } from '../src/rng.ts';
import { osNoise, secureNoise, seededNoise } from '../src/noise.ts';

function moments(z: Float32Array): { mean: number; variance: number; beyond3: number } {
  let s = 0, s2 = 0, t = 0;
  for (const v of z) {
    s += v;
    s2 += v * v;
    if (Math.abs(v) > 3) t++;
  }
  const mean = s / z.length;
  return { mean, variance: s2 / z.length - mean * mean, beyond3: t / z.length };
}

describe('noise sources', () => {
  it('normalsFrom over a xoshiro stream reproduces Rng.normals exactly (same ziggurat, same slow path)', () => {
    const a = createRng(99);
    const b = createRng(99);
    const viaRng = a.normals(new Float32Array(200_000));
    const viaU32 = normalsFrom(() => b.nextU32(), new Float32Array(200_000));
    expect(Array.from(viaU32)).toEqual(Array.from(viaRng));
  });

  it('seededNoise draws the same sequence as the stream it wraps', () => {
    const src = seededNoise(createRng(5));
    const first = Float32Array.from(src.next(1000));
    const second = Float32Array.from(src.next(500));
    const ref = createRng(5).normals(new Float32Array(1500));
    expect(Array.from(first)).toEqual(Array.from(ref.subarray(0, 1000)));
    expect(Array.from(second)).toEqual(Array.from(ref.subarray(1000)));
  });

  for (const [name, make] of [['worker ring', () => secureNoise(50_000)], ['this thread', () => osNoise()]] as const) {
    it(`secure noise (${name}) is standard normal and fresh on every step`, () => {
      const src = make();
      const steps: Float32Array[] = [];
      for (let k = 0; k < 8; k++) steps.push(Float32Array.from(src.next(50_000))); // wraps the 3-slot ring twice
      const all = new Float32Array(8 * 50_000);
      steps.forEach((s, k) => all.set(s, k * 50_000));
      const m = moments(all);
      // 400k draws: sd of the mean 0.0016, of the variance ~0.0022; P(|z| > 3) = 0.0027
      expect(Math.abs(m.mean)).toBeLessThan(0.01);
      expect(Math.abs(m.variance - 1)).toBeLessThan(0.015);
      expect(m.beyond3).toBeGreaterThan(0.0027 * 0.8);
      expect(m.beyond3).toBeLessThan(0.0027 * 1.2);
      for (let i = 0; i < steps.length; i++) {
        for (let j = i + 1; j < steps.length; j++) expect(steps[i][0] === steps[j][0] && steps[i][1] === steps[j][1] && steps[i][2] === steps[j][2]).toBe(false);
      }
      if (name === 'worker ring') expect(src.kind).toBe('os-csprng-worker');
    });
  }

  it('a worker source refuses a different step size instead of handing out short noise', () => {
    expect(() => secureNoise(1234).next(1235)).toThrow(RangeError);
  });
});
