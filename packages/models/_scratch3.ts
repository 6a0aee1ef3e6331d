import * as tf from '@tensorflow/tfjs-core';
import { initBackend, createTwinVae } from './src/index.ts';
import type { Segment } from './src/types.ts';
const W = 30, rows = 64;
const segments: Segment[] = Array.from({length: W}, (_, j) => ({ column: 'f'+j, kind: 'numeric', offset: j, width: 1 }));
const fix = process.argv[2] === 'fix';
await initBackend('wasm', { matmulFix: fix });
const x = new Float32Array(rows*W).map(() => Math.random()); const cond = new Int32Array(rows).map((_, i) => i % 2);
const m = createTwinVae({ width: W, segments, classes: 2, latentDim: 8, hidden: 128, seed: 7 });
const data = { x, rows, width: W, segments, cond, classes: ['a','b'] };
await m.trainEpochs(data, { epochs: 5, batchSize: 64, learningRate: 1e-3, seed: 1 });
const prof = await tf.profile(async () => { await m.trainEpochs(data, { epochs: 20, batchSize: 64, learningRate: 1e-3, seed: 1 }); });
const agg = new Map<string, {n:number, ms:number}>();
for (const k of prof.kernels) { const e = agg.get(k.name) ?? {n:0, ms:0}; e.n++; e.ms += (k.kernelTimeMs as number); agg.set(k.name, e); }
console.log('kernels', prof.kernels.length/20, 'per step');
console.log([...agg].sort((a,b)=>b[1].ms-a[1].ms).slice(0,12).map(([k,e])=>`${k} n=${e.n/20} ms=${(e.ms/20).toFixed(3)}`).join('\n'));
const t0 = performance.now(); await m.trainEpochs(data, { epochs: 200, batchSize: 64, learningRate: 1e-3, seed: 1 }); console.log('step ms', ((performance.now()-t0)/200).toFixed(3));
