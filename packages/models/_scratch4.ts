import * as tf from '@tensorflow/tfjs-core';
import { initBackend, createTwinVae } from './src/index.ts';
import type { Segment } from './src/types.ts';
const W = 30, rows = 640, hidden = Number(process.argv[2] ?? 128);
const segments: Segment[] = Array.from({length: W}, (_, j) => ({ column: 'f'+j, kind: 'numeric', offset: j, width: 1 }));
const x = new Float32Array(rows*W).map(() => Math.random()); const cond = new Int32Array(rows).map((_, i) => i % 2);
const data = { x, rows, width: W, segments, cond, classes: ['a','b'] };
const res: Record<string, number[]> = {};
for (let rep = 0; rep < 5; rep++) for (const cfg of ['fix', 'fixdp0', 'fixdp']) {
  await initBackend('wasm', { matmulFix: true });
  const m = createTwinVae({ width: W, segments, classes: 2, latentDim: 16, hidden, seed: 7 });
  const dp = cfg === 'fixdp' ? { clip: 1, noiseMultiplier: 1 } : cfg === 'fixdp0' ? { clip: 1, noiseMultiplier: 0 } : undefined;
  await m.trainEpochs(data, { epochs: 1, batchSize: 64, learningRate: 1e-3, seed: 1, dp });
  const t0 = performance.now(); const r = await m.trainEpochs(data, { epochs: 5, batchSize: 64, learningRate: 1e-3, seed: 1, dp });
  (res[cfg] ??= []).push(r.examples / ((performance.now()-t0)/1000));
  m.dispose();
}
for (const [k, v] of Object.entries(res)) console.log(k, Math.max(...v).toFixed(0), v.map(x=>x.toFixed(0)).join(' '));
