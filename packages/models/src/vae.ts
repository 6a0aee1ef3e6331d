// Conditional tabular VAE: encoder q(z | x, y), decoder p(x | z, y), y = one-hot class. Named
// layers are the unit of the federated split: `sharedLayers` travel (delta, DP, HE), the rest —
// by default the zero-initialised site adapter on the decoder's hidden state — never leave the site.

import * as tf from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';
import type { Segment, EncodedTable } from './types.ts';
import { applyDense, createDense, denseParams, denseSize, disposeDense } from './dense.ts';
import type { DenseSpec, DenseVars } from './dense.ts';
import { createRng, deriveSeed } from './rng.ts';
import { runTraining } from './train.ts';
import { registerModelGradients } from './gradients.ts';
import type { FlatAdam } from './adam.ts';
import type { TrainOptions, TrainResult } from './train.ts';

/** All layers in their fixed (serialization) order. */
export const VAE_LAYERS = ['enc.h1', 'enc.mu', 'enc.logvar', 'dec.h1', 'dec.h2', 'site.adapter', 'dec.out'] as const;
export type VaeLayerName = (typeof VAE_LAYERS)[number];
/** Default split: everything but the per-site adapter is shared (federated). */
export const DEFAULT_SHARED_LAYERS: readonly VaeLayerName[] = VAE_LAYERS.filter((l) => l !== 'site.adapter');

export interface TwinVaeInit {
  /** Encoded row width (EncodedTable.width). */
  width: number;
  segments: readonly Segment[];
  /** Class names (EncodedTable.classes) or their count. */
  classes: number | readonly string[];
  latentDim: number;
  hidden: number;
  /** Layers whose weights are federated; the others stay private. Default DEFAULT_SHARED_LAYERS. */
  sharedLayers?: readonly string[];
  /** Seed of the initial weights: equal seeds → identical weights on every site and backend. */
  seed: number;
  /** Std-dev of the Gaussian likelihood on numeric columns (loss (x̂−x)²/2σ²). Default 0.05
   *  (best fidelity on breast-cancer among 0.02–0.2; larger σ blurs, smaller over-weights numerics). */
  numericSigma?: number;
  /** Weight of the KL term (β-VAE). Default 1. */
  klWeight?: number;
}

export interface GenerateOptions {
  /** Rows per class (sums to n), or class probabilities (normalised; sampled per row). */
  classCounts?: readonly number[];
  classProbs?: readonly number[];
  seed: number;
  /** Categorical output: 'sample' (one-hot of a sampled category, default) or 'probs'. */
  categorical?: 'sample' | 'probs';
  /** Numeric output: 'sample' (a draw from the Gaussian likelihood the model was trained with, mean + σ·N(0, 1),
   *  clamped to the declared bounds; default) or 'mean' (the decoder mean: every column comes out too narrow). */
  numeric?: 'sample' | 'mean';
}

export interface TwinVae {
  readonly width: number;
  readonly classCount: number;
  readonly latentDim: number;
  readonly hidden: number;
  readonly sharedLayers: readonly string[];
  readonly privateLayers: readonly string[];
  /** Number of scalars in getSharedWeights(). */
  readonly sharedSize: number;
  readonly privateSize: number;
  /** Shared layers' weights concatenated in VAE_LAYERS order, each layer as W, b, gain, beta. */
  getSharedWeights(): Float32Array;
  setSharedWeights(w: Float32Array): void;
  getPrivateWeights(): Float32Array;
  setPrivateWeights(w: Float32Array): void;
  /** Local training; optimizer (Adam) state persists across calls unless learningRate changes
   *  or resetOptimizer() is called. With `dp`, runs DP-SGD with Poisson sampling. */
  trainEpochs(data: EncodedTable, opts: TrainOptions): Promise<TrainResult>;
  resetOptimizer(): void;
  generate(n: number, opts: GenerateOptions): { x: Float32Array; cond: Int32Array };
  dispose(): void;
}

