// `node bench/marginals.ts`: the MST marginals generator (@fedtwin/marginals) on the shipped data.
// Per data set, seed and ε: the sim's split (20 % stratified test, the training rows split over 3 sites
// by Dirichlet α = 0.5; the sites' counts are summed as secure aggregation would), fidelity of the
// synthetic rows vs the held-out TEST rows (mean over columns of 1 − KS / 1 − TV, as evaluate.ts), the
// sampling ceiling (the real training rows scored the same way), TSTR vs TRTR with evaluate.ts's
// logistic regression, correlation distance, fit and sample times. DP noise comes from the OS CSPRNG
// (as in production) unless --seeded-noise.
//   node bench/marginals.ts [--datasets breast_cancer_wdbc,pima_diabetes] [--eps 1,8,inf] [--seeds 3]
//   (pima_diabetes_na, lung_ncctg: tables with missing cells; the "missing" column is the missingness-rate score)
//        [--selection measured|exponential] [--bins auto|N] [--max-bins 16] [--fine-bins 1024] [--branching 8]
//        [--smoothing james-stein|none] [--coarsen noisy-quantiles|equal-width] [--split 1,1,1] [--nodes 3]
//        [--seeded-noise] [--scale 7000]   (--scale 0 skips the timing at scale)
import { parseArgs } from 'node:util';
import {
  createPrng, createRng, dirichletSplit, encodeTable, fidelityReport, initBackend, loadDatasetTable, seededNoise, trainTestSplit, trtrAuc, tstrAuc,
} from '@fedtwin/models';
import type { Table } from '@fedtwin/models';
import { fitMst, sampleTable } from '@fedtwin/marginals';
import type { MstOptions } from '@fedtwin/marginals';

const { values } = parseArgs({
  options: {
    datasets: { type: 'string', default: 'breast_cancer_wdbc,pima_diabetes' },
    eps: { type: 'string', default: '1,8,inf' },
    seeds: { type: 'string', default: '3' },
    selection: { type: 'string', default: 'measured' },
    bins: { type: 'string', default: 'auto' },
    'max-bins': { type: 'string' },
    'fine-bins': { type: 'string' },
    branching: { type: 'string' },
    smoothing: { type: 'string' },
    coarsen: { type: 'string' },
    split: { type: 'string' },
    'seeded-noise': { type: 'boolean', default: false },
    scale: { type: 'string', default: '7000' },
    nodes: { type: 'string', default: '3' },
  },
});

const datasets = values.datasets.split(',');
const epsilons = values.eps.split(',').map((e) => (e === 'inf' ? Infinity : Number(e)));
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => 42 + i);
const nodes = Number(values.nodes);
const delta = 1e-5;
const split = values.split?.split(',').map(Number);
const base: Omit<MstOptions, 'epsilon' | 'delta'> = {
  selection: values.selection as MstOptions['selection'],
  bins: values.bins === 'auto' ? 'auto' : Number(values.bins),
  ...(values['max-bins'] ? { maxBins: Number(values['max-bins']) } : {}),
  ...(values['fine-bins'] ? { fineBins: Number(values['fine-bins']) } : {}),
  ...(values.branching ? { branching: Number(values.branching) } : {}),
  ...(values.smoothing ? { smoothing: values.smoothing as MstOptions['smoothing'] } : {}),
  ...(values.coarsen ? { coarsen: values.coarsen as MstOptions['coarsen'] } : {}),
  ...(split ? { split: { oneWay: split[0], select: split[1], edges: split[2] } } : {}),
};

const backend = await initBackend();
console.log(`marginals bench: Node ${process.version}, tfjs ${backend.name} (TSTR only); ${nodes} sites, Dirichlet α 0.5, test 20 %, δ ${delta}, seeds ${seeds.join(',')}, noise ${values['seeded-noise'] ? 'seeded' : 'OS CSPRNG'}`);
console.log(`options: ${JSON.stringify(base)}`);

const mean = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length;
const sd = (a: number[]): number => (a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)));
const fmt = (a: number[], d = 3): string => `${mean(a).toFixed(d)} ± ${sd(a).toFixed(d)}`;

