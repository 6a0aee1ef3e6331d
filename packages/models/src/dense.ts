// Dense layers (+ optional layer norm) on tfjs-core ops. No tfjs-layers: DP-SGD needs each
// layer's input and output gradient, which plain functional layers make available.

import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './rng.ts';

export interface DenseSpec {
  /** Stable name, e.g. 'enc.h1'; also the unit of the shared/private split. */
  name: string;
  inDim: number;
  outDim: number;
  /** Layer norm (per row, with gain and bias) after the affine map. Not batch norm: DP needs
   *  every example's output to depend on that example only. */
  norm: boolean;
  /** 'glorot' (uniform) for ordinary layers; 'zeros' for residual adapters that start as identity. */
  init: 'glorot' | 'zeros';
}

export interface DenseVars {
  spec: DenseSpec;
  W: tf.Variable<tf.Rank.R2>;
  b: tf.Variable<tf.Rank.R1>;
  gain?: tf.Variable<tf.Rank.R1>;
  beta?: tf.Variable<tf.Rank.R1>;
}

const LN_EPS = 1e-5;

/** Number of scalars in a layer (W, b, then gain, beta when normed). */
export function denseSize(s: DenseSpec): number {
  return s.inDim * s.outDim + s.outDim + (s.norm ? 2 * s.outDim : 0);
}

/** Initial values in fixed order [W, b, gain?, beta?], drawn from `rng` in JS so that a seed
 *  yields bit-identical weights on every backend and site. */
export function initialValues(s: DenseSpec, rng: Rng): Float32Array[] {
  const W = new Float32Array(s.inDim * s.outDim);
  if (s.init === 'glorot') {
    const lim = Math.sqrt(6 / (s.inDim + s.outDim));
    for (let i = 0; i < W.length; i++) W[i] = (2 * rng.uniform() - 1) * lim;
  }
  const out = [W, new Float32Array(s.outDim)];
  if (s.norm) out.push(new Float32Array(s.outDim).fill(1), new Float32Array(s.outDim));
  return out;
}

export function createDense(s: DenseSpec, rng: Rng, prefix: string): DenseVars {
  const [W, b, gain, beta] = initialValues(s, rng);
  // tf.variable shares the initial tensor's data; dispose the wrapper so nothing leaks.
  const mk = <R extends tf.Rank>(t: tf.Tensor<R>, param: string): tf.Variable<R> => {
    const v = tf.variable(t, true, `${prefix}/${s.name}/${param}`);
    t.dispose();
    return v;
  };
  const v: DenseVars = {
    spec: s,
    W: mk(tf.tensor2d(W, [s.inDim, s.outDim]), 'W'),
    b: mk(tf.tensor1d(b), 'b'),
  };
  if (s.norm) {
    v.gain = mk(tf.tensor1d(gain), 'gain');
    v.beta = mk(tf.tensor1d(beta), 'beta');
  }
  return v;
}

/** Variables of a layer in the fixed serialization order. */
export function denseParams(v: DenseVars): tf.Variable[] {
  const p: tf.Variable[] = [v.W, v.b];
  if (v.gain && v.beta) p.push(v.gain, v.beta);
  return p;
}

/** a·W + b, then layer norm if configured. Activation is the caller's. Differentiable by tfjs
 *  autodiff; the training path uses the explicit backward in vae-grad.ts. */
export function applyDense(v: DenseVars, a: tf.Tensor2D): tf.Tensor2D {
  const z = tf.fused.matMul({ a, b: v.W, bias: v.b }) as tf.Tensor2D;
  if (!v.gain || !v.beta) return z;
  const { mean, variance } = tf.moments(z, 1, true);
  const n = tf.mul(tf.sub(z, mean), tf.rsqrt(tf.add(variance, LN_EPS)));
  return tf.add(tf.mul(n, v.gain), v.beta) as tf.Tensor2D;
}

export function disposeDense(v: DenseVars): void {
  for (const p of denseParams(v)) p.dispose();
}
