import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './src/index.ts';
for (const fix of [false, true, false, true]) {
  await initBackend('wasm', { matmulFix: fix });
  const a = tf.randomNormal([64, 128]); const b = tf.randomNormal([128, 128]); const d = tf.randomNormal([64,128]);
  const time = (f: (bb: tf.Tensor, dd: tf.Tensor) => tf.Tensor) => { const t0 = performance.now(); let n=0; for (let i=0;i<300;i++){ const bb = tf.add(b, 0); const dd = tf.add(d, 0); const c=f(bb, dd); c.dataSync(); tf.dispose([c,bb,dd]); n++; } return ((performance.now()-t0)/n).toFixed(3); };
  console.log('fix', fix, 'none', time(() => tf.add(a, 0)), 'plain', time((bb) => tf.matMul(a, bb)), 'tA', time((_b, dd) => tf.matMul(a, dd, true, false)), 'tB', time((bb, dd) => tf.matMul(dd, bb, false, true)));
  tf.dispose([a,b,d]);
}
