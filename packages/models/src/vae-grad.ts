// Explicit forward + backward pass of the twin VAE. tf.variableGrads on this model records ~500
// kernels per step (tape clones of saved inputs, reshapes of broadcast gradients), and on wasm the
// per-kernel dispatch, not arithmetic, dominates a small MLP. Writing the backward by hand halves
// the kernel count and, as a by-product, yields each dense layer's input `a` and output gradient
// `gz` — exactly what DP-SGD's per-example norms need. `lossPerExample` (autodiff) stays the
// reference: tests check these gradients against it and against finite differences.

import * as tf from '@tensorflow/tfjs-core';
import type { VaeCore, VaeLayerName } from './vae.ts';

/** Per layer: input a (rows×in), gradient of the loss w.r.t. the affine output gz (rows×out);
 *  for layer-normed layers also the normalized activation n and the gradient w.r.t. the LN
 *  output gy. Rows of gz/gy are per-example gradients (scaled by `scale`). */
export interface LayerGrad { a: tf.Tensor2D; gz: tf.Tensor2D; n?: tf.Tensor2D; gy?: tf.Tensor2D }

export interface ForwardBackward {
  /** Σ_i loss_i (unscaled). */
  lossSum: tf.Scalar;
  layers: Map<VaeLayerName, LayerGrad>;
}

const LN_EPS = 1e-5;

/** Forward and backward for a batch; gradients are of `scale · Σ_i loss_i`. Run inside tf.tidy
 *  (the returned tensors survive it). */
