import { describe, expect, it } from 'vitest';
import { createPrng, createRng, dirichletSplit, encodeTable, fidelityReport, loadDatasetTable, parseCsv, seededNoise, tableFromCsv, tableToCsv, trainTestSplit } from '@fedtwin/models';
import type { Table } from '@fedtwin/models';
import { fitMst, sampleTable } from '../src/index.ts';

async function wdbc(seed: number): Promise<{ train: Table; test: Table; sites: Table[] }> {
  const full = await loadDatasetTable('breast_cancer_wdbc');
  const enc = encodeTable(full);
  const split = trainTestSplit(full.rows.length, 0.2, seed, Array.from(enc.cond));
  const pick = (idx: number[]): Table => ({ schema: full.schema, rows: idx.map((i) => full.rows[i]) });
  const parts = dirichletSplit(split.train.map((i) => enc.cond[i]), 3, 0.5, seed);
  return { train: pick(split.train), test: pick(split.test), sites: parts.map((p) => pick(p.map((j) => split.train[j]))) };
}

describe('MST end to end', () => {
  it('WDBC, 3 sites, ε = 8: fidelity vs the held-out test rows near the sampling ceiling; ε spent ≤ 8', async () => {
    const { train, test, sites } = await wdbc(42);
    // Seeded noise so the figure is reproducible; production uses the OS CSPRNG (default).
    const em = createPrng('em');
    const res = fitMst(sites, { epsilon: 8, delta: 1e-5, noise: seededNoise(createRng(7)), uniform: () => em.next() || 0.5 });
    const prng = createPrng('sample');
    const synth = sampleTable(res.model, train.rows.length, () => prng.next());
    const fid = fidelityReport(test, synth);
    const ceiling = fidelityReport(test, train);
    console.log(`WDBC ε=8: fidelity vs test ${fid.mean.toFixed(3)} (sampling ceiling, train vs test: ${ceiling.mean.toFixed(3)}); ` +
      `correlation distance ${fid.correlationDistance.toFixed(3)} (ceiling ${ceiling.correlationDistance.toFixed(3)}); ε spent ${res.spent.epsilon.toFixed(6)}; ` +
      `bins ${res.bins[0]}; rounds ${res.rounds.map((r) => `${r.name} ${r.marginals}×σ${r.sigma.toFixed(2)}`).join(', ')}; fit ${res.millis.toFixed(0)} ms`);
    // Measured 0.90–0.91 over seeds (bench/marginals.ts); a regression of the method would drop well below.
    expect(fid.mean).toBeGreaterThan(0.88);
    expect(fid.mean).toBeGreaterThan(ceiling.mean - 0.04);
    expect(res.spent.epsilon).toBeLessThanOrEqual(8);
    expect(res.spent.epsilon).toBeGreaterThan(7.999);
    // 'measured' selection: every released sum carried noise.
    expect(res.rounds.map((r) => r.sigma > 0)).toEqual([true, true, true]);
    expect(res.edges.length).toBe(30);
    // The release has the input's columns and formats: it reads back under the same schema.
    const back = parseCsv(Buffer.from(tableToCsv(synth)));
    expect(tableFromCsv(back.header, back.rows, train.schema).rows.length).toBe(train.rows.length);
  });

  it('counts are sums: federated over 3 sites gives the same model as the pooled table (DP off)', async () => {
    const { train, sites } = await wdbc(43);
    const fed = fitMst(sites, { epsilon: Infinity, delta: 1e-5 });
    const pooled = fitMst([train], { epsilon: Infinity, delta: 1e-5 });
    expect(fed.model).toEqual(pooled.model);
    expect(fed.spent.epsilon).toBe(Infinity);
    expect(fed.rounds.every((r) => r.sigma === 0)).toBe(true);
  });

  it("'exponential' (MST's own) selection runs on unnoised pair sums and is accounted as EM picks; default noise is the OS CSPRNG", async () => {
    const { sites } = await wdbc(44);
    const a = fitMst(sites, { epsilon: 8, delta: 1e-5, selection: 'exponential' });
    expect(a.rounds[1]).toMatchObject({ name: 'select', sigma: 0 });
    expect(a.plan.select).toMatchObject({ kind: 'exponential', count: 30 });
    expect(a.spent.epsilon).toBeLessThanOrEqual(8);
    const b = fitMst(sites, { epsilon: 8, delta: 1e-5, selection: 'exponential' });
    expect(b.model.total).not.toBe(a.model.total); // fresh crypto noise each run
    expect(() => fitMst([], { epsilon: 8, delta: 1e-5 })).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});
