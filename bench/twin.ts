// `npm run bench -- --only twin` (node bench/twin.ts): issue 14's twin-quality table. For each data set and seed,
// real federations (`fedtwin sim`: aggregator + node processes, BFV, DP with OS-CSPRNG noise) with the default
// generator at ε = 8, the other generator at ε = 8 and the default generator with DP off, and a DP Gaussian copula
// baseline (@fedtwin/marginals fitDpCopula) fitted centrally on the same split's training rows at the same ε — every
// one scored on the same held-out test rows by the same code as the sim's report: fidelity vs test (mean column
// score), forest TSTR vs TRTR, minority-class recall (synthetic-trained vs real-trained forest), the distance-based
// membership-inference AUC, and fit (+ sample) time. Mean ± 95 % CI over seeds; targets checked for the default.
//   node bench/twin.ts [--datasets breast_cancer_wdbc,data/pima_diabetes_na.csv,data/lung_ncctg.csv] [--seeds 5]
//                      [--eps 8] [--nodes 3] [--configs default,other,dp-off,copula] [--out out/bench-twin] [--scale 7000]
// --scale N (0 skips it): the default generator's fit and sample times on N rows (WDBC resampled), in-process
// (fitMst over 3 sites, then sampleTable of N rows: the federation's arithmetic without the daemons) and through a
// real federation on the same N-row CSV (its wall time: 3 rounds under BFV plus each node sampling its share).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createPrng, loadDatasetTable, tableToCsv, fidelityReport, forestUtility, membershipInferenceAuc, parseCsv, tableFromCsv, type Table, type TableSchema } from '@fedtwin/models';
import { fitDpCopula, fitMst, sampleDpCopula, sampleTable } from '@fedtwin/marginals';
import { DEFAULT_SIM_OPTIONS, runSimulation } from '@fedtwin/sim';

const { values } = parseArgs({
  options: {
    datasets: { type: 'string', default: 'breast_cancer_wdbc,data/pima_diabetes_na.csv,data/lung_ncctg.csv' },
    seeds: { type: 'string', default: '5' },
    eps: { type: 'string', default: '8' },
    nodes: { type: 'string', default: String(DEFAULT_SIM_OPTIONS.nodes) },
    configs: { type: 'string', default: 'default,other,dp-off,copula' },
    out: { type: 'string', default: 'out/bench-twin' },
    scale: { type: 'string', default: '7000' },
  },
});
/** Label columns of the data sets this bench knows (data/README.md); a built-in name brings its own. */
const TARGETS: Record<string, string> = { 'data/pima_diabetes_na.csv': 'diabetes', 'data/lung_ncctg.csv': 'status' };
const epsilon = Number(values.eps);
const nodes = Number(values.nodes);
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => 42 + i);
const defaultGenerator = DEFAULT_SIM_OPTIONS.generator;
const otherGenerator = defaultGenerator === 'marginals' ? 'vae' : 'marginals';
type Config = 'default' | 'other' | 'dp-off' | 'copula';
const configs = values.configs.split(',') as Config[];
const label = (c: Config) => ({ default: `${defaultGenerator} ε=${epsilon}`, other: `${otherGenerator} ε=${epsilon}`, 'dp-off': `${defaultGenerator} DP off`, copula: `DP copula ε=${epsilon}` })[c];

interface Scores { fidelity: number; corrDist: number; tstrForest: number; trtrForest: number; recallSynth: number; recallReal: number; mia: number; seconds: number }

async function csvTable(path: string, schema: TableSchema): Promise<Table> {
  const { header, rows } = parseCsv(await readFile(path, 'utf8'));
  return tableFromCsv(header, rows, schema);
}

interface Split { schema: TableSchema; train: Table; test: Table }

/** A sim output's split: its schema, the held-out test rows and the training rows (the nodes' data.csv, pooled). */
async function loadSplit(out: string, nodeCount: number): Promise<Split> {
  const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8')) as TableSchema;
  const test = await csvTable(join(out, 'test.csv'), schema);
  const parts = await Promise.all(Array.from({ length: nodeCount }, (_, i) => csvTable(join(out, 'nodes', String(i), 'data.csv'), schema)));
  return { schema, test, train: { schema, rows: parts.flatMap((p) => p.rows) } };
}