export function forwardBackward(core: VaeCore, x: tf.Tensor2D, y: tf.Tensor2D, eps: tf.Tensor2D, scale: number): ForwardBackward {
  const L = (n: VaeLayerName) => core.layers.get(n)!;
  const rows = x.shape[0];
  const affine = (name: VaeLayerName, a: tf.Tensor2D): tf.Tensor2D => {
    const v = L(name);
    return tf.fused.matMul({ a, b: v.W, bias: v.b }) as tf.Tensor2D;
  };
  // LN forward: returns n, rstd, pre-activation y (= n·γ + β).
  const norm = (name: VaeLayerName, z: tf.Tensor2D) => {
    const v = L(name);
    const mean = tf.mean(z, 1, true);
    const c = tf.sub(z, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(c), 1, true), LN_EPS));
    const n = tf.mul(c, rstd) as tf.Tensor2D;
    return { n, rstd, y: tf.add(tf.mul(n, v.gain!), v.beta!) as tf.Tensor2D };
  };
  // LN backward: dz = rstd · (dn − mean(dn) − n · mean(dn ⊙ n)), dn = gy ⊙ γ.
  const normBack = (name: VaeLayerName, gy: tf.Tensor2D, n: tf.Tensor2D, rstd: tf.Tensor): tf.Tensor2D => {
    const dn = tf.mul(gy, L(name).gain!);
    const t = tf.sub(tf.sub(dn, tf.mean(dn, 1, true)), tf.mul(n, tf.mean(tf.mul(dn, n), 1, true)));
    return tf.mul(t, rstd) as tf.Tensor2D;
  };
  const reluBack = (g: tf.Tensor2D, pre: tf.Tensor2D): tf.Tensor2D => tf.mul(g, tf.step(pre)) as tf.Tensor2D;
  const back = (g: tf.Tensor2D, name: VaeLayerName): tf.Tensor2D => tf.matMul(g, L(name).W, false, true);

  // ---- forward
  const inE = tf.concat([x, y], 1) as tf.Tensor2D;
  const e1 = norm('enc.h1', affine('enc.h1', inE));
  const h = tf.relu(e1.y) as tf.Tensor2D;
  const mu = affine('enc.mu', h);
  const lvRaw = affine('enc.logvar', h);
  const lv = tf.clipByValue(lvRaw, -12, 8);
  const std = tf.exp(tf.mul(lv, 0.5));
  const z = tf.add(mu, tf.mul(std, eps)) as tf.Tensor2D;
  const inD = tf.concat([z, y], 1) as tf.Tensor2D;
  const d1 = norm('dec.h1', affine('dec.h1', inD));
  const h1 = tf.relu(d1.y) as tf.Tensor2D;
  const d2 = norm('dec.h2', affine('dec.h2', h1));
  const h2 = tf.relu(d2.y) as tf.Tensor2D;
  const h2a = tf.add(h2, affine('site.adapter', h2)) as tf.Tensor2D;
  const logits = affine('dec.out', h2a);

  // ---- loss and its gradient w.r.t. the logits
  const kl = tf.mul(tf.sum(tf.sub(tf.add(tf.exp(lv), tf.square(mu)), tf.add(lv, 1))), 0.5 * core.klWeight);
  const parts: tf.Tensor[] = [kl];
  let gLogits: tf.Tensor2D = tf.zeros([rows, core.width]);
  if (core.hasNumeric) {
    const s = tf.sigmoid(logits);
    const diff = tf.mul(tf.sub(s, x), core.numMaskOf(x));
    parts.push(tf.mul(tf.sum(tf.square(diff)), core.invTwoSigma2));
    // d/dl (s−x)²/2σ² = (s−x)/σ² · s(1−s)
    gLogits = tf.mul(diff, tf.mul(tf.mul(s, tf.sub(1, s)), 2 * core.invTwoSigma2 * scale));
  }
  for (const seg of core.catSegs) {
    const l = tf.slice(logits, [0, seg.offset], [-1, seg.width]);
    const t = tf.slice(x, [0, seg.offset], [-1, seg.width]);
    const lsm = tf.logSoftmax(l);
    parts.push(tf.neg(tf.sum(tf.mul(t, lsm))));
    // d/dl of −Σ t·log softmax(l) = softmax(l)·Σt − t (Σt = 1 for one-hot rows)
    const g = tf.mul(tf.sub(tf.mul(tf.exp(lsm), tf.sum(t, 1, true)), t), scale);
    gLogits = tf.add(gLogits, tf.pad(g, [[0, 0], [seg.offset, core.width - seg.offset - seg.width]]));
  }
  const lossSum = tf.addN(parts) as tf.Scalar;

  // ---- backward
  const layers = new Map<VaeLayerName, LayerGrad>();
  layers.set('dec.out', { a: h2a, gz: gLogits });
  const gH2a = back(gLogits, 'dec.out');
  layers.set('site.adapter', { a: h2, gz: gH2a }); // residual: adapter output grad = gH2a
  const gH2 = tf.add(gH2a, back(gH2a, 'site.adapter')) as tf.Tensor2D;
  const gy2 = reluBack(gH2, d2.y);
  const gz2 = normBack('dec.h2', gy2, d2.n, d2.rstd);
  layers.set('dec.h2', { a: h1, gz: gz2, n: d2.n, gy: gy2 });
  const gy1 = reluBack(back(gz2, 'dec.h2'), d1.y);
  const gz1 = normBack('dec.h1', gy1, d1.n, d1.rstd);
  layers.set('dec.h1', { a: inD, gz: gz1, n: d1.n, gy: gy1 });
  const gZ = tf.slice(back(gz1, 'dec.h1'), [0, 0], [-1, core.latentDim]);
  const beta = core.klWeight * scale;
  // z = mu + exp(lv/2)·eps; KL' : dmu = β·mu, dlv = β/2·(exp(lv) − 1)
  const gMu = tf.add(gZ, tf.mul(mu, beta)) as tf.Tensor2D;
  const gLv = tf.add(tf.mul(tf.mul(gZ, tf.mul(std, eps)), 0.5), tf.mul(tf.sub(tf.exp(lv), 1), 0.5 * beta));
  const inRange = tf.logicalAnd(tf.greaterEqual(lvRaw, -12), tf.lessEqual(lvRaw, 8));
  const gLvRaw = tf.where(inRange, gLv, tf.zerosLike(gLv)) as tf.Tensor2D;
  layers.set('enc.mu', { a: h, gz: gMu });
  layers.set('enc.logvar', { a: h, gz: gLvRaw });
  const gH = tf.add(back(gMu, 'enc.mu'), back(gLvRaw, 'enc.logvar')) as tf.Tensor2D;
  const gy0 = reluBack(gH, e1.y);
  const gz0 = normBack('enc.h1', gy0, e1.n, e1.rstd);
  layers.set('enc.h1', { a: inE, gz: gz0, n: e1.n, gy: gy0 });
  return { lossSum, layers };
}

