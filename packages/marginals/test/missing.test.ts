// Missing cells in the marginals generator: the schema's declared missingness gives a column a public
// "missing" bin, so the fitted marginals carry the missing rate and its pattern with other columns.
import { describe, expect, it } from 'vitest';
import { createPrng, dirichletSplit, encodeTable, loadDatasetTable, missingnessReport, parseCsv, tableFromCsv, tableToCsv, trainTestSplit } from '@fedtwin/models';
import type { Table, TableSchema } from '@fedtwin/models';
import { binTable, columnSize, domainFromSchema, fitMst, sampleTable, valueBins } from '../src/index.ts';

describe('marginals with missing values', () => {
  it('gives a missing bin (the last one) exactly to the columns the schema declares may be missing', () => {
    const schema: TableSchema = {
      target: 'y',
      columns: [
        { name: 'a', kind: 'numeric', min: 0, max: 9, integer: true, decimals: 0, allowMissing: true },
        { name: 'z', kind: 'numeric', min: 0, max: 9, integer: true, decimals: 0, zeroIsMissing: true },
        { name: 'c', kind: 'categorical', categories: ['p', 'q'], allowMissing: true },
        { name: 'b', kind: 'numeric', min: 0, max: 9, integer: true, decimals: 0 },
        { name: 'y', kind: 'categorical', categories: ['0', '1'] },
      ],
    };
    const d = domainFromSchema(schema);
    expect(d.columns.map((c) => c.missing)).toEqual([true, true, true, false, false]);
    expect(d.columns.map(columnSize)).toEqual([11, 11, 3, 10, 2]);
    const t: Table = { schema, rows: [[null, null, null, 3, '0'], [4, 5, 'q', 0, '1']] };
    const bins = binTable(d, t);
    expect(bins.map((b) => b[0])).toEqual([valueBins(d.columns[0]), valueBins(d.columns[1]), 2, 3, 0]);
    expect(bins.map((b) => b[1])).toEqual([4, 5, 1, 0, 1]);
    // A column that does not declare missingness still refuses a missing cell.
    expect(() => binTable(d, { schema, rows: [[1, 1, 'p', null, '0']] })).toThrow(/without a missing-value bin/);
  });

  it('pima_diabetes_na, 3 sites, no DP: missing rates and their link to the class come out close to real; written empty', async () => {
    const full = await loadDatasetTable('pima_diabetes_na');
    const enc = encodeTable(full);
    const split = trainTestSplit(full.rows.length, 0.2, 1, Array.from(enc.cond));
    const train: Table = { schema: full.schema, rows: split.train.map((i) => full.rows[i]) };
    const parts = dirichletSplit(split.train.map((i) => enc.cond[i]), 3, 0.5, 1);
    const sites = parts.map((p): Table => ({ schema: full.schema, rows: p.map((j) => train.rows[j]) }));
    const res = fitMst(sites, { epsilon: Infinity, delta: 1e-5 });
    const prng = createPrng('missing');
    const synth = sampleTable(res.model, 4000, () => prng.next());
    const m = missingnessReport(train, synth)!;
    console.log(`pima_na no DP: missingness ${m.columns.map((c) => `${c.name} ${c.real.toFixed(3)}/${c.synthetic.toFixed(3)}`).join(', ')}; mean score ${m.mean.toFixed(3)}`);
    expect(m.columns.map((c) => c.name)).toEqual(['glucose', 'pressure', 'triceps', 'insulin', 'mass']);
    for (const c of m.columns) expect(Math.abs(c.real - c.synthetic)).toBeLessThan(0.04);
    // The pattern: insulin is missing far more often together with triceps than without it (real: ~all triceps-missing rows lack insulin).
    const k = (n: string) => full.schema.columns.findIndex((c) => c.name === n);
    const both = (t: Table) => t.rows.filter((r) => r[k('triceps')] === null && r[k('insulin')] === null).length / t.rows.filter((r) => r[k('triceps')] === null).length;
    expect(both(train)).toBeGreaterThan(0.95);
    expect(both(synth)).toBeGreaterThan(0.85);
    // Missing cells are written as empty fields and read back as missing.
    const text = tableToCsv(synth);
    expect(text.split('\n')[1].split(',')).toHaveLength(9);
    const back = parseCsv(Buffer.from(text));
    expect(tableFromCsv(back.header, back.rows, full.schema).rows).toEqual(synth.rows);
  });
});
