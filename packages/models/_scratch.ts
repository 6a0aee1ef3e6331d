import * as tf from '@tensorflow/tfjs-core';
import { initBackend, createTwinVae, installWasmMatmulFix, uninstallWasmMatmulFix, createRng } from './src/index.ts';
import type { EncodedTable, Segment } from './src/types.ts';
const rows = 512, W = 30;
const rng = createRng(1);
const x = new Float32Array(rows * W), cond = new Int32Array(rows);
for (let i = 0; i < rows; i++) { cond[i] = i % 2; for (let j = 0; j < W; j++) x[i*W+j] = Math.min(1, Math.max(0, 0.3 + 0.4*cond[i]*(j<10?1:0) + 0.1*rng.normal())); }
const segments: Segment[] = Array.from({length: W}, (_, j) => ({ column: 'f'+j, kind: 'numeric', offset: j, width: 1 }));
const data: EncodedTable = { x, rows, width: W, segments, cond, classes: ['a','b'] };
for (const [be, fix] of [['wasm', true], ['wasm', false], ['cpu', false]] as const) {
  const info = await initBackend(be, { matmulFix: fix });
  const m = createTwinVae({ width: W, segments, classes: 2, latentDim: 8, hidden: 128, seed: 7 });
  await m.trainEpochs(data, { epochs: 1, batchSize: 64, learningRate: 1e-3, seed: 1 });
  const t0 = performance.now();
  const r = await m.trainEpochs(data, { epochs: 4, batchSize: 64, learningRate: 1e-3, seed: 2 });
  const dt = (performance.now() - t0) / 1000;
  console.log(info.detail, (rows*4/dt).toFixed(0), 'samples/s', r.losses.map(l=>l.toFixed(2)).join(' '));
  if (be === 'wasm' && fix) {
    const t1 = performance.now();
    const r2 = await m.trainEpochs(data, { epochs: 4, batchSize: 64, learningRate: 1e-3, seed: 3, dp: { clip: 1, noiseMultiplier: 1 } });
    const dt2 = (performance.now() - t1) / 1000;
    console.log('  DP', (r2.examples/dt2).toFixed(0), 'samples/s', r2.losses.map(l=>l.toFixed(2)).join(' '), r2.steps, r2.sampleRate);
    const g = m.generate(2000, { classCounts: [1000, 1000], seed: 1 });
    let m0 = 0, m1 = 0; for (let i = 0; i < 1000; i++) { m0 += g.x[i*W]; m1 += g.x[(1000+i)*W]; }
    console.log('  gen mean f0 class0', m0/1000, 'class1', m1/1000);
  }
  console.log('  tensors', tf.memory().numTensors);
  m.dispose();
  console.log('  tensors after dispose', tf.memory().numTensors);
}