/** Parameter gradients from layer records; rows weighted by s (rows×1) when given.
 *  W: aᵀ·(s⊙gz), b: Σ s⊙gz, gain: Σ s⊙gy⊙n, beta: Σ s⊙gy. Keyed by variable name. */
export function paramGrads(core: VaeCore, fb: ForwardBackward, s?: tf.Tensor2D): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of core.layers) {
    const r = fb.layers.get(name)!;
    const gz = s ? tf.mul(r.gz, s) : r.gz;
    out[v.W.name] = tf.matMul(r.a, gz, true, false);
    out[v.b.name] = tf.sum(gz, 0);
    if (v.gain && v.beta && r.gy && r.n) {
      const gy = s ? tf.mul(r.gy, s) : r.gy;
      out[v.gain.name] = tf.sum(tf.mul(gy, r.n), 0);
      out[v.beta.name] = tf.sum(gy, 0);
    }
  }
  return out;
}

/** Per-example squared gradient norms (rows), from the dense-layer identity ‖a_i ⊗ g_i‖ = ‖a_i‖·‖g_i‖. */
export function perExampleSqNorms(core: VaeCore, fb: ForwardBackward): tf.Tensor1D {
  const parts: tf.Tensor[] = [];
  // Layers reading the same input (enc.mu, enc.logvar) share ‖a_i‖²:
  // Σ_l ‖a_i‖²‖g_il‖² + ‖g_il‖² = (‖a_i‖² + 1)·Σ_l ‖g_il‖².
  const byInput = new Map<tf.Tensor, tf.Tensor[]>();
  for (const [name, v] of core.layers) {
    const r = fb.layers.get(name)!;
    const g2 = tf.sum(tf.square(r.gz), 1);
    const list = byInput.get(r.a);
    if (list) list.push(g2); else byInput.set(r.a, [g2]);
    if (v.gain && r.gy && r.n) parts.push(tf.sum(tf.square(tf.mul(r.gy, r.n)), 1), tf.sum(tf.square(r.gy), 1));
  }
  for (const [a, g2s] of byInput) {
    parts.push(tf.mul(tf.add(tf.sum(tf.square(a), 1), 1), g2s.length === 1 ? g2s[0] : tf.addN(g2s)));
  }
  return tf.addN(parts) as tf.Tensor1D;
}

/** A tensor's values without a copy where the backend allows it: on wasm, a Float32Array view of
 *  the heap (valid only until the next wasm allocation, which may grow and detach the heap — read
 *  it before creating any tensor); elsewhere dataSync(). */
function peek(t: tf.Tensor): Float32Array {
  const be = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.Tensor) => Float32Array };
  return typeof be.typedArrayFromHeap === 'function' && t.dtype === 'float32' ? be.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}

/** Σ_j v[i, j]² per row i of a rows×cols array. */
function rowSq(d: Float32Array, rows: number, cols: number): Float64Array {
  const r = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    for (let j = i * cols, e = j + cols; j < e; j++) acc += d[j] * d[j];
    r[i] = acc;
  }
  return r;
}

interface LayerViews { name: VaeLayerName; a: tf.Tensor2D; aIn: number; out: number; gz: Float32Array; gy?: Float32Array; n?: Float32Array }

