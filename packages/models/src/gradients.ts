// Gradients for the kernels the models differentiate through. tfjs-core's Node (CJS) build
// registers no gradients: its register_all_gradients module exists only as ESM with extensionless
// imports, which Node cannot load, and the @tensorflow/tfjs union package that normally pulls it
// in is not a dependency. Each rule below is the textbook derivative; if another copy already
// registered a gradient (e.g. the app loads @tensorflow/tfjs), that one is kept.

import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

// tfjs's NamedGradientMap; kernels with array inputs (AddN, Concat) return an array indexed alike.
type Grads = Record<string, () => Tensor>;
const indexed = (fs: Array<() => Tensor>): Grads => fs as unknown as Grads;

/** Sum a broadcast gradient back down to the shape of the input it flowed from. */
function unbroadcast(g: Tensor, shape: number[], outShape: number[]): Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, outShape);
  // Always a new tensor: the tape disposes dy after use, so a gradient must never alias it.
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

function binary(name: string, da: (dy: Tensor, a: Tensor, b: Tensor) => Tensor, db: (dy: Tensor, a: Tensor, b: Tensor) => Tensor): GradConfig {
  return {
    kernelName: name,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved): Grads => {
      const [a, b] = saved;
      const d = dy as Tensor;
      const out = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      return { a: () => unbroadcast(da(d, a, b), a.shape, out), b: () => unbroadcast(db(d, a, b), b.shape, out) };
    },
  };
}

/** dy of a reduction re-expanded to x's shape (keepDims form, then broadcast). */
function expandReduced(dy: Tensor, x: Tensor, attrs: NamedAttrMap): Tensor {
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
  // Works whether or not the op kept the reduced dims: reshape dy to the keepDims shape.
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(x.shape));
}

const configs: GradConfig[] = [
  binary('Add', (dy) => dy, (dy) => dy),
  binary('Sub', (dy) => dy, (dy) => tf.neg(dy)),
  binary('Multiply', (dy, _a, b) => tf.mul(dy, b), (dy, a) => tf.mul(dy, a)),
  binary('RealDiv', (dy, _a, b) => tf.div(dy, b), (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))),
  binary('SquaredDifference',
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(a, b), 2)),
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(b, a), 2))),
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: (dy, saved): Grads => indexed(saved.map(() => () => tf.clone(dy as Tensor))),
  },
  { kernelName: 'Neg', gradFunc: (dy): Grads => ({ x: () => tf.neg(dy as Tensor) }) },
  { kernelName: 'Square', inputsToSave: ['x'], gradFunc: (dy, [x]): Grads => ({ x: () => tf.mul(dy as Tensor, tf.mul(x, 2)) }) },
  { kernelName: 'Exp', outputsToSave: [true], gradFunc: (dy, [y]): Grads => ({ x: () => tf.mul(dy as Tensor, y) }) },
  {
    kernelName: 'Sigmoid',
    outputsToSave: [true],
    gradFunc: (dy, [y]): Grads => ({ x: () => tf.mul(dy as Tensor, tf.mul(y, tf.sub(1, y))) }),
  },
  {
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]): Grads => ({ x: () => tf.mul(dy as Tensor, tf.cast(tf.greater(x, 0), 'float32')) }),
  },
  {
    kernelName: 'Rsqrt',
    inputsToSave: ['x'],
    // d/dx x^(-1/2) = -1/2 · x^(-3/2)
    gradFunc: (dy, [x]): Grads => ({ x: () => tf.mul(dy as Tensor, tf.mul(tf.div(tf.rsqrt(x), x), -0.5)) }),
  },
  {
    kernelName: 'Sqrt',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]): Grads => ({ x: () => tf.div(dy as Tensor, tf.mul(tf.sqrt(x), 2)) }),
  },
  {
    kernelName: 'ClipByValue',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs): Grads => {
      const { clipValueMin, clipValueMax } = attrs as { clipValueMin: number; clipValueMax: number };
      return {
        x: () => tf.where(tf.logicalAnd(tf.greaterEqual(x, clipValueMin), tf.lessEqual(x, clipValueMax)), dy as Tensor, tf.zerosLike(dy as Tensor)),
      };
    },
  },
  { kernelName: 'Sum', inputsToSave: ['x'], gradFunc: (dy, [x], attrs): Grads => ({ x: () => expandReduced(dy as Tensor, x, attrs) }) },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs): Grads => {
      const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
      const count = axes.reduce((n, a) => n * x.shape[a], 1);
      return { x: () => tf.div(expandReduced(dy as Tensor, x, attrs), count) };
    },
  },
  { kernelName: 'Reshape', inputsToSave: ['x'], gradFunc: (dy, [x]): Grads => ({ x: () => tf.reshape(dy as Tensor, x.shape) }) },
  { kernelName: 'Cast', gradFunc: (dy): Grads => ({ x: () => tf.clone(dy as Tensor) }) },
  { kernelName: 'Identity', gradFunc: (dy): Grads => ({ x: () => tf.cast(dy as Tensor, 'float32') }) },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs): Grads => {
      const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
      const pads: Array<[number, number]> = x.shape.map((d, i) => [begin[i], d - begin[i] - size[i]]);
      return { x: () => tf.pad(dy as Tensor, pads) };
    },
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs): Grads => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0].shape)[0];
      const parts = tf.split(dy as Tensor, saved.map((t) => t.shape[axis]), axis);
      return indexed(parts.map((p) => () => p));
    },
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs): Grads => {
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const d = dy as Tensor;
      const mm = (x: Tensor, y: Tensor, tx: boolean, ty: boolean): Tensor => tf.matMul(x, y, tx, ty);
      // C = op(A)·op(B); the four cases of which side is transposed.
      if (!transposeA && !transposeB) return { a: () => mm(d, b, false, true), b: () => mm(a, d, true, false) };
      if (!transposeA && transposeB) return { a: () => mm(d, b, false, false), b: () => mm(d, a, true, false) };
      if (transposeA && !transposeB) return { a: () => mm(b, d, false, true), b: () => mm(a, d, false, false) };
      return { a: () => mm(b, d, true, true), b: () => mm(d, a, true, true) };
    },
  },
];

let done = false;

/** Register the gradients above (skipping kernels that already have one). Idempotent. */
export function registerModelGradients(): void {
  if (done) return;
  for (const c of configs) if (tf.getGradient(c.kernelName) === undefined) tf.registerGradient(c);
  done = true;
}
