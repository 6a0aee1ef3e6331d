
import { initBackend, loadDatasetTable, encodeTable, decodeRows, createTwinVae } from './src/index.ts';

const backend = await initBackend();          // { name: 'wasm', detail: 'wasm (SIMD, single-threaded; transposed-matmul fix on)' }
console.log(`tfjs backend: ${backend.detail}`);

const table = await loadDatasetTable('breast_cancer_wdbc');
const enc = encodeTable(table);
const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes,
  latentDim: 8, hidden: 128, seed: 1 });      // same seed on every site → identical initial weights

// each round: vae.setSharedWeights(global)   // Float32Array of vae.sharedSize from the aggregator
const { losses } = await vae.trainEpochs(enc, { epochs: 5, batchSize: 64, learningRate: 2e-3, seed: 42,
  dp: { clip: 1, noiseMultiplier: 1.1 } });   // optional DP-SGD (Poisson sampling, per-example clipping)
const update = vae.getSharedWeights();        // private layers (site.adapter) are never in here

const { x, cond } = vae.generate(1000, { classCounts: [500, 500], seed: 7 }); // rare classes on demand
const synthetic = { schema: table.schema, rows: decodeRows(table.schema, x, cond) };
vae.dispose();

console.log(losses, update.length, synthetic.rows.length, synthetic.rows[0]);