/**
 * ‖Σ_{i∈[s,e)} aᵢ ⊗ gᵢ‖² + ‖Σ_{i∈[s,e)} gᵢ‖²: the squared norm of a dense layer's weight and bias
 * gradient summed over rows s..e−1 (one unit's rows). a is rows×aIn, g rows×out, row-major. The sum
 * is not rank one, so the per-example identity does not apply; this takes the cheaper of the Gram
 * form Σ_{i,j} (aᵢ·aⱼ + 1)(gᵢ·gⱼ) (~k²/2·(aIn + out) for k rows) and forming the aIn×out sum itself
 * (~k·aIn·out).
 */
export function denseGroupSqNorm(a: Float32Array, aIn: number, g: Float32Array, out: number, s: number, e: number): number {
  return outerIsCheaper(e - s, aIn, out) ? outerSumSqNorm(a, aIn, g, out, s, e) : gramSqNorm(a, aIn, g, out, s, e);
}

/** k rows: the Gram form costs ~k²/2·(aIn + out), the explicit sum ~k·aIn·out. */
function outerIsCheaper(k: number, aIn: number, out: number): boolean {
  return k * (aIn + out) > 2 * aIn * out;
}

/** Gram form of denseGroupSqNorm: Σ_{i,j} (aᵢ·aⱼ + 1)(gᵢ·gⱼ) (the +1 is the bias). */
export function gramSqNorm(a: Float32Array, aIn: number, g: Float32Array, out: number, s: number, e: number): number {
  let diag = 0;
  for (let i = s; i < e; i++) {
    let ad = 1, gd = 0;
    for (let p = 0, o = i * aIn; p < aIn; p++) ad += a[o + p] * a[o + p];
    for (let p = 0, o = i * out; p < out; p++) gd += g[o + p] * g[o + p];
    diag += ad * gd;
  }
  return diag + 2 * gramCrossTerms(a, aIn, g, out, s, e);
}

/** Σ_{i<j} (aᵢ·aⱼ + 1)(gᵢ·gⱼ): the Gram form's off-diagonal half (the diagonal is the per-example norms). */
function gramCrossTerms(a: Float32Array, aIn: number, g: Float32Array, out: number, s: number, e: number): number {
  let acc = 0;
  for (let i = s; i < e; i++) {
    for (let j = i + 1; j < e; j++) {
      let ad = 1, gd = 0;
      for (let p = 0, ai = i * aIn, aj = j * aIn; p < aIn; p++) ad += a[ai + p] * a[aj + p];
      for (let p = 0, gi = i * out, gj = j * out; p < out; p++) gd += g[gi + p] * g[gj + p];
      acc += ad * gd;
    }
  }
  return acc;
}

/** Direct form of denseGroupSqNorm: ‖Σᵢ aᵢgᵢᵀ‖²_F + ‖Σᵢ gᵢ‖², the sums formed in float64. */
export function outerSumSqNorm(a: Float32Array, aIn: number, g: Float32Array, out: number, s: number, e: number): number {
  const w = new Float64Array(aIn * out), b = new Float64Array(out);
  for (let i = s; i < e; i++) {
    const gi = i * out;
    for (let p = 0; p < aIn; p++) {
      const ap = a[i * aIn + p];
      if (ap === 0) continue; // post-ReLU inputs are often 0
      for (let q = 0, o = p * out; q < out; q++) w[o + q] += ap * g[gi + q];
    }
    for (let q = 0; q < out; q++) b[q] += g[gi + q];
  }
  let acc = 0;
  for (const v of w) acc += v * v;
  for (const v of b) acc += v * v;
  return acc;
}