/** The sim's own evaluation, recomputed the same way for every config so the copula is scored alike. */
function score(synthetic: Table, train: Table, test: Table, seed: number, seconds: number): Scores {
  const f = fidelityReport(test, synthetic);
  const real = forestUtility(train, test, { seed });
  const synth = forestUtility(synthetic, test, { seed });
  return {
    fidelity: f.mean, corrDist: f.correlationDistance, tstrForest: synth.auc, trtrForest: real.auc,
    recallSynth: synth.minorityRecall ?? NaN, recallReal: real.minorityRecall ?? NaN,
    mia: membershipInferenceAuc(synthetic, train, test, createPrng(seed * 31 + 5)).auc, seconds,
  };
}

/** Mean and 95 % CI half-width (Student t) over seeds. */
function ci(xs: number[]): { mean: number; half: number } {
  const v = xs.filter(Number.isFinite);
  const n = v.length;
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, n);
  if (n < 2) return { mean, half: NaN };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const t = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262][n - 2] ?? 1.96;
  return { mean, half: (t * sd) / Math.sqrt(n) };
}
const fmt = (xs: number[], digits = 3) => { const c = ci(xs); return Number.isFinite(c.half) ? `${c.mean.toFixed(digits)} ± ${c.half.toFixed(digits)}` : c.mean.toFixed(digits); };

