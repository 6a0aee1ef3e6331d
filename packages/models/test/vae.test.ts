import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { isFedtwinError } from '@fedtwin/errors';
import { createRng, createTwinVae, initBackend, VAE_LAYERS, DEFAULT_SHARED_LAYERS } from '../src/index.ts';
import type { EncodedTable, Segment } from '../src/index.ts';
import { getVaeCore } from '../src/vae.ts';
import { forwardBackward, paramGrads } from '../src/vae-grad.ts';

// 4 numeric columns + one 3-way categorical; class 1 shifts f0,f1 up and prefers category c.
const segments: Segment[] = [
  { column: 'f0', kind: 'numeric', offset: 0, width: 1 },
  { column: 'f1', kind: 'numeric', offset: 1, width: 1 },
  { column: 'f2', kind: 'numeric', offset: 2, width: 1 },
  { column: 'f3', kind: 'numeric', offset: 3, width: 1 },
  { column: 'cat', kind: 'categorical', offset: 4, width: 3 },
];
const WIDTH = 7;

function synthetic(rows: number, seed: number): EncodedTable {
  const rng = createRng(seed);
  const x = new Float32Array(rows * WIDTH);
  const cond = new Int32Array(rows);
  const clip = (v: number): number => Math.min(1, Math.max(0, v));
  for (let i = 0; i < rows; i++) {
    const c = rng.uniform() < 0.3 ? 1 : 0; // class 1 is the rarer one
    cond[i] = c;
    const r = x.subarray(i * WIDTH, (i + 1) * WIDTH);
    r[0] = clip((c ? 0.8 : 0.2) + 0.05 * rng.normal());
    r[1] = clip((c ? 0.7 : 0.3) + 0.05 * rng.normal());
    r[2] = clip(0.5 + 0.1 * rng.normal());
    r[3] = clip(r[2] * 0.8 + 0.05 * rng.normal());
    const u = rng.uniform();
    const cat = c ? (u < 0.8 ? 2 : u < 0.9 ? 1 : 0) : (u < 0.8 ? 0 : u < 0.9 ? 1 : 2);
    r[4 + cat] = 1;
  }
  return { x, rows, width: WIDTH, segments, cond, classes: ['neg', 'pos'] };
}

const base = { width: WIDTH, segments, classes: ['neg', 'pos'], latentDim: 4, hidden: 32 };