/** Layer-norm gain and bias gradients summed over rows s..e−1: ‖Σ gyᵢ⊙nᵢ‖² + ‖Σ gyᵢ‖². */
export function lnGroupSqNorm(gy: Float32Array, n: Float32Array, out: number, s: number, e: number): number {
  const gain = new Float64Array(out), bias = new Float64Array(out);
  for (let i = s; i < e; i++) {
    for (let q = 0, o = i * out; q < out; q++) {
      gain[q] += gy[o + q] * n[o + q];
      bias[q] += gy[o + q];
    }
  }
  let acc = 0;
  for (let q = 0; q < out; q++) acc += gain[q] * gain[q] + bias[q] * bias[q];
  return acc;
}

/**
 * Squared gradient norms from heap views: per example, or — with `groups` (CSR row ranges, one per
 * unit) — of each unit's summed gradient. `inputs` collects one view per distinct layer input.
 */
function sqNormsFromViews(core: VaeCore, fb: ForwardBackward, rows: number, groups?: Int32Array): { sq: Float64Array; layers: LayerViews[]; inputs: Map<tf.Tensor2D, Float32Array> } {
  const sq = new Float64Array(groups ? groups.length - 1 : rows);
  const inputs = new Map<tf.Tensor2D, Float32Array>();
  const inputSq = new Map<tf.Tensor2D, Float64Array>();
  const layers: LayerViews[] = [];
  for (const [name, v] of core.layers) {
    const r = fb.layers.get(name)!;
    const aIn = r.a.shape[1], out = r.gz.shape[1];
    let a2 = inputSq.get(r.a);
    if (!a2) {
      const av = peek(r.a);
      inputs.set(r.a, av);
      a2 = rowSq(av, rows, aIn);
      inputSq.set(r.a, a2);
    }
    const gz = peek(r.gz);
    const g2 = rowSq(gz, rows, out);
    // One row: ‖∇W_i‖² + ‖∇b_i‖² = (‖a_i‖² + 1)·‖gz_i‖².
    if (!groups) {
      for (let i = 0; i < rows; i++) sq[i] += (a2[i] + 1) * g2[i];
    } else {
      const av = inputs.get(r.a)!;
      for (let k = 0; k < sq.length; k++) {
        const s = groups[k], e = groups[k + 1];
        if (outerIsCheaper(e - s, aIn, out)) {
          sq[k] += outerSumSqNorm(av, aIn, gz, out, s, e);
        } else {
          // Gram form with its diagonal taken from the per-example norms already at hand.
          let diag = 0;
          for (let i = s; i < e; i++) diag += (a2[i] + 1) * g2[i];
          sq[k] += diag + (e - s > 1 ? 2 * gramCrossTerms(av, aIn, gz, out, s, e) : 0);
        }
      }
    }
    const lv: LayerViews = { name, a: r.a, aIn, out, gz };
    if (v.gain && r.gy && r.n) {
      const gy = peek(r.gy), n = peek(r.n);
      // LN gain and bias, one row: ‖gy_i ⊙ n_i‖² + ‖gy_i‖² = Σ_j gy²(n² + 1), in one pass.
      const rowLn = (i: number): number => {
        let acc = 0;
        for (let j = i * out, e = j + out; j < e; j++) acc += gy[j] * gy[j] * (n[j] * n[j] + 1);
        return acc;
      };
      if (!groups) {
        for (let i = 0; i < rows; i++) sq[i] += rowLn(i);
      } else {
        for (let k = 0; k < sq.length; k++) {
          const s = groups[k], e = groups[k + 1];
          sq[k] += e - s === 1 ? rowLn(s) : lnGroupSqNorm(gy, n, out, s, e);
        }
      }
      lv.gy = gy; lv.n = n;
    }
    layers.push(lv);
  }
  return { sq, layers, inputs };
}

/** Same as perExampleSqNorms, computed in JS from zero-copy views of the activations and
 *  gradients (~55 small kernels on wasm cost more than the arithmetic). */
export function perExampleSqNormsJs(core: VaeCore, fb: ForwardBackward): Float64Array {
  const rows = fb.layers.values().next().value!.a.shape[0];
  return sqNormsFromViews(core, fb, rows).sq;
}

