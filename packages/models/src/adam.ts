// Adam with its state and update in plain JS over one flat Float32Array. tfjs's AdamOptimizer runs
// ~12 small kernels per variable, and on wasm per-kernel dispatch (not arithmetic) dominates a
// small MLP's step; slicing a flat tensor back into variables is slow there too (~0.5 ms per
// slice). Reading gradients out and writing parameters back is a memcpy per variable, and the
// loop over ~10⁵ floats costs well under a millisecond. Same rule as tf.train.adam (β1 0.9,
// β2 0.999, ε 1e-7, bias-corrected), in float64 arithmetic per element.

import * as tf from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';
import type { NoiseSource } from './noise.ts';

/** DP-SGD post-processing applied per coordinate before the update: g ← (g + std·N(0,1)) / divisor. */
export interface GradientNoise { std: number; divisor: number; source: NoiseSource }

export interface FlatAdam {
  readonly learningRate: number;
  /** Apply gradients given per variable name (every variable must have one; a tensor of any
   *  shape with the variable's size, or its flat values), optionally noised and rescaled first
   *  (DP-SGD: the noise is drawn here, in the same JS pass). */
  applyGradients(grads: Record<string, tf.Tensor | Float32Array>, noise?: GradientNoise): void;
  dispose(): void;
}

export function createFlatAdam(vars: readonly tf.Variable[], learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7): FlatAdam {
  const total = vars.reduce((a, v) => a + v.size, 0);
  const m = new Float32Array(total);
  const v2 = new Float32Array(total);
  let t = 0;
  return {
    learningRate,
    applyGradients(grads, noise) {
      const std = noise?.std ?? 0;
      const inv = noise ? 1 / noise.divisor : 1;
      // Sizes are checked before any state changes: a bad call must not half-apply a step.
      for (const x of vars) {
        const gv = grads[x.name] as tf.Tensor | Float32Array | undefined;
        const n = gv === undefined ? 0 : gv instanceof Float32Array ? gv.length : gv.size;
        if (n !== x.size) {
          throw new FedtwinError('MODELS_WEIGHT_SIZE', `gradient for ${x.name} has ${n} values, the variable ${x.size}`, {
            hint: 'pass one gradient per variable, with the variable\'s size',
          });
        }
      }
      t++;
      const lrT = learningRate / (1 - beta1 ** t);
      const c2 = 1 / (1 - beta2 ** t);
      // One draw of the whole step's noise, in variable order (a seeded source gives the same
      // sequence as drawing variable by variable).
      const zAll = std > 0 ? noise!.source.next(total) : undefined;
      let off = 0;
      for (const x of vars) {
        const gv = grads[x.name];
        const g = gv instanceof Float32Array ? gv : (gv.dataSync() as Float32Array);
        const p = (x.dataSync() as Float32Array).slice();
        for (let i = 0; i < g.length; i++) {
          const k = off + i;
          const gi = noise ? (zAll ? g[i] + std * zAll[k] : g[i]) * inv : g[i];
          const mi = (m[k] = beta1 * m[k] + (1 - beta1) * gi);
          const vi = (v2[k] = beta2 * v2[k] + (1 - beta2) * gi * gi);
          p[i] -= (lrT * mi) / (Math.sqrt(vi * c2) + epsilon);
        }
        tf.tidy(() => x.assign(tf.tensor(p, x.shape)));
        off += g.length;
      }
    },
    dispose() {
      // State is plain JS; nothing to free on the backend.
    },
  };
}
