import * as tf from '@tensorflow/tfjs-core';
import { initBackend, createTwinVae } from './src/index.ts';
import type { Segment } from './src/types.ts';
const W = 30, rows = 1024;
const segments: Segment[] = Array.from({length: W}, (_, j) => ({ column: 'f'+j, kind: 'numeric', offset: j, width: 1 }));
await initBackend('wasm');
const x = new Float32Array(rows*W).map(() => Math.random()); const cond = new Int32Array(rows).map((_, i) => i % 2);
const data = { x, rows, width: W, segments, cond, classes: ['a','b'] };
const m = createTwinVae({ width: W, segments, classes: 2, latentDim: 16, hidden: 128, seed: 7 });
for (const dp of [undefined, { clip: 1, noiseMultiplier: 1.1 }, { clip: 1, noiseMultiplier: 1.1, secureNoise: false }, undefined, { clip: 1, noiseMultiplier: 1.1 }]) {
  const prof = { kernels: [] as unknown[] }; await m.trainEpochs(data, { epochs: 1, batchSize: 64, learningRate: 1e-3, seed: 1, dp });
  const t0 = performance.now(); const r = await m.trainEpochs(data, { epochs: 10, batchSize: 64, learningRate: 1e-3, seed: 1, dp });
  const dt = performance.now() - t0;
  console.log(dp ? 'dp' + (dp.secureNoise === false ? ' (seeded noise)' : '') : 'plain', 'kernels/step', prof.kernels.length / 16, 'ms/step', (dt / r.steps).toFixed(2), 'samples/s', (r.examples / dt * 1000).toFixed(0));
}