/** Clipped gradient sums Σ_i s_i·∇_i with s_i = min(1, C/‖∇_i‖), fused with the norm pass: the
 *  norms read every a, gz, gy, n anyway, so the same JS pass forms the bias / layer-norm sums
 *  (Σ_i s_i·gz_i etc., float64 accumulation) and (diag(s)·a)ᵀ, uploaded already transposed: each
 *  weight gradient is then one plain matmul (diag(s)·a)ᵀ·gz — no row-scaling, transpose or
 *  reduction kernels. Weight gradients are tensors (the caller disposes them, or runs this inside
 *  tf.tidy); the rest are Float32Arrays. Also returns the scales s (per row).
 *
 *  With `groups` (CSR row ranges: unit u is rows groups[u] .. groups[u+1]−1, in order, covering all
 *  rows) each unit's *summed* gradient is clipped: every row of unit u gets s_u = min(1, C/‖Σ_{i∈u} ∇_i‖),
 *  so a unit adds at most C to the sum however many rows it has (user-level DP-SGD). */
export function clippedParamGrads(core: VaeCore, fb: ForwardBackward, clip: number, groups?: Int32Array): { grads: Record<string, tf.Tensor | Float32Array>; scales: Float64Array } {
  const rows = fb.layers.values().next().value!.a.shape[0];
  if (groups && (groups[0] !== 0 || groups[groups.length - 1] !== rows)) {
    throw new RangeError(`groups must cover rows 0..${rows} (got ${groups[0]}..${groups[groups.length - 1]})`);
  }
  const { sq, layers, inputs } = sqNormsFromViews(core, fb, rows, groups);
  const s = new Float64Array(rows);
  if (!groups) {
    for (let i = 0; i < rows; i++) s[i] = Math.min(1, clip / (Math.sqrt(sq[i]) + 1e-12));
  } else {
    for (let k = 0; k < sq.length; k++) s.fill(Math.min(1, clip / (Math.sqrt(sq[k]) + 1e-12)), groups[k], groups[k + 1]);
  }
  const grads: Record<string, tf.Tensor | Float32Array> = {};
  // Phase 1, JS only (heap views stay valid): row-weighted sums and scaled, transposed inputs.
  const colSum = (d: Float32Array, out: number, m?: Float32Array): Float32Array => {
    const acc = new Float64Array(out);
    for (let i = 0; i < rows; i++) {
      const si = s[i], o = i * out;
      if (m) for (let j = 0; j < out; j++) acc[j] += si * d[o + j] * m[o + j];
      else for (let j = 0; j < out; j++) acc[j] += si * d[o + j];
    }
    return new Float32Array(acc);
  };
  for (const l of layers) {
    const v = core.layers.get(l.name)!;
    grads[v.b.name] = colSum(l.gz, l.out);
    if (v.gain && v.beta && l.gy && l.n) {
      grads[v.gain.name] = colSum(l.gy, l.out, l.n);
      grads[v.beta.name] = colSum(l.gy, l.out);
    }
  }
  const scaledT = new Map<tf.Tensor2D, Float32Array>();
  for (const [a, av] of inputs) {
    const cols = a.shape[1];
    const t = new Float32Array(cols * rows);
    for (let i = 0; i < rows; i++) {
      const si = s[i], o = i * cols;
      for (let k = 0; k < cols; k++) t[k * rows + i] = si * av[o + k];
    }
    scaledT.set(a, t);
  }
  // Phase 2: uploads and matmuls (these allocate on the heap; no view is read after this point).
  const uploaded = new Map<tf.Tensor2D, tf.Tensor2D>();
  for (const [a, t] of scaledT) uploaded.set(a, tf.tensor2d(t, [a.shape[1], rows]));
  for (const l of layers) {
    const v = core.layers.get(l.name)!;
    grads[v.W.name] = tf.matMul(uploaded.get(l.a)!, fb.layers.get(l.name)!.gz);
  }
  tf.dispose([...uploaded.values()]);
  return { grads, scales: s };
}
