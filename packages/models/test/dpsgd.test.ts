import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, createTwinVae, initBackend, VAE_LAYERS } from '../src/index.ts';
import type { EncodedTable, Segment } from '../src/index.ts';
import { getVaeCore } from '../src/vae.ts';
import type { VaeCore } from '../src/vae.ts';
import { clippedGradSums, dpSgdStep, perExampleGradNorms } from '../src/dpsgd.ts';
import type { NoiseSource } from '../src/noise.ts';
import type { DpBatch } from '../src/dpsgd.ts';
import { clippedParamGrads, denseGroupSqNorm, forwardBackward, gramSqNorm, lnGroupSqNorm, outerSumSqNorm, paramGrads, perExampleSqNorms, perExampleSqNormsJs } from '../src/vae-grad.ts';
import { createFlatAdam } from '../src/adam.ts';
import { runTraining } from '../src/train.ts';
import { MIN_NOISE_MULTIPLIER } from '../src/gaussian.ts';

const segments: Segment[] = [
  { column: 'a', kind: 'numeric', offset: 0, width: 1 },
  { column: 'b', kind: 'categorical', offset: 1, width: 2 },
  { column: 'c', kind: 'numeric', offset: 3, width: 1 },
];
const W = 4, C = 3, Z = 2, ROWS = 7;

function batch(seed: number): DpBatch {
  const rng = createRng(seed);
  const x = new Float32Array(ROWS * W), y = new Float32Array(ROWS * C);
  for (let i = 0; i < ROWS; i++) {
    x[i * W] = rng.uniform(); x[i * W + 3] = rng.uniform();
    x[i * W + 1 + rng.int(2)] = 1;
    y[i * C + rng.int(C)] = 1;
  }
  const eps = Float32Array.from({ length: ROWS * Z }, () => rng.normal());
  return { x, y, eps, rows: ROWS };
}

/** Reference: one backward pass per example. Returns per-example flat gradients. */
function perExampleLoop(core: VaeCore, b: DpBatch): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < b.rows; i++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(core.lossPerExample(
      tf.tensor2d(b.x.subarray(i * W, (i + 1) * W), [1, W]),
      tf.tensor2d(b.y.subarray(i * C, (i + 1) * C), [1, C]),
      tf.tensor2d(b.eps.subarray(i * Z, (i + 1) * Z), [1, Z]))) as tf.Scalar, core.vars);
    const flat = new Float32Array(core.vars.reduce((a, v) => a + v.size, 0));
    let off = 0;
    for (const v of core.vars) { flat.set(grads[v.name].dataSync(), off); off += v.size; }
    tf.dispose([value, ...Object.values(grads)]);
    out.push(flat);
  }
  return out;
}