/** Internals shared with train.ts / dpsgd.ts (not part of the package's public API). */
export interface VaeCore {
  layers: Map<VaeLayerName, DenseVars>;
  /** All trainable variables in fixed order. */
  vars: tf.Variable[];
  width: number;
  classCount: number;
  latentDim: number;
  /** Per-example negative ELBO (length rows), differentiable by tfjs autodiff (the reference
   *  for the explicit backward in vae-grad.ts). y is one-hot; eps ~ N(0, I) rows×latent. */
  lossPerExample(x: tf.Tensor2D, y: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor1D;
  /** 1×width mask of numeric columns. */
  numMask: tf.Tensor2D;
  /** Per-row mask of numeric slots holding a value: numMask, minus the slots of missing cells (read from
   *  the row's own "present" indicators), so a missing cell's placeholder is not learned as a value. */
  numMaskOf(x: tf.Tensor2D): tf.Tensor2D;
  hasNumeric: boolean;
  catSegs: ReadonlyArray<{ offset: number; width: number }>;
  invTwoSigma2: number;
  klWeight: number;
  /** Decoder output: numeric columns as sigmoid means, categorical segments as softmax probs. */
  decode(z: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D;
  optimizer: FlatAdam | null;
}

const cores = new WeakMap<TwinVae, VaeCore>();
/** Internals of a model, for DP-SGD and tests (not exported from the package index). */
export function getVaeCore(model: TwinVae): VaeCore {
  const c = cores.get(model);
  if (!c) throw bad('not a TwinVae created by createTwinVae');
  return c;
}

const LIMITS = { width: 100_000, hidden: 8192, latent: 4096, classes: 10_000, params: 50_000_000, rows: 50_000_000 };
let instances = 0;

function bad(message: string, hint?: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError('MODELS_BAD_ARGUMENT', message, { hint, details });
}

function posInt(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw bad(`${name} must be an integer in [1, ${max}], got ${v}`);
}

export function validateSegments(width: number, segments: readonly Segment[]): void {
  let next = 0;
  for (const s of segments) {
    if (s.offset !== next) throw bad(`segment "${s.column}" starts at ${s.offset}, expected ${next}`, 'segments must tile [0, width) in order without gaps');
    const w: number = s.width;
    if (s.kind === 'numeric' && w !== 1) throw bad(`numeric segment "${s.column}" must have width 1`);
    if (!(Number.isInteger(w) && w >= 1)) throw bad(`segment at offset ${s.offset} has bad width ${w}`);
    next += s.width;
  }
  if (next !== width) throw bad(`segments cover ${next} columns but width is ${width}`);
}

export function createTwinVae(init: TwinVaeInit): TwinVae {
  registerModelGradients();
  const { width, latentDim, hidden, seed } = init;
  posInt('width', width, LIMITS.width);
  posInt('hidden', hidden, LIMITS.hidden);
  posInt('latentDim', latentDim, LIMITS.latent);
  const classCount = typeof init.classes === 'number' ? init.classes : init.classes.length;
  posInt('classes', classCount, LIMITS.classes);
  validateSegments(width, init.segments);
  const sigma = init.numericSigma ?? 0.05;
  if (!(sigma > 0 && sigma < 1e3)) throw bad(`numericSigma must be in (0, 1000), got ${sigma}`);
  const klWeight = init.klWeight ?? 1;
  if (!(klWeight >= 0 && klWeight < 1e3)) throw bad(`klWeight must be in [0, 1000), got ${klWeight}`);
  const shared = init.sharedLayers ?? DEFAULT_SHARED_LAYERS;
  for (const l of shared) {
    if (!(VAE_LAYERS as readonly string[]).includes(l)) {
      throw bad(`unknown layer "${l}" in sharedLayers`, `layers are ${VAE_LAYERS.join(', ')}`);
    }
  }
  const sharedSet = new Set(shared);
  const sharedLayers = VAE_LAYERS.filter((l) => sharedSet.has(l));
  const privateLayers = VAE_LAYERS.filter((l) => !sharedSet.has(l));

  const specs: DenseSpec[] = [
    { name: 'enc.h1', inDim: width + classCount, outDim: hidden, norm: true, init: 'glorot' },
    { name: 'enc.mu', inDim: hidden, outDim: latentDim, norm: false, init: 'glorot' },
    { name: 'enc.logvar', inDim: hidden, outDim: latentDim, norm: false, init: 'glorot' },
    { name: 'dec.h1', inDim: latentDim + classCount, outDim: hidden, norm: true, init: 'glorot' },
    { name: 'dec.h2', inDim: hidden, outDim: hidden, norm: true, init: 'glorot' },
    { name: 'site.adapter', inDim: hidden, outDim: hidden, norm: false, init: 'zeros' },
    { name: 'dec.out', inDim: hidden, outDim: width, norm: false, init: 'glorot' },
  ];
  const total = specs.reduce((a, s) => a + denseSize(s), 0);
  if (total > LIMITS.params) throw bad(`model would have ${total} parameters (cap ${LIMITS.params})`, 'reduce hidden or latentDim');

  const prefix = `twinvae${++instances}`;
  const layers = new Map<VaeLayerName, DenseVars>();
  // One stream per layer, derived from (seed, layer index): adding a layer later does not shift
  // the initial weights of the others.
  specs.forEach((s, i) => layers.set(s.name as VaeLayerName, createDense(s, createRng(deriveSeed(seed, 1000 + i)), prefix)));
  const vars = VAE_LAYERS.flatMap((l) => denseParams(layers.get(l)!));
  const L = (n: VaeLayerName): DenseVars => layers.get(n)!;

  // Column masks/indices used by the loss and the decoder output.
  const numMaskArr = new Float32Array(width);
  const catSegs = init.segments.filter((s) => s.kind === 'categorical');
  for (const s of init.segments) if (s.kind === 'numeric') numMaskArr[s.offset] = 1;
  const hasNumeric = numMaskArr.some((v) => v === 1);
  const numMask = tf.keep(tf.tensor2d(numMaskArr, [1, width])) as tf.Tensor2D;
  // presentMap[i][j] = 1 when slot i is numeric column j's "present" indicator: x·presentMap is 1 on j iff present.
  const plainMaskArr = numMaskArr.slice();
  const presentArr = new Float32Array(width * width);
  for (const s of init.segments) {
    if (s.kind !== 'categorical' || s.missing !== 'indicator') continue;
    const v = init.segments.find((q) => q.kind === 'numeric' && q.column === s.column);
    if (v === undefined) continue;
    plainMaskArr[v.offset] = 0;
    presentArr[s.offset * width + v.offset] = 1;
  }
  const hasIndicators = presentArr.some((v) => v === 1);
  const plainMask = tf.keep(tf.tensor2d(plainMaskArr, [1, width])) as tf.Tensor2D;
  const presentMap = tf.keep(tf.tensor2d(presentArr, [width, width])) as tf.Tensor2D;
  const numMaskOf = (x: tf.Tensor2D): tf.Tensor2D => (hasIndicators ? (tf.add(plainMask, tf.matMul(x, presentMap)) as tf.Tensor2D) : numMask);
  const invTwoSigma2 = 1 / (2 * sigma * sigma);

  const decoderHidden = (z: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
    const h1 = tf.relu(applyDense(L('dec.h1'), tf.concat([z, y], 1)));
    const h2 = tf.relu(applyDense(L('dec.h2'), h1));
    // Residual personalization: starts as identity (zero weights) and learns a site's shift.
    return tf.add(h2, applyDense(L('site.adapter'), h2));
  };

  const core: VaeCore = {
    layers, vars, width, classCount, latentDim,
    optimizer: null,
    numMask, numMaskOf, hasNumeric, catSegs, invTwoSigma2, klWeight,
    lossPerExample(x, y, eps) {
      const h = tf.relu(applyDense(L('enc.h1'), tf.concat([x, y], 1)));
      const mu = applyDense(L('enc.mu'), h);
      const logvar = tf.clipByValue(applyDense(L('enc.logvar'), h), -12, 8);
      const z = tf.add(mu, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps)) as tf.Tensor2D;
      const logits = applyDense(L('dec.out'), decoderHidden(z, y));
      let recon: tf.Tensor1D = tf.zeros([x.shape[0]]);
      if (hasNumeric) {
        const err = tf.mul(tf.square(tf.sub(tf.sigmoid(logits), x)), numMaskOf(x));
        recon = tf.add(recon, tf.mul(tf.sum(err, 1), invTwoSigma2));
      }
      for (const s of catSegs) {
        const lsm = tf.logSoftmax(tf.slice(logits, [0, s.offset], [-1, s.width]));
        const target = tf.slice(x, [0, s.offset], [-1, s.width]);
        recon = tf.sub(recon, tf.sum(tf.mul(target, lsm), 1));
      }
      const kl = tf.mul(tf.sum(tf.sub(tf.add(tf.exp(logvar), tf.square(mu)), tf.add(logvar, 1)), 1), 0.5);
      return tf.add(recon, tf.mul(kl, klWeight));
    },
    decode(z, y) {
      const logits = applyDense(L('dec.out'), decoderHidden(z, y));
      const parts: tf.Tensor2D[] = [];
      for (const s of init.segments) {
        const sl = tf.slice(logits, [0, s.offset], [-1, s.width]);
        parts.push(s.kind === 'numeric' ? tf.sigmoid(sl) : tf.softmax(sl));
      }
      return tf.concat(parts, 1);
    },
  };

  const layerVars = (names: readonly VaeLayerName[]): tf.Variable[] => names.flatMap((l) => denseParams(L(l)));
  const sizeOf = (names: readonly VaeLayerName[]): number => names.reduce((a, l) => a + denseSize(L(l).spec), 0);
  const sharedSize = sizeOf(sharedLayers);
  const privateSize = sizeOf(privateLayers);
  let disposed = false;
  let training = false;
  const alive = (): void => {
    if (disposed) throw new FedtwinError('MODELS_DISPOSED', 'this TwinVae was disposed', { hint: 'create a new model' });
  };

  const read = (vs: tf.Variable[], size: number): Float32Array => {
    const out = new Float32Array(size);
    let off = 0;
    for (const v of vs) {
      const d = v.dataSync() as Float32Array;
      out.set(d, off);
      off += d.length;
    }
    return out;
  };
  const write = (vs: tf.Variable[], size: number, w: Float32Array, what: string): void => {
    if (!(w instanceof Float32Array)) throw bad(`${what} weights must be a Float32Array`);
    if (w.length !== size) {
      throw new FedtwinError('MODELS_WEIGHT_SIZE', `${what} weights have ${w.length} values, model expects ${size}`, {
        hint: 'both sides must use the same width, classes, hidden, latentDim and sharedLayers',
        details: { got: w.length, expected: size },
      });
    }
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw bad(`${what} weights contain a non-finite value at index ${i}`);
    }
    let off = 0;
    for (const v of vs) {
      const n = v.size;
      tf.tidy(() => v.assign(tf.tensor(w.subarray(off, off + n), v.shape)));
      off += n;
    }
  };

