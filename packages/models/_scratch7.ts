import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './src/index.ts';
await initBackend('wasm');
const a = tf.ones([64, 128]);
for (let r = 0; r < 3; r++) {
  let t0 = performance.now();
  for (let i = 0; i < 2000; i++) { const b = tf.add(a, a); b.dispose(); }
  const add = (performance.now() - t0) / 2000;
  t0 = performance.now();
  for (let i = 0; i < 2000; i++) { const b = tf.reshape(a, [128, 64]); b.dispose(); }
  const rs = (performance.now() - t0) / 2000;
  t0 = performance.now();
  tf.tidy(() => { for (let i = 0; i < 2000; i++) { tf.add(a, a); } });
  const addT = (performance.now() - t0) / 2000;
  console.log('add', (add*1000).toFixed(1), 'us; reshape', (rs*1000).toFixed(1), 'us; add in tidy', (addT*1000).toFixed(1));
}
console.log(tf.memory().numTensors); uptime: 0;