await mkdir(values.out, { recursive: true });
const results: Record<string, Record<string, Scores[]>> = {};
for (const dataset of values.datasets.split(',')) {
  if (dataset.includes('/') && !existsSync(dataset)) {
    console.log(`\n${dataset}: not in this checkout, skipped`);
    continue;
  }
  const target = TARGETS[dataset];
  const perConfig: Record<string, Scores[]> = Object.fromEntries(configs.map((c) => [c, []]));
  results[dataset] = perConfig;
  for (const seed of seeds) {
    const base = { ...DEFAULT_SIM_OPTIONS, dataset, ...(target ? { target } : {}), nodes, seed, epsilon, progress: 'none' as const };
    let split: Split | undefined; // this seed's split, shared by every config (same --seed, same data)
    for (const c of configs) {
      if (c === 'copula') continue;
      const out = join(values.out, `${dataset.replace(/[^a-z0-9_]+/gi, '_')}-${c}-${seed}`);
      const opts = c === 'other' ? { ...base, generator: otherGenerator as typeof defaultGenerator, out } : c === 'dp-off' ? { ...base, dp: 'off' as const, epsilon: Infinity, out } : { ...base, out };
      const { report } = await runSimulation(opts);
      split ??= await loadSplit(out, report.split.rowsPerNode.length);
      perConfig[c]!.push(score(await csvTable(join(out, 'synthetic.csv'), split.schema), split.train, split.test, seed, report.timing.federatedSeconds));
      process.stdout.write('.');
    }
    if (configs.includes('copula')) {
      if (!split) {
        const out = join(values.out, `${dataset.replace(/[^a-z0-9_]+/gi, '_')}-split-${seed}`);
        await runSimulation({ ...base, out });
        split = await loadSplit(out, nodes);
      }
      // Missing bins come from the schema's declarations (domainFromSchema), never from which cells the rows lack.
      const p = createPrng(`copula-${seed}`);
      const t0 = performance.now();
      const model = fitDpCopula(split.train, { epsilon, delta: DEFAULT_SIM_OPTIONS.delta, normal: () => p.normal(), uniform: () => p.next() || 0.5 });
      const synthetic = sampleDpCopula(model, split.train.rows.length, { normal: () => p.normal(), uniform: () => p.next() || 0.5 });
      perConfig.copula!.push(score(synthetic, split.train, split.test, seed, (performance.now() - t0) / 1000));
      process.stdout.write('c');
    }
  }
  process.stdout.write('\n');
  console.log(`\n${dataset}: ε = ${epsilon}, δ = ${DEFAULT_SIM_OPTIONS.delta}, ${nodes} nodes, Dirichlet α = ${DEFAULT_SIM_OPTIONS.alpha}, seeds ${seeds.join(',')} (mean ± 95 % CI)`);
  console.log(`${'config'.padEnd(20)} ${'fidelity vs test'.padEnd(16)} ${'forest TSTR'.padEnd(15)} ${'forest TRTR'.padEnd(15)} ${'minority recall'.padEnd(15)} ${'(real)'.padEnd(15)} ${'MIA AUC'.padEnd(15)} ${'corr dist'.padEnd(15)} fit+sample s`);
  for (const c of configs) {
    const s = perConfig[c]!;
    const col = (k: keyof Scores, d = 3) => fmt(s.map((x) => x[k]), d).padEnd(15);
    console.log(`${label(c).padEnd(20)} ${col('fidelity').padEnd(16)} ${col('tstrForest')} ${col('trtrForest')} ${col('recallSynth')} ${col('recallReal')} ${col('mia')} ${col('corrDist')} ${fmt(s.map((x) => x.seconds), 1)}`);
  }
  const d = perConfig.default;
  if (d && d.length) {
    const m = (f: (x: Scores) => number) => ci(d.map(f)).mean;
    const checks = [
      ['fidelity vs test ≥ .90', m((x) => x.fidelity) >= 0.9, m((x) => x.fidelity).toFixed(3)],
      ['forest TSTR within .05 of TRTR', m((x) => x.trtrForest - x.tstrForest) <= 0.05, `gap ${m((x) => x.trtrForest - x.tstrForest).toFixed(3)}`],
      ['MIA AUC ≤ .55', m((x) => x.mia) <= 0.55, m((x) => x.mia).toFixed(3)],
      ['minority recall within .10 of TRTR', m((x) => x.recallReal - x.recallSynth) <= 0.1, `gap ${m((x) => x.recallReal - x.recallSynth).toFixed(3)}`],
    ] as const;
    console.log(`targets for the default generator (${defaultGenerator}): ${checks.map(([what, ok, v]) => `${ok ? 'met' : 'MISSED'} ${what} (${v})`).join('; ')}`);
  }
}
let scaleTimes: { rows: number; fitMs: number; sampleMs: number; federationSeconds?: number } | undefined;
const scale = Number(values.scale);
if (scale > 0 && defaultGenerator === 'marginals') {
  const full = await loadDatasetTable('breast_cancer_wdbc');
  const prng = createPrng('scale');
  const big: Table = { schema: full.schema, rows: Array.from({ length: scale }, () => full.rows[prng.int(full.rows.length)]!) };
  const sites = [0, 1, 2].map((k) => ({ schema: big.schema, rows: big.rows.filter((_, i) => i % 3 === k) }));
  const t0 = performance.now();
  const fit = fitMst(sites, { epsilon, delta: DEFAULT_SIM_OPTIONS.delta });
  const fitMs = performance.now() - t0;
  const t1 = performance.now();
  sampleTable(fit.model, scale, () => prng.next());
  const sampleMs = performance.now() - t1;
  scaleTimes = { rows: scale, fitMs, sampleMs };
  console.log(`\nscale: ${scale} rows × ${big.schema.columns.length} columns (WDBC resampled), 3 sites, ε = ${epsilon}, ${defaultGenerator} in-process: fit ${fitMs.toFixed(0)} ms, sample ${scale} rows ${sampleMs.toFixed(0)} ms`);
  const csv = join(values.out, `wdbc-${scale}.csv`);
  await writeFile(csv, tableToCsv(big));
  const { report } = await runSimulation({ ...DEFAULT_SIM_OPTIONS, dataset: csv, target: full.schema.target, nodes, seed: 42, epsilon, progress: 'none' as const, out: join(values.out, `scale-${scale}`) });
  scaleTimes.federationSeconds = report.timing.federatedSeconds;
  console.log(`scale: the same ${scale} rows through a real federation (${nodes} nodes, BFV, DP, each node sampling its share): ${report.timing.federatedSeconds.toFixed(1)} s wall`);
}
await writeFile(join(values.out, 'results.json'), JSON.stringify({ epsilon, nodes, seeds, results, ...(scaleTimes ? { scale: scaleTimes } : {}) }, null, 1));
console.log(`\nper-seed figures: ${join(values.out, 'results.json')}`);