describe('DP-SGD (ghost clipping)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  function tinyModel(): ReturnType<typeof createTwinVae> {
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 5, seed: 8, sharedLayers: VAE_LAYERS });
    // Non-zero adapter so its per-example norms are exercised.
    const w = m.getSharedWeights();
    const rng = createRng(1);
    for (let i = 0; i < w.length; i++) if (w[i] === 0) w[i] = 0.1 * rng.normal();
    m.setSharedWeights(w);
    return m;
  }

  it('per-example gradient norms equal the per-example loop', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const b = batch(3);
      const ghost = perExampleGradNorms(core, b);
      const loop = perExampleLoop(core, b).map((g) => Math.hypot(...g));
      expect(ghost.length).toBe(ROWS);
      for (let i = 0; i < ROWS; i++) expect(Math.abs(ghost[i] - loop[i])).toBeLessThan(1e-3 * Math.max(1, loop[i]));
      // The JS reduction used in training equals the tensor one.
      tf.tidy(() => {
        const fb = forwardBackward(core, tf.tensor2d(b.x, [ROWS, W]), tf.tensor2d(b.y, [ROWS, C]), tf.tensor2d(b.eps, [ROWS, Z]), 1);
        const t = perExampleSqNorms(core, fb).dataSync();
        const js = perExampleSqNormsJs(core, fb);
        for (let i = 0; i < ROWS; i++) expect(Math.abs(js[i] - t[i])).toBeLessThan(1e-4 * Math.max(1, t[i]));
      });
    } finally {
      m.dispose();
    }
  });

  it('clipped sums equal Σ_i min(1, C/‖g_i‖)·g_i from the loop', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const b = batch(4);
      const loop = perExampleLoop(core, b);
      const norms = loop.map((g) => Math.hypot(...g));
      const clip = [...norms].sort((a, c) => a - c)[3]; // clips about half of the examples
      const expected = new Float64Array(loop[0].length);
      loop.forEach((g, i) => { const s = Math.min(1, clip / norms[i]); for (let j = 0; j < g.length; j++) expected[j] += s * g[j]; });
      const sums = clippedGradSums(core, b, clip);
      let off = 0;
      for (const v of core.vars) {
        const got = sums.get(v.name)!.dataSync();
        for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - expected[off + j])).toBeLessThan(1e-3 * Math.max(1, Math.abs(expected[off + j])));
        off += v.size;
      }
      tf.dispose([...sums.values()]);
    } finally {
      m.dispose();
    }
  });

  it('DP training uses Poisson sampling, reports the sample rate and leaks no tensors', async () => {
    const rng = createRng(5);
    const rows = 200;
    const x = new Float32Array(rows * W), cond = new Int32Array(rows);
    for (let i = 0; i < rows; i++) { cond[i] = rng.int(C); x[i * W] = rng.uniform(); x[i * W + 1 + rng.int(2)] = 1; x[i * W + 3] = rng.uniform(); }
    const data: EncodedTable = { x, rows, width: W, segments, cond, classes: ['p', 'q', 'r'] };
    const n0 = tf.memory().numTensors;
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 16, seed: 2 });
    const counts: number[] = [];
    try {
      const before = m.getSharedWeights();
      const r = await m.trainEpochs(data, {
        epochs: 3, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, seeded: true },
        onEpoch: () => counts.push(tf.memory().numTensors),
      });
      expect(r.sampleRate).toBeCloseTo(0.1, 12);
      expect(r.steps).toBe(30); // round(1/q) steps per epoch
      expect(r.examples).toBeGreaterThan(300); // ≈ 600 expected
      expect(r.examples).toBeLessThan(900);
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(m.getSharedWeights()).not.toEqual(before);
      expect(new Set(counts).size).toBe(1);
      // Same seed → same samples, noise and result (in seeded mode)...
      const m2 = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 16, seed: 2 });
      await m2.trainEpochs(data, { epochs: 3, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, seeded: true } });
      expect(m2.getSharedWeights()).toEqual(m.getSharedWeights());
      m2.dispose();
      // ...while by default the noise is not derivable from the seed.
      const m3 = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 16, seed: 2 });
      await m3.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1 } });
      const m4 = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 16, seed: 2 });
      await m4.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1 } });
      expect(m3.getSharedWeights()).not.toEqual(m4.getSharedWeights());
      m3.dispose(); m4.dispose();
    } finally {
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(n0);
  });
  it('DP training takes q from a public population (the node\'s DP count), not the private row count; inconsistent inputs are MODELS_DP_INCONSISTENT', async () => {
    const rng = createRng(6);
    const rows = 200;
    const x = new Float32Array(rows * W), cond = new Int32Array(rows);
    for (let i = 0; i < rows; i++) { cond[i] = rng.int(C); x[i * W] = rng.uniform(); x[i * W + 1 + rng.int(2)] = 1; x[i * W + 3] = rng.uniform(); }
    const data: EncodedTable = { x, rows, width: W, segments, cond, classes: ['p', 'q', 'r'] };
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 16, seed: 2 });
    try {
      const r = await m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, population: 250, sampleRate: 20 / 250 } });
      expect(r.sampleRate).toBe(20 / 250);
      expect(r.steps).toBe(Math.round(250 / 20));
      const small = await m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, population: 12 } });
      expect(small).toMatchObject({ sampleRate: 1, steps: 1 });
      const inconsistent = expect.objectContaining({ code: 'MODELS_DP_INCONSISTENT' });
      await expect(m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, population: 250, sampleRate: 20 / 200 } })).rejects.toEqual(inconsistent);
      await expect(m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, population: 250.5 } })).rejects.toEqual(inconsistent);
      await expect(m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, population: 0 } })).rejects.toEqual(inconsistent);
    } finally {
      m.dispose();
    }
  });
  it('fused JS clipping equals the tensor path aᵀ·diag(s)·gz (scales, every variable, no leaks)', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const b = batch(5);
      const n0 = tf.memory().numTensors;
      tf.tidy(() => {
        const fb = forwardBackward(core, tf.tensor2d(b.x, [ROWS, W]), tf.tensor2d(b.y, [ROWS, C]), tf.tensor2d(b.eps, [ROWS, Z]), 1);
        const norms = Array.from(perExampleSqNorms(core, fb).dataSync(), Math.sqrt);
        const clip = [...norms].sort((p, q) => p - q)[2]; // some rows clipped, some not
        const { grads, scales } = clippedParamGrads(core, fb, clip);
        for (let i = 0; i < ROWS; i++) expect(scales[i]).toBeCloseTo(Math.min(1, clip / norms[i]), 5);
        expect(scales.some((x) => x < 1) && scales.some((x) => x === 1)).toBe(true);
        const ref = paramGrads(core, fb, tf.tensor2d(Float32Array.from(scales), [ROWS, 1]));
        expect(Object.keys(grads).sort()).toEqual(core.vars.map((v) => v.name).sort());
        for (const v of core.vars) {
          const g = grads[v.name];
          const got = g instanceof Float32Array ? g : g.dataSync();
          const want = ref[v.name].dataSync();
          expect(got.length).toBe(v.size);
          for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - want[j])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[j])));
        }
      });
      expect(tf.memory().numTensors).toBe(n0);
    } finally {
      m.dispose();
    }
  });

  it('a DP step asks for one draw of the whole step and hands the optimizer std z·C and divisor q·N', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const total = core.vars.reduce((a, v) => a + v.size, 0);
      const asked: number[] = [];
      const src: NoiseSource = { kind: 'seeded', next: (n) => { asked.push(n); return new Float32Array(n); } };
      const opt = createFlatAdam(core.vars, 1e-3);
      const seen: unknown[] = [];
      const spy = { ...opt, applyGradients: (g: Parameters<typeof opt.applyGradients>[0], noise?: Parameters<typeof opt.applyGradients>[1]) => { seen.push(noise); opt.applyGradients(g, noise); } };
      dpSgdStep(core, spy, batch(3), { clip: 0.5, noiseMultiplier: 1.1, expectedBatch: 12.5, noise: src }).dispose();
      expect(asked).toEqual([total]);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ std: 0.55, divisor: 12.5 });
    } finally {
      m.dispose();
    }
  });

  it('the optimizer adds std·z per coordinate before dividing (sign flips exactly where std·|z| passes the gradient)', () => {
    for (const [std, expectSign] of [[0.2, -1], [0.4, 1]] as const) {
      const v = tf.variable(tf.zeros([4]), true, `noise-threshold-${std}`);
      try {
        const opt = createFlatAdam([v], 1e-2);
        const z = Float32Array.from([-1, -1, -1, -1]);
        // g = 0.3 everywhere; noised (0.3 − std)/8: positive below std 0.3 (Adam steps down), negative above
        opt.applyGradients({ [v.name]: new Float32Array(4).fill(0.3) }, { std, divisor: 8, source: { kind: 'seeded', next: () => z } });
        for (const p of v.dataSync()) expect(Math.sign(p)).toBe(expectSign);
      } finally {
        v.dispose();
      }
    }
  });

  it('the optimizer rejects a gradient of the wrong size', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const opt = createFlatAdam(core.vars, 1e-3);
      const grads = Object.fromEntries(core.vars.map((v) => [v.name, new Float32Array(v.size)]));
      grads[core.vars[0].name] = new Float32Array(core.vars[0].size + 1);
      expect(() => opt.applyGradients(grads)).toThrow(expect.objectContaining({ code: 'MODELS_WEIGHT_SIZE' }));
    } finally {
      m.dispose();
    }
  });

  /** `rows` rows; patient `k` of them (rows 0..k-1) are copies of one visit, the rest are distinct. */
  function patientTable(rows: number, k: number): EncodedTable {
    const rng = createRng(21);
    const x = new Float32Array(rows * W), cond = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      if (i < k && i > 0) { x.copyWithin(i * W, 0, W); cond[i] = cond[0]; continue; }
      cond[i] = rng.int(C); x[i * W] = rng.uniform(); x[i * W + 1 + rng.int(2)] = 1; x[i * W + 3] = rng.uniform();
    }
    return { x, rows, width: W, segments, cond, classes: ['p', 'q', 'r'] };
  }

  it('sampling masks come from the OS CSPRNG: equal seeds give different masks unless seeded mode is asked for; inclusion rate ≈ q', async () => {
    const data = patientTable(200, 1);
    const masks = async (seeded: boolean): Promise<string[]> => {
      const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 8, seed: 2 });
      const seen: string[] = [];
      try {
        await runTraining(getVaeCore(m), data, { epochs: 2, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, ...(seeded ? { seeded: true } : {}) } },
          () => false, { onSample: (rows) => seen.push(Array.from(rows).join(',')) });
      } finally {
        m.dispose();
      }
      return seen;
    };
    const [a, b, s1, s2] = [await masks(false), await masks(false), await masks(true), await masks(true)];
    expect(a).toHaveLength(20); // 2 epochs × round(1/q) steps
    // An attacker who knows the seed (default 1 on every node) must not know the batches.
    expect(a).not.toEqual(b);
    expect(a.filter((x, i) => x === b[i]).length).toBeLessThan(3); // P(two independent 200-row masks agree) < 1e-20 each, empties aside
    expect(s1).toEqual(s2);
    // 20 steps × 200 rows at q = 0.1: 400 expected inclusions, σ = 13.4.
    const count = (ms: string[]): number => ms.reduce((n, x) => n + (x === '' ? 0 : x.split(',').length), 0);
    for (const ms of [a, b, s1]) expect(Math.abs(count(ms) - 400)).toBeLessThan(6 * Math.sqrt(4000 * 0.1 * 0.9));
    // The older spelling secureNoise: false is seeded mode; contradicting options are refused.
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 8, seed: 2 });
    try {
      const old: string[] = [];
      await runTraining(getVaeCore(m), data, { epochs: 2, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, secureNoise: false } },
        () => false, { onSample: (rows) => old.push(Array.from(rows).join(',')) });
      expect(old).toEqual(s1);
      await expect(m.trainEpochs(data, { epochs: 1, batchSize: 20, learningRate: 1e-2, seed: 7, dp: { clip: 1, noiseMultiplier: 1.1, seeded: true, secureNoise: true } }))
        .rejects.toMatchObject({ code: 'MODELS_BAD_ARGUMENT' });
    } finally {
      m.dispose();
    }
  });

  it('noise below z = 0.5 is refused (MODELS_NOISE_TOO_SMALL): the sampler\'s tail bound assumes it', async () => {
    expect(MIN_NOISE_MULTIPLIER).toBe(0.5);
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 4, seed: 2 });
    try {
      for (const z of [0, 0.2, 0.4999]) {
        await expect(m.trainEpochs(patientTable(20, 1), { epochs: 1, batchSize: 5, learningRate: 1e-2, seed: 1, dp: { clip: 1, noiseMultiplier: z } }))
          .rejects.toMatchObject({ code: 'MODELS_NOISE_TOO_SMALL', hint: expect.stringContaining('0.5') });
      }
      await expect(m.trainEpochs(patientTable(20, 1), { epochs: 1, batchSize: 5, learningRate: 1e-2, seed: 1, dp: { clip: 1, noiseMultiplier: 0.5 } })).resolves.toBeDefined();
    } finally {
      m.dispose();
    }
  });

  it('per-unit clipping bounds a k-visit patient\'s influence by C, where per-record clipping lets it grow k×', () => {
    const k = 6, rows = 10, clip = 0.05; // every row's gradient norm is well above C: all are clipped
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const data = patientTable(rows, k);
      const eps = new Float32Array(rows * Z);
      const rng = createRng(2);
      for (let i = 0; i < rows * Z; i++) eps[i] = i < k * Z ? [0.3, -0.7][i % Z] : rng.normal();
      const y = new Float32Array(rows * C);
      for (let i = 0; i < rows; i++) y[i * C + data.cond[i]] = 1;
      // Clipped sum over rows [from, rows), with the patient (rows 0..k-1) either one unit or k records.
      const sum = (from: number, perUnit: boolean): Float64Array => {
        const flat: number[] = [];
        tf.tidy(() => {
          const n = rows - from;
          const fb = forwardBackward(core, tf.tensor2d(data.x.subarray(from * W), [n, W]), tf.tensor2d(y.subarray(from * C), [n, C]), tf.tensor2d(eps.subarray(from * Z), [n, Z]), 1);
          const groups = perUnit && from === 0 ? Int32Array.from([0, k, ...Array.from({ length: rows - k }, (_, i) => k + i + 1)]) : undefined;
          const { grads } = clippedParamGrads(core, fb, clip, groups);
          for (const v of core.vars) { const g = grads[v.name]; flat.push(...(g instanceof Float32Array ? g : g.dataSync())); }
        });
        return Float64Array.from(flat);
      };
      const influence = (perUnit: boolean): number => {
        const withP = sum(0, perUnit), without = sum(k, perUnit);
        return Math.hypot(...withP.map((v, i) => v - without[i]));
      };
      const record = influence(false), unit = influence(true);
      expect(record).toBeCloseTo(k * clip, 4); // k identical clipped gradients add up
      expect(unit).toBeLessThanOrEqual(clip * (1 + 1e-5));
      expect(unit).toBeCloseTo(clip, 4); // and the patient's summed gradient is itself clipped to C
    } finally {
      m.dispose();
    }
  });

  it('per-unit norms ‖Σ_{i∈u} ∇_i‖ equal the per-example loop summed per unit (Gram and outer-sum paths)', () => {
    const m = tinyModel();
    try {
      const core = getVaeCore(m);
      const b = batch(6);
      const loop = perExampleLoop(core, b);
      const groups = Int32Array.from([0, 1, 3, 7]); // sizes 1, 2, 4: a group of 4 sums enc.mu's 5×2 outer products directly
      const unitGrads = [0, 1, 2].map((g) => {
        const acc = new Float64Array(loop[0].length);
        for (let i = groups[g]; i < groups[g + 1]; i++) loop[i].forEach((v, j) => { acc[j] += v; });
        return acc;
      });
      const norms = unitGrads.map((g) => Math.hypot(...g));
      const clip = [...norms].sort((p, q) => p - q)[1];
      tf.tidy(() => {
        const fb = forwardBackward(core, tf.tensor2d(b.x, [ROWS, W]), tf.tensor2d(b.y, [ROWS, C]), tf.tensor2d(b.eps, [ROWS, Z]), 1);
        const { grads, scales } = clippedParamGrads(core, fb, clip, groups);
        for (let g = 0; g < 3; g++) {
          const want = Math.min(1, clip / norms[g]);
          for (let i = groups[g]; i < groups[g + 1]; i++) expect(scales[i]).toBeCloseTo(want, 5);
        }
        const expected = new Float64Array(loop[0].length);
        unitGrads.forEach((ug, g) => { const s = Math.min(1, clip / norms[g]); ug.forEach((v, j) => { expected[j] += s * v; }); });
        let off = 0;
        for (const v of core.vars) {
          const gv = grads[v.name];
          const got = gv instanceof Float32Array ? gv : gv.dataSync();
          for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - expected[off + j])).toBeLessThan(1e-3 * Math.max(1, Math.abs(expected[off + j])));
          off += v.size;
        }
      });
    } finally {
      m.dispose();
    }
  });

  it('a unit\'s summed dense / layer-norm gradient norm: Gram form, outer-sum form and the explicit sum agree', () => {
    const rng = createRng(9);
    const aIn = 6, out = 4, rows = 9;
    const a = Float32Array.from({ length: rows * aIn }, () => (rng.uniform() < 0.3 ? 0 : rng.normal()));
    const g = Float32Array.from({ length: rows * out }, () => rng.normal());
    const n = Float32Array.from({ length: rows * out }, () => rng.normal());
    for (const [s, e] of [[0, 1], [2, 4], [1, 9]] as const) {
      let ref = 0;
      for (let p = 0; p < aIn; p++) for (let q = 0; q < out; q++) {
        let w = 0;
        for (let i = s; i < e; i++) w += a[i * aIn + p] * g[i * out + q];
        ref += w * w;
      }
      let lnRef = 0;
      for (let q = 0; q < out; q++) {
        let b = 0, gain = 0;
        for (let i = s; i < e; i++) { b += g[i * out + q]; gain += g[i * out + q] * n[i * out + q]; }
        ref += b * b; lnRef += b * b + gain * gain;
      }
      expect(gramSqNorm(a, aIn, g, out, s, e)).toBeCloseTo(ref, 9);
      expect(outerSumSqNorm(a, aIn, g, out, s, e)).toBeCloseTo(ref, 9);
      expect(denseGroupSqNorm(a, aIn, g, out, s, e)).toBeCloseTo(ref, 9);
      expect(lnGroupSqNorm(g, n, out, s, e)).toBeCloseTo(lnRef, 9);
    }
  });

  it('DP training with units samples whole patients at q = B/U, reports that q, and never feeds the unit to the model', async () => {
    const rows = 120, unitsCount = 30;
    const data = patientTable(rows, 1);
    const units = Int32Array.from({ length: rows }, (_, i) => (i * 7) % unitsCount); // 4 rows per patient, interleaved
    const m = createTwinVae({ width: W, segments, classes: C, latentDim: Z, hidden: 8, seed: 2 });
    try {
      expect(getVaeCore(m).layers.get('enc.h1')!.spec.inDim).toBe(W + C); // the model's input never had a unit column
      const batches: Int32Array[] = [];
      const r = await runTraining(getVaeCore(m), data, { epochs: 2, batchSize: 6, learningRate: 1e-2, seed: 3, dp: { clip: 1, noiseMultiplier: 1, units } },
        () => false, { onSample: (picked) => batches.push(picked.slice()) });
      expect(r.sampleRate).toBe(0.2); // 6 expected patients of 30
      expect(r.steps).toBe(10);
      expect(batches).toHaveLength(10);
      for (const picked of batches) {
        const byUnit = new Map<number, number>();
        for (const row of picked) byUnit.set(units[row], (byUnit.get(units[row]) ?? 0) + 1);
        for (const n of byUnit.values()) expect(n).toBe(4); // a sampled patient brings all 4 visits
      }
      await expect(runTraining(getVaeCore(m), data, { epochs: 1, batchSize: 6, learningRate: 1e-2, seed: 3, dp: { clip: 1, noiseMultiplier: 1, units: units.subarray(1) } }))
        .rejects.toMatchObject({ code: 'MODELS_BAD_ARGUMENT' });
    } finally {
      m.dispose();
    }
  });
});
