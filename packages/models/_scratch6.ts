import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './src/index.ts';
for (const [be, fix] of [['cpu', false], ['wasm', false], ['wasm', true]] as const) {
  await initBackend(be, { matmulFix: fix });
  for (const [B, m, k, n] of [[2,2,1,2],[1,2,1,2],[2,2,3,2],[2,3,4,5]]) {
  const A = tf.ones([B, m, k]); const Bt = tf.ones([B, k, n]);
  const r = tf.fused.matMul({ a: A, b: Bt, bias: tf.tensor1d(Array.from({length:n},(_, i)=>i)) });
  console.log(be, fix, B,m,k,n, Array.from(r.dataSync()).join(','));
  }
}