  const model: TwinVae = {
    width, classCount, latentDim, hidden,
    sharedLayers, privateLayers, sharedSize, privateSize,
    getSharedWeights: () => (alive(), read(layerVars(sharedLayers), sharedSize)),
    setSharedWeights: (w) => (alive(), write(layerVars(sharedLayers), sharedSize, w, 'shared')),
    getPrivateWeights: () => (alive(), read(layerVars(privateLayers), privateSize)),
    setPrivateWeights: (w) => (alive(), write(layerVars(privateLayers), privateSize, w, 'private')),
    async trainEpochs(data, opts) {
      alive();
      if (training) {
        throw new FedtwinError('MODELS_BUSY', 'this TwinVae is already training', { hint: 'await the running trainEpochs call first' });
      }
      checkTable(data, width, classCount, init.segments);
      training = true;
      try {
        return await runTraining(core, data, opts, () => disposed);
      } finally {
        training = false;
      }
    },
    resetOptimizer() {
      core.optimizer?.dispose();
      core.optimizer = null;
    },
    generate(n, opts) {
      alive();
      return generateRows(core, n, opts, init.segments);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      core.optimizer?.dispose();
      core.optimizer = null;
      for (const v of layers.values()) disposeDense(v);
      numMask.dispose();
      plainMask.dispose();
      presentMap.dispose();
    },
  };
  cores.set(model, core);
  return model;
}