for (const name of datasets) {
  const full = await loadDatasetTable(name);
  const enc = encodeTable(full);
  const rows = new Map<string, { fid: number[]; tstr: number[]; corr: number[]; miss: number[]; fit: number[]; sample: number[]; eps: number[]; bins: string[] }>();
  const ceiling = { fid: [] as number[], trtr: [] as number[], corr: [] as number[] };
  for (const seed of seeds) {
    const { train, test } = trainTestSplit(full.rows.length, 0.2, seed, Array.from(enc.cond));
    const pick = (idx: number[]): Table => ({ schema: full.schema, rows: idx.map((i) => full.rows[i]) });
    const trainT = pick(train);
    const testT = pick(test);
    const parts = dirichletSplit(train.map((i) => enc.cond[i]), nodes, 0.5, seed);
    const sites = parts.map((p) => pick(p.map((j) => train[j])));
    const real = fidelityReport(testT, trainT);
    ceiling.fid.push(real.mean);
    ceiling.corr.push(real.correlationDistance);
    ceiling.trtr.push(trtrAuc(trainT, testT).auc);
    for (const epsilon of epsilons) {
      const noise = values['seeded-noise'] ? seededNoise(createRng(seed * 1000 + (epsilon === Infinity ? 999 : epsilon))) : undefined;
      const uni = createPrng(`em-${seed}-${epsilon}`);
      const res = fitMst(sites, { ...base, epsilon, delta, ...(noise ? { noise, uniform: () => (uni.next() + 2 ** -54) } : {}) });
      const t1 = performance.now();
      const prng = createPrng(`sample-${seed}-${epsilon}`);
      const synth = sampleTable(res.model, train.length, () => prng.next());
      const sampleMs = performance.now() - t1;
      const fid = fidelityReport(testT, synth);
      const key = String(epsilon);
      const r = rows.get(key) ?? { fid: [], tstr: [], corr: [], miss: [], fit: [], sample: [], eps: [], bins: [] };
      r.fid.push(fid.mean);
      if (fid.missingness) r.miss.push(fid.missingness.mean);
      r.corr.push(fid.correlationDistance);
      r.tstr.push(tstrAuc(synth, testT).auc);
      r.fit.push(res.millis);
      r.sample.push(sampleMs);
      r.eps.push(res.spent.epsilon);
      r.bins.push(String(Math.max(...res.bins.filter((_, k) => full.schema.columns[k].kind === 'numeric'))));
      rows.set(key, r);
    }
  }
  console.log(`\n${name}: ${full.rows.length} rows × ${full.schema.columns.length} columns; mean ± sd over ${seeds.length} seeds`);
  console.log('ε        spent   fidelity vs test   ceiling (train)   TSTR LR AUC        TRTR LR AUC        corr dist (ceil)        missing         bins  fit ms  sample ms');
  for (const [key, r] of rows) {
    console.log(
      `${key.padEnd(8)} ${(Number.isFinite(mean(r.eps)) ? mean(r.eps).toFixed(3) : '∞').padEnd(7)} ${fmt(r.fid).padEnd(18)} ${fmt(ceiling.fid).padEnd(17)} ${fmt(r.tstr).padEnd(18)} ${fmt(ceiling.trtr).padEnd(18)} ${fmt(r.corr)} (${mean(ceiling.corr).toFixed(3)})  ${(r.miss.length ? fmt(r.miss) : '—').padEnd(15)} ${r.bins.join('/').padEnd(5)} ${mean(r.fit).toFixed(0).padStart(6)} ${mean(r.sample).toFixed(0).padStart(9)}`,
    );
  }
}

// Scale: fit + sample on a table of `--scale` rows (WDBC training rows drawn with replacement), ε = 8.
const scale = Number(values.scale);
if (scale > 0) {
  const full = await loadDatasetTable('breast_cancer_wdbc');
  const prng = createPrng('scale');
  const big: Table = { schema: full.schema, rows: Array.from({ length: scale }, () => full.rows[prng.int(full.rows.length)]) };
  const sites = [0, 1, 2].map((s) => ({ schema: big.schema, rows: big.rows.filter((_, i) => i % 3 === s) }));
  const res = fitMst(sites, { ...base, epsilon: 8, delta });
  const t1 = performance.now();
  sampleTable(res.model, scale, () => prng.next());
  console.log(`\nscale: ${scale} rows × ${big.schema.columns.length} columns (WDBC resampled), 3 sites, ε = 8: fit ${res.millis.toFixed(0)} ms, sample ${scale} rows ${(performance.now() - t1).toFixed(0)} ms`);
}
