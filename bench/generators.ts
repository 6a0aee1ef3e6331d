// `node bench/generators.ts`: the two generators through the real federation — `fedtwin sim` (an aggregator
// and N node processes, BFV secure aggregation, DP with OS-CSPRNG noise) with --generator vae and
// --generator marginals, same split, same ε — scored on the sim's own outputs: fidelity of synthetic.csv vs
// the held-out test.csv (mean over columns of 1 − KS / 1 − TV, evaluate.ts's fidelityReport), TSTR vs TRTR
// (evaluate.ts's logistic regression, ROC AUC on the test rows), correlation distance, wall time.
//   node bench/generators.ts [--dataset breast_cancer_wdbc] [--eps 8] [--seeds 42,43,44] [--generators vae,marginals] [--out out/bench-generators]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fidelityReport, parseCsv, tableFromCsv, trtrAuc, tstrAuc, type Table, type TableSchema } from '@fedtwin/models';
import { DEFAULT_SIM_OPTIONS, runSimulation } from '@fedtwin/sim';

const { values } = parseArgs({
  options: {
    dataset: { type: 'string', default: DEFAULT_SIM_OPTIONS.dataset },
    eps: { type: 'string', default: '8' },
    seeds: { type: 'string', default: '42,43,44' },
    generators: { type: 'string', default: 'vae,marginals' },
    out: { type: 'string', default: 'out/bench-generators' },
  },
});
const epsilon = values.eps === 'inf' ? Infinity : Number(values.eps);
const seeds = values.seeds.split(',').map(Number);
const kinds = values.generators.split(',') as Array<'vae' | 'marginals'>;

async function csvTable(path: string, schema: TableSchema): Promise<Table> {
  const { header, rows } = parseCsv(await readFile(path, 'utf8'));
  return tableFromCsv(header, rows, schema);
}

const ms = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${m.toFixed(3)} ± ${sd.toFixed(3)}`;
};

console.log(`${values.dataset}, ε = ${values.eps}, δ = ${DEFAULT_SIM_OPTIONS.delta}, ${DEFAULT_SIM_OPTIONS.nodes} nodes, Dirichlet α = ${DEFAULT_SIM_OPTIONS.alpha}, seeds ${seeds.join(',')}; mean ± sd over seeds`);
console.log('generator   fidelity vs test   ceiling (train)    TSTR LR AUC        TRTR LR AUC        corr dist          sim wall s');
for (const generator of kinds) {
  const fid: number[] = [], ceil: number[] = [], tstr: number[] = [], trtr: number[] = [], corr: number[] = [], wall: number[] = [];
  for (const seed of seeds) {
    const out = join(values.out, `${generator}-${seed}`);
    const { report } = await runSimulation({ ...DEFAULT_SIM_OPTIONS, dataset: values.dataset, generator, seed, epsilon, out, progress: 'none' });
    const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8')) as TableSchema;
    const synth = await csvTable(join(out, 'synthetic.csv'), schema);
    const test = await csvTable(join(out, 'test.csv'), schema);
    // The training rows: the input minus split.json's test indices, i.e. the nodes' data.csv files together.
    const parts = await Promise.all(report.split.rowsPerNode.map((_, i) => csvTable(join(out, 'nodes', String(i), 'data.csv'), schema)));
    const train: Table = { schema, rows: parts.flatMap((p) => p.rows) };
    const f = fidelityReport(test, synth);
    fid.push(f.mean); corr.push(f.correlationDistance);
    ceil.push(fidelityReport(test, train).mean);
    tstr.push(tstrAuc(synth, test).auc); trtr.push(trtrAuc(train, test).auc);
    wall.push(report.wallSeconds);
  }
  console.log(`${generator.padEnd(11)} ${ms(fid).padEnd(18)} ${ms(ceil).padEnd(18)} ${ms(tstr).padEnd(18)} ${ms(trtr).padEnd(18)} ${ms(corr).padEnd(18)} ${ms(wall)}`);
}
