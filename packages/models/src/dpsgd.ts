// DP-SGD with per-example clipping from per-example gradient norms, without a backward pass per
// example ("ghost clipping"). For a dense layer used once per example, the per-example weight
// gradient is the outer product a_i ⊗ g_i (a: layer input, g: gradient of the summed loss w.r.t.
// the layer output), so ‖∇W_i‖ = ‖a_i‖·‖g_i‖ and ‖∇b_i‖ = ‖g_i‖; layer-norm gain/bias grads are
// g⊙n and g per example. One batched backward (vae-grad.ts) gives every a and g; clipped sums are
// then aᵀ·diag(s)·g with s_i = min(1, C/‖∇_i‖); vae-grad.ts's clippedParamGrads forms them in the
// same JS pass that reads a and g for the norms (one matmul per layer, no scaling kernels).

import * as tf from '@tensorflow/tfjs-core';
import type { VaeCore } from './vae.ts';
import type { FlatAdam } from './adam.ts';
import type { NoiseSource } from './noise.ts';
import { clippedParamGrads, forwardBackward, perExampleSqNorms } from './vae-grad.ts';

export interface DpStepOptions {
  clip: number;
  noiseMultiplier: number;
  /** Expected batch size q·N (units: q·U): the clipped, noised sum is divided by this (not the realised size). */
  expectedBatch: number;
  /** Source of the Gaussian noise (seededNoise: reproducible; secureNoise: OS CSPRNG on a worker). */
  noise: NoiseSource;
  /** Per-unit clipping: CSR row ranges of the batch, one per sampled unit (see clippedParamGrads);
   *  absent = per-example clipping. */
  groups?: Int32Array;
}

export interface DpBatch {
  x: Float32Array;
  y: Float32Array;
  eps: Float32Array;
  rows: number;
}

function toTensors(core: VaeCore, b: DpBatch): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  return [
    tf.tensor2d(b.x.subarray(0, b.rows * core.width), [b.rows, core.width]),
    tf.tensor2d(b.y.subarray(0, b.rows * core.classCount), [b.rows, core.classCount]),
    tf.tensor2d(b.eps.subarray(0, b.rows * core.latentDim), [b.rows, core.latentDim]),
  ];
}

/** Per-example gradient L2 norms over all trainable variables, by the ghost-norm identity. */
export function perExampleGradNorms(core: VaeCore, batch: DpBatch): Float32Array {
  const t = tf.tidy(() => {
    const [x, y, e] = toTensors(core, batch);
    return tf.sqrt(perExampleSqNorms(core, forwardBackward(core, x, y, e, 1)));
  });
  const out = t.dataSync().slice() as Float32Array;
  t.dispose();
  return out;
}

/** Clipped per-variable gradient sums Σ_i min(1, C/‖∇_i‖)·∇_i (no noise; per unit with `groups`);
 *  caller disposes. */
export function clippedGradSums(core: VaeCore, batch: DpBatch, clip: number, groups?: Int32Array): Map<string, tf.Tensor> {
  const g = tf.tidy(() => {
    const [x, y, e] = toTensors(core, batch);
    const { grads } = clippedParamGrads(core, forwardBackward(core, x, y, e, 1), clip, groups);
    return Object.fromEntries(core.vars.map((v) => {
      const t = grads[v.name];
      return [v.name, t instanceof Float32Array ? tf.tensor(t, v.shape) : tf.reshape(t, v.shape)];
    }));
  });
  return new Map(Object.entries(g));
}

/** One DP-SGD step: clip per example (or per unit), sum, add N(0, (zC)²) per coordinate, divide by
 *  the expected batch size, apply the optimizer. Returns the batch's summed loss (caller disposes). */
export function dpSgdStep(core: VaeCore, opt: FlatAdam, batch: DpBatch, o: DpStepOptions): tf.Scalar {
  // Bias and layer-norm sums come back as Float32Arrays; only tensors go through tidy's return.
  let sums: Record<string, tf.Tensor | Float32Array> = {};
  const { tensors, lossSum } = tf.tidy(() => {
    if (batch.rows === 0) {
      // An empty Poisson sample still takes a (noise-only) step: skipping it would reveal |batch| = 0.
      sums = Object.fromEntries(core.vars.map((v) => [v.name, new Float32Array(v.size)]));
      return { tensors: [] as tf.Tensor[], lossSum: tf.scalar(0) };
    }
    const [x, y, e] = toTensors(core, batch);
    const fb = forwardBackward(core, x, y, e, 1);
    sums = clippedParamGrads(core, fb, o.clip, o.groups).grads;
    return { tensors: Object.values(sums).filter((t): t is tf.Tensor => !(t instanceof Float32Array)), lossSum: fb.lossSum };
  });
  // Noise N(0, (zC)²) per coordinate and the division by q·N happen in the optimizer's JS pass.
  opt.applyGradients(sums, { std: o.noiseMultiplier * o.clip, divisor: o.expectedBatch, source: o.noise });
  tf.dispose(tensors);
  return lossSum;
}