function checkTable(d: EncodedTable, width: number, classCount: number, segments: readonly Segment[]): void {
  if (d.width !== width) throw bad(`table width ${d.width} does not match the model width ${width}`, 'encode with the same schema the model was built for');
  if (!Number.isInteger(d.rows) || d.rows < 1 || d.rows > LIMITS.rows) throw bad(`table must have 1..${LIMITS.rows} rows, got ${d.rows}`);
  if (d.x.length !== d.rows * d.width) throw bad(`x has ${d.x.length} values, expected rows×width = ${d.rows * d.width}`);
  if (d.cond.length !== d.rows) throw bad(`cond has ${d.cond.length} entries, expected ${d.rows}`);
  if (d.classes.length !== classCount) throw bad(`table has ${d.classes.length} classes, model has ${classCount}`);
  if (d.segments.length !== segments.length || d.segments.some((s, i) => s.offset !== segments[i].offset || s.kind !== segments[i].kind || s.width !== segments[i].width)) {
    throw bad('table segments differ from the model segments', 'encode with the same schema the model was built for');
  }
  for (let i = 0; i < d.rows; i++) {
    const c = d.cond[i];
    if (!(c >= 0 && c < classCount)) throw bad(`cond[${i}] = ${c} is not a class index in [0, ${classCount})`);
  }
  for (let i = 0; i < d.x.length; i++) {
    const v = d.x[i];
    if (!(v >= 0 && v <= 1)) {
      throw bad(`x[${i}] (row ${Math.floor(i / d.width)}, column ${i % d.width}) = ${v} is outside [0, 1]`, 'encode the table with encodeTable (numeric scaled by declared bounds, categorical one-hot)');
    }
  }
}

