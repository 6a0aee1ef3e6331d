// DP noise sources: the worker-fed OS-CSPRNG ring hands out fresh N(0,1) draws every step, and the
// ziggurat over an arbitrary u32 stream is Rng.normal's, with a tail that is not cut at 10.087.
import { describe, expect, it } from 'vitest';
import { createRng, normalsFrom, zigguratDraw, zigguratWidths } from '../src/rng.ts';
import { log10GaussianTail, openUniform, SAMPLER_MAX_ABS_Z, samplerTruncationLog10Delta, ZIGGURAT_R } from '../src/gaussian.ts';
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
  it('normalsFrom over a xoshiro stream is Rng.dpNormals exactly: (Z₁ + Z₂)/√2 of two ziggurat draws, which are Rng.normals until the first tail draw', () => {
    const viaRng = createRng(99).dpNormals(new Float32Array(200_000));
    const b = createRng(99);
    const viaU32 = normalsFrom(() => b.nextU32(), new Float32Array(200_000));
    expect(Array.from(viaU32)).toEqual(Array.from(viaRng));
    const c = createRng(99);
    const draws = Float64Array.from({ length: 400_000 }, () => zigguratDraw(() => c.nextU32()));
    expect(Array.from(viaU32.subarray(0, 1000))).toEqual(Array.from({ length: 1000 }, (_, i) => Math.fround((draws[2 * i]! + draws[2 * i + 1]!) * Math.SQRT1_2)));
    // Same ziggurat body as the ML sampler; only the tail (|z| > r) draws differently (and more words).
    const ml = createRng(99).normals(new Float32Array(400_000));
    const firstTail = draws.findIndex((z) => Math.abs(z) > ZIGGURAT_R);
    expect(firstTail).toBeGreaterThan(0); // P(|z| > r) = 5.8e-4: ~230 tail draws in 400k
    expect(Array.from(ml.subarray(0, firstTail))).toEqual(Array.from(Float32Array.from(draws.subarray(0, firstTail))));
  });

  it('the DP sampler has no tail cut at 10.087: extreme uniforms reach far beyond it', () => {
    // First word: layer 0 with |hz| past the base strip → tail. Then the x uniform: two all-zero words
    // (each moves it 2^-32 lower) and 1, 0 → u = (2^20 + ½)·2^-116, x = −ln u / r. Then the y uniform,
    // nine zero words deep, so y ≥ x²/2 and x is accepted.
    const words = [0x7fffff80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let k = 0;
    const z = zigguratDraw(() => { if (k >= words.length) throw new Error('stream exhausted'); return words[k++]; });
    expect(z).toBeGreaterThan(10.087);
    expect(z).toBeCloseTo(ZIGGURAT_R - Math.log(2 ** -116 * (2 ** 20 + 0.5)) / ZIGGURAT_R, 4); // ≈ 22.7
    expect(k).toBe(words.length);
    // normalsFrom sums two such draws: the same words twice give √2·z.
    let j = 0;
    const pair = normalsFrom(() => words[j++ % words.length]!, new Float32Array(1))[0]!;
    expect(pair).toBeCloseTo(Math.SQRT2 * z, 4);
  });

  it('floating-point attack (Mironov 2012; Jin et al. 2022): one ziggurat draw lands on its layer grid, the secure sampler\'s output does not', () => {
    // A base-strip draw of layer i is fround(hz · w[i]) with hz a multiple of 128: an observer who sees a noised
    // value can test each candidate for "is value − candidate on some layer's grid". Near 0 that grid is far
    // coarser than float32's own spacing, so a value off every grid rules a candidate out. The test plays the
    // observer on small outputs (|v| < 1e-4) of both samplers, with the same OS-CSPRNG-like stream.
    const w = zigguratWidths();
    const onGrid = (v: number) => {
      for (let i = 0; i < w.length; i++) {
        const step = 128 * w[i]!;
        if (Math.fround(Math.round(v / step) * step) === v) return true;
      }
      return false;
    };
    const rng = createRng(20261204);
    const u32 = () => rng.nextU32();
    const small = { single: [] as number[], secure: [] as number[] };
    const buf = new Float32Array(1);
    for (let k = 0; k < 3_000_000 && (small.single.length < 150 || small.secure.length < 150); k++) {
      const a = Math.fround(zigguratDraw(u32));
      if (Math.abs(a) < 1e-4 && a !== 0) small.single.push(a);
      const b = normalsFrom(u32, buf)[0]!;
      if (Math.abs(b) < 1e-4 && b !== 0) small.secure.push(b);
    }
    expect(small.single.length).toBeGreaterThanOrEqual(100);
    expect(small.secure.length).toBeGreaterThanOrEqual(100);
    const rate = (xs: number[]) => xs.filter(onGrid).length / xs.length;
    // Every small single draw is on a grid (it can only be a base-strip draw): the attack's test always succeeds.
    expect(rate(small.single)).toBe(1);
    // The secure sampler's small outputs are on a grid only by the chance any float32 there has (≈ 0.1).
    expect(rate(small.secure)).toBeLessThan(0.35);
  });

  it('openUniform is in (0, 1) even on an all-zero or all-one stream (−ln u finite)', () => {
    const lo = openUniform(() => 0);
    expect(lo).toBeGreaterThan(0);
    expect(-Math.log(lo)).toBeCloseTo(1045 * Math.LN2, 6);
    expect(openUniform(() => 0xffffffff)).toBe(1 - 2 ** -53);
    // The largest |z| the DP sampler can return, and its Gaussian mass (log10), are what docs/privacy.md states.
    expect(SAMPLER_MAX_ABS_Z).toBeCloseTo(ZIGGURAT_R + Math.sqrt(2 * 1045 * Math.LN2), 6);
    expect(SAMPLER_MAX_ABS_Z).toBeGreaterThan(41.5);
    expect(log10GaussianTail(SAMPLER_MAX_ABS_Z)).toBeLessThan(-376);
    // Total variation of one step's noise from exact Gaussian noise, 10⁹ coordinates (two draws each), and the δ it
    // adds at ε = 100 over 10⁶ steps: the figures docs/privacy.md gives.
    expect(samplerTruncationLog10Delta(0.5, 1e9)).toBeCloseTo(-366.47, 2);
    expect(Math.log10(1 + Math.exp(100)) + 6 + samplerTruncationLog10Delta(0.5, 1e9)).toBeLessThan(-316);
  });

  it('log10GaussianTail is log10 Φ̄(t), also far past double range', () => {
    // log10 Φ̄(t), 30-digit references (mpmath log10(ncdf(-t))).
    const ref: Array<[number, number]> = [[0, Math.log10(0.5)], [1, -0.7995455414919705], [3, -2.869699035929369], [5, -6.542645672390656],
      [10, -23.118053405486076], [40, -349.43700645934584]];
    for (const [t, l] of ref) expect(log10GaussianTail(t)).toBeCloseTo(l, 9);
  });

  it('the DP sampler\'s tail is the normal tail (6σ on the count beyond r and beyond 4)', () => {
    const src = osNoise();
    const n = 2_000_000;
    let beyondR = 0, beyond4 = 0;
    for (let k = 0; k < n; k += 100_000) {
      for (const z of src.next(100_000)) {
        if (Math.abs(z) > ZIGGURAT_R) beyondR++;
        if (Math.abs(z) > 4) beyond4++;
      }
    }
    for (const [count, p] of [[beyondR, 2 * 10 ** log10GaussianTail(ZIGGURAT_R)], [beyond4, 2 * 10 ** log10GaussianTail(4)]]) {
      expect(Math.abs(count - n * p)).toBeLessThan(6 * Math.sqrt(n * p));
    }
  });

  it('seededNoise draws the DP sampler\'s sequence over the stream it wraps (not the ML sampler\'s)', () => {
    const src = seededNoise(createRng(5));
    const first = Float32Array.from(src.next(10_000));
    const second = Float32Array.from(src.next(5_000));
    const b = createRng(5);
    const ref = normalsFrom(() => b.nextU32(), new Float32Array(15_000));
    expect(Array.from(first)).toEqual(Array.from(ref.subarray(0, 10_000)));
    expect(Array.from(second)).toEqual(Array.from(ref.subarray(10_000)));
    // ~9 tail draws in 15k: from the first one on, the truncated ML sampler's sequence differs.
    expect(Array.from(createRng(5).normals(new Float32Array(15_000)))).not.toEqual(Array.from(ref));
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
