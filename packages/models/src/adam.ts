// Adam over all variables at once. tfjs's AdamOptimizer runs ~12 small kernels per variable; on
// wasm, per-kernel dispatch (not arithmetic) dominates a small MLP's step, so we concatenate the
// gradients into one flat vector, update it with a handful of kernels and split it back.
// Same update rule as tf.train.adam (β1 0.9, β2 0.999, ε 1e-7, bias correction).

import * as tf from '@tensorflow/tfjs-core';

export interface FlatAdam {
  readonly learningRate: number;
  /** Apply gradients given per variable name (every variable must have one). */
  applyGradients(grads: Record<string, tf.Tensor>): void;
  dispose(): void;
}

export function createFlatAdam(vars: readonly tf.Variable[], learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7): FlatAdam {
  const sizes = vars.map((v) => v.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  let m: tf.Tensor1D = tf.keep(tf.zeros([total]));
  let v: tf.Tensor1D = tf.keep(tf.zeros([total]));
  let t = 0;
  return {
    learningRate,
    applyGradients(grads) {
      t++;
      const lrT = learningRate / (1 - beta1 ** t);
      const c2 = 1 / (1 - beta2 ** t);
      const [nm, nv] = tf.tidy(() => {
        const g = tf.concat(vars.map((x) => tf.reshape(grads[x.name], [-1])));
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)) as tf.Tensor1D;
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)) as tf.Tensor1D;
        const upd = tf.div(tf.mul(m1, lrT), tf.add(tf.sqrt(tf.mul(v1, c2)), epsilon));
        const p = tf.sub(tf.concat(vars.map((x) => tf.reshape(x, [-1]))), upd);
        const parts = tf.split(p, sizes);
        vars.forEach((x, i) => x.assign(tf.reshape(parts[i], x.shape)));
        // kept: applyGradients may run inside a caller's tidy, which must not free the moments.
        return [tf.keep(m1), tf.keep(v1)];
      });
      m.dispose(); v.dispose();
      m = nm; v = nv;
    },
    dispose() {
      m.dispose(); v.dispose();
    },
  };
}