const GEN_CHUNK = 4096;
const GEN_MAX = 10_000_000;

function generateRows(core: VaeCore, n: number, opts: GenerateOptions, segments: readonly Segment[]): { x: Float32Array; cond: Int32Array } {
  if (!Number.isInteger(n) || n < 0 || n > GEN_MAX) throw bad(`n must be an integer in [0, ${GEN_MAX}], got ${n}`);
  const C = core.classCount;
  const rng = createRng(opts.seed);
  const cond = new Int32Array(n);
  if (opts.classCounts !== undefined) {
    const cc = opts.classCounts;
    if (cc.length !== C || cc.some((c) => !Number.isInteger(c) || c < 0)) throw bad(`classCounts must be ${C} non-negative integers`);
    const sum = cc.reduce((a, b) => a + b, 0);
    if (sum !== n) throw bad(`classCounts sum to ${sum}, expected n = ${n}`);
    let k = 0;
    cc.forEach((c, j) => { for (let i = 0; i < c; i++) cond[k++] = j; });
  } else {
    const p = opts.classProbs ?? new Array<number>(C).fill(1);
    if (p.length !== C || p.some((v) => !(v >= 0) || !Number.isFinite(v))) throw bad(`classProbs must be ${C} non-negative finite numbers`);
    const sum = p.reduce((a, b) => a + b, 0);
    if (!(sum > 0)) throw bad('classProbs must not be all zero');
    for (let i = 0; i < n; i++) {
      let u = rng.uniform() * sum, j = 0;
      while (j < C - 1 && u >= p[j]) { u -= p[j]; j++; }
      cond[i] = j;
    }
  }
  const W = core.width, Z = core.latentDim;
  const x = new Float32Array(n * W);
  const mode = opts.categorical ?? 'sample';
  // The likelihood's σ (loss (x̂ − x)²/2σ²), on the [0, 1] scale of the declared bounds.
  const numericSigma = (opts.numeric ?? 'sample') === 'sample' ? Math.sqrt(0.5 / core.invTwoSigma2) : 0;
  const numericOffsets = segments.filter((s) => s.kind === 'numeric').map((s) => s.offset);
  for (let start = 0; start < n; start += GEN_CHUNK) {
    const m = Math.min(GEN_CHUNK, n - start);
    const z = new Float32Array(m * Z);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    const y = new Float32Array(m * C);
    for (let i = 0; i < m; i++) y[i * C + cond[start + i]] = 1;
    const out = tf.tidy(() => core.decode(tf.tensor2d(z, [m, Z]), tf.tensor2d(y, [m, C])));
    const vals = out.dataSync() as Float32Array;
    out.dispose();
    x.set(vals, start * W);
    if (numericSigma > 0) {
      for (let i = 0; i < m; i++) {
        const base = (start + i) * W;
        for (const o of numericOffsets) x[base + o] = Math.min(1, Math.max(0, x[base + o] + numericSigma * rng.normal()));
      }
    }
    if (mode === 'sample') {
      for (const s of segments) {
        if (s.kind !== 'categorical') continue;
        for (let i = 0; i < m; i++) {
          const base = (start + i) * W + s.offset;
          let u = rng.uniform(), pick = s.width - 1;
          for (let j = 0; j < s.width; j++) {
            u -= x[base + j];
            if (u < 0) { pick = j; break; }
          }
          for (let j = 0; j < s.width; j++) x[base + j] = j === pick ? 1 : 0;
        }
      }
    }
  }
  return { x, cond };
}
