import { initBackend, createTwinVae, loadDatasetTable, encodeTable, decodeRows, fidelityReport, tstrAuc, trtrAuc, trainTestSplit, subsetTable, targetIndex } from './src/index.ts';
console.log(await initBackend());
const table = await loadDatasetTable('breast_cancer_wdbc');
const labels = table.rows.map((r) => r[targetIndex(table.schema)] as string);
const { train, test } = trainTestSplit(table.rows.length, 0.3, 42, labels);
const trainT = subsetTable(table, train), testT = subsetTable(table, test);
const enc = encodeTable(trainT);
for (const sigma of [0.05]) {
  const m = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, latentDim: 8, hidden: 128, seed: 1, numericSigma: sigma });
  const t0 = performance.now();
  const r = await m.trainEpochs(enc, { epochs: 150, batchSize: 64, learningRate: 2e-3, seed: 1, dp: { clip: 1, noiseMultiplier: 1.1 } });
  const counts = enc.classes.map((_, c) => enc.cond.filter((v) => v === c).length);
  const g = m.generate(enc.rows, { classCounts: counts, seed: 3 });
  const synth = { schema: table.schema, rows: decodeRows(table.schema, g.x, g.cond) };
  const fid = fidelityReport(trainT, synth);
  console.log('sigma', sigma, 'loss', r.losses[0].toFixed(1), '→', r.losses.at(-1)!.toFixed(1), 'time', ((performance.now()-t0)/1000).toFixed(1)+'s', 'fidelity mean', fid.mean.toFixed(3), 'corrDist', fid.correlationDistance.toFixed(3), 'TSTR', tstrAuc(synth, testT).auc.toFixed(3), 'TRTR', trtrAuc(trainT, testT).auc.toFixed(3));
  m.dispose();
}