describe('twin VAE', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('same seed → identical initial shared weights; different seed → different', () => {
    const a = createTwinVae({ ...base, seed: 11 });
    const b = createTwinVae({ ...base, seed: 11 });
    const c = createTwinVae({ ...base, seed: 12 });
    try {
      expect(a.getSharedWeights()).toEqual(b.getSharedWeights());
      expect(a.getSharedWeights()).not.toEqual(c.getSharedWeights());
      expect(a.getSharedWeights().length).toBe(a.sharedSize);
    } finally {
      a.dispose(); b.dispose(); c.dispose();
    }
  });

  it('splits shared and private layers; the site adapter stays private and starts at zero', () => {
    const m = createTwinVae({ ...base, seed: 1 });
    try {
      expect(m.sharedLayers).toEqual(DEFAULT_SHARED_LAYERS);
      expect(m.privateLayers).toEqual(['site.adapter']);
      const h = base.hidden, z = base.latentDim, C = 2;
      const dense = (i: number, o: number, norm: boolean): number => i * o + o + (norm ? 2 * o : 0);
      const sharedExpected = dense(WIDTH + C, h, true) + 2 * dense(h, z, false) + dense(z + C, h, true) + dense(h, h, true) + dense(h, WIDTH, false);
      expect(m.sharedSize).toBe(sharedExpected);
      expect(m.privateSize).toBe(h * h + h);
      expect(m.getPrivateWeights().every((v) => v === 0)).toBe(true);
      // Private weights change nothing in the shared vector.
      const before = m.getSharedWeights();
      m.setPrivateWeights(new Float32Array(m.privateSize).fill(0.25));
      expect(m.getSharedWeights()).toEqual(before);
      expect(m.getPrivateWeights().every((v) => v === 0.25)).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it('sharedLayers is configuration; unknown layers and wrong sizes are rejected', () => {
    const m = createTwinVae({ ...base, seed: 1, sharedLayers: ['dec.out', 'enc.h1'] });
    try {
      expect(m.sharedLayers).toEqual(['enc.h1', 'dec.out']); // fixed model order
      expect(m.sharedSize).toBe((WIDTH + 2) * 32 + 32 * 3 + 32 * WIDTH + WIDTH);
      expect(m.sharedSize + m.privateSize).toBe(createTwinVae({ ...base, seed: 1, sharedLayers: VAE_LAYERS }).sharedSize);
      expect(() => m.setSharedWeights(new Float32Array(3))).toThrow(expect.objectContaining({ code: 'MODELS_WEIGHT_SIZE' }));
      const nan = new Float32Array(m.sharedSize); nan[5] = NaN;
      expect(() => m.setSharedWeights(nan)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
    } finally {
      m.dispose();
    }
    expect(() => createTwinVae({ ...base, seed: 1, sharedLayers: ['enc.h9'] })).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
    expect(() => createTwinVae({ ...base, seed: 1, width: 8 })).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
    expect(() => createTwinVae({ ...base, seed: 1, hidden: 0 })).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
  });

  it('shared weights round-trip between models and determine generation', () => {
    const a = createTwinVae({ ...base, seed: 3 });
    const b = createTwinVae({ ...base, seed: 4 });
    try {
      const w = a.getSharedWeights();
      b.setSharedWeights(w);
      expect(b.getSharedWeights()).toEqual(w);
      const ga = a.generate(50, { classCounts: [25, 25], seed: 9 });
      const gb = b.generate(50, { classCounts: [25, 25], seed: 9 });
      expect(gb.x).toEqual(ga.x);
      expect(gb.cond).toEqual(ga.cond);
    } finally {
      a.dispose(); b.dispose();
    }
  });

  it('trains (loss falls), keeps tensor count flat, and generates class-conditional rows', async () => {
    const data = synthetic(384, 5);
    const n0 = tf.memory().numTensors;
    const m = createTwinVae({ ...base, seed: 21 });
    const counts: number[] = [];
    try {
      const r = await m.trainEpochs(data, {
        epochs: 40, batchSize: 32, learningRate: 3e-3, seed: 1,
        onEpoch: () => counts.push(tf.memory().numTensors),
      });
      expect(r.losses).toHaveLength(40);
      expect(r.steps).toBe(40 * 12);
      expect(r.examples).toBe(40 * 384);
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.losses[39]).toBeLessThan(r.losses[0] * 0.6);
      expect(new Set(counts.slice(1)).size).toBe(1); // no tensor growth across epochs

      const g = m.generate(600, { classCounts: [300, 300], seed: 2 });
      expect(g.x.length).toBe(600 * WIDTH);
      let f0 = [0, 0], f1 = [0, 0], catC = [0, 0];
      for (let i = 0; i < 600; i++) {
        const row = g.x.subarray(i * WIDTH, (i + 1) * WIDTH);
        const c = g.cond[i];
        for (let j = 0; j < 4; j++) expect(row[j] >= 0 && row[j] <= 1).toBe(true);
        expect(row[4] + row[5] + row[6]).toBe(1); // one-hot of the sampled category
        f0[c] += row[0] / 300; f1[c] += row[1] / 300; catC[c] += row[6] / 300;
      }
      expect(g.cond.filter((c) => c === 1).length).toBe(300);
      expect(f0[1] - f0[0]).toBeGreaterThan(0.3); // true gap 0.6
      expect(f1[1] - f1[0]).toBeGreaterThan(0.2); // true gap 0.4
      expect(catC[1] - catC[0]).toBeGreaterThan(0.3); // true gap 0.7

      // Numeric columns are drawn from the Gaussian likelihood (σ = 0.05 by default), not set to the decoder mean:
      // with the same latent draws, each value moves from the mean by about σ (a mean-only release is too narrow).
      const means = m.generate(600, { classCounts: [300, 300], seed: 2, numeric: 'mean', categorical: 'probs' });
      const draws = m.generate(600, { classCounts: [300, 300], seed: 2, categorical: 'probs' });
      let sq = 0, interior = 0;
      for (let i = 0; i < 600; i++) {
        for (let j = 0; j < 4; j++) {
          const mean = means.x[i * WIDTH + j]!, v = draws.x[i * WIDTH + j]!;
          expect(v >= 0 && v <= 1).toBe(true);
          if (mean > 0.2 && mean < 0.8) { sq += (v - mean) ** 2; interior++; } // away from the clamps
        }
      }
      expect(interior).toBeGreaterThan(200);
      expect(Math.sqrt(sq / interior)).toBeGreaterThan(0.04);
      expect(Math.sqrt(sq / interior)).toBeLessThan(0.06);

      const probs = m.generate(20, { classProbs: [0, 1], seed: 3, categorical: 'probs' });
      expect(probs.cond.every((c) => c === 1)).toBe(true);
      const s = probs.x[4] + probs.x[5] + probs.x[6];
      expect(s).toBeCloseTo(1, 4);
    } finally {
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(n0); // dispose frees everything, optimizer state included
  });

  it('training is reproducible given seeds, and continues across calls', async () => {
    const data = synthetic(64, 8);
    const run = async (): Promise<Float32Array> => {
      const m = createTwinVae({ ...base, seed: 2 });
      await m.trainEpochs(data, { epochs: 2, batchSize: 16, learningRate: 1e-3, seed: 4 });
      const w = m.getSharedWeights();
      m.dispose();
      return w;
    };
    expect(await run()).toEqual(await run());
  });

  it('validates tables and options with typed errors', async () => {
    const m = createTwinVae({ ...base, seed: 1 });
    const data = synthetic(16, 1);
    try {
      await expect(m.trainEpochs({ ...data, width: 6 }, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 1 }))
        .rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BAD_ARGUMENT'));
      const bad = { ...data, cond: data.cond.slice() }; bad.cond[3] = 7;
      await expect(m.trainEpochs(bad, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 1 }))
        .rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BAD_ARGUMENT'));
      const out = { ...data, x: data.x.slice() }; out.x[9] = 1.5;
      await expect(m.trainEpochs(out, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 1 }))
        .rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BAD_ARGUMENT'));
      await expect(m.trainEpochs(data, { epochs: 0, batchSize: 8, learningRate: 1e-3, seed: 1 }))
        .rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BAD_ARGUMENT'));
      expect(() => m.generate(10, { classCounts: [3, 3], seed: 1 })).toThrow(expect.objectContaining({ code: 'MODELS_BAD_ARGUMENT' }));
      // One training at a time; disposing mid-training stops it with a typed error.
      const running = m.trainEpochs(data, { epochs: 3, batchSize: 8, learningRate: 1e-3, seed: 1 });
      await expect(m.trainEpochs(data, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 1 }))
        .rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BUSY'));
      m.dispose();
      await expect(running).rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_DISPOSED'));
    } finally {
      m.dispose();
    }
    expect(() => m.getSharedWeights()).toThrow(expect.objectContaining({ code: 'MODELS_DISPOSED' }));
  });

  it('gradients (registered kernels and the explicit backward) match autodiff and finite differences', async () => {
    await initBackend('cpu');
    const m = createTwinVae({ ...base, seed: 5, sharedLayers: VAE_LAYERS });
    try {
      // Give the zero-initialised adapter non-zero weights so its gradient path is exercised too.
      const w0 = m.getSharedWeights();
      const rng = createRng(3);
      for (let i = 0; i < w0.length; i++) w0[i] += 0.05 * rng.normal();
      m.setSharedWeights(w0);
      const core = getVaeCore(m);
      const data = synthetic(6, 2);
      const y = new Float32Array(6 * 2);
      for (let i = 0; i < 6; i++) y[i * 2 + data.cond[i]] = 1;
      const eps = Float32Array.from({ length: 6 * 4 }, () => rng.normal());
      const lossAt = (): number => tf.tidy(() => tf.sum(core.lossPerExample(tf.tensor2d(data.x, [6, WIDTH]), tf.tensor2d(y, [6, 2]), tf.tensor2d(eps, [6, 4]))).dataSync()[0]);
      const { grads, value } = tf.variableGrads(() => tf.sum(core.lossPerExample(tf.tensor2d(data.x, [6, WIDTH]), tf.tensor2d(y, [6, 2]), tf.tensor2d(eps, [6, 4]))) as tf.Scalar, core.vars);
      value.dispose();
      const flatGrad = new Float32Array(w0.length);
      let off = 0;
      for (const v of core.vars) { flatGrad.set(grads[v.name].dataSync(), off); off += v.size; }
      tf.dispose(Object.values(grads));
      // The explicit backward used for training equals tfjs autodiff on the reference loss.
      const explicit = tf.tidy(() => {
        const fb = forwardBackward(core, tf.tensor2d(data.x, [6, WIDTH]), tf.tensor2d(y, [6, 2]), tf.tensor2d(eps, [6, 4]), 1);
        expect(fb.lossSum.dataSync()[0]).toBeCloseTo(lossAt(), 3);
        return paramGrads(core, fb);
      });
      off = 0;
      for (const v of core.vars) {
        const e = explicit[v.name].dataSync();
        expect(e.length).toBe(v.size);
        for (let j = 0; j < e.length; j++) expect(Math.abs(e[j] - flatGrad[off + j])).toBeLessThan(1e-4 * Math.max(1, Math.abs(flatGrad[off + j])));
        off += v.size;
      }
      tf.dispose(Object.values(explicit));
      // Probe coordinates across all layers (the largest-gradient ones give a good signal in f32).
      const order = Array.from(flatGrad.keys()).sort((a, b) => Math.abs(flatGrad[b]) - Math.abs(flatGrad[a]));
      const idx = [...order.slice(0, 12), ...Array.from({ length: 12 }, (_, k) => order[Math.floor((k + 1) * order.length / 14)])];
      const h = 1e-2;
      for (const i of idx) {
        const w = w0.slice();
        w[i] = w0[i] + h; m.setSharedWeights(w); const up = lossAt();
        w[i] = w0[i] - h; m.setSharedWeights(w); const down = lossAt();
        const fd = (up - down) / (2 * h);
        expect(Math.abs(fd - flatGrad[i])).toBeLessThan(0.02 + 0.03 * Math.abs(flatGrad[i]));
      }
    } finally {
      m.dispose();
      await initBackend('wasm');
    }
  });
});
