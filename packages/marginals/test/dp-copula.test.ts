import { describe, expect, it } from 'vitest';
import { RdpAccountant, normalCdf } from '@fedtwin/dp';
import { FedtwinError } from '@fedtwin/errors';
import { createPrng, encodeTable, fidelityReport, loadDatasetTable, trainTestSplit, type Table } from '@fedtwin/models';
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { fitDpCopula, nearestCorrelation, normalQuantile, sampleDpCopula, MISSING_CELL } from '../src/index.ts';

async function wdbc(seed: number): Promise<{ train: Table; test: Table }> {
  const full = await loadDatasetTable('breast_cancer_wdbc');
  const enc = encodeTable(full);
  const split = trainTestSplit(full.rows.length, 0.2, seed, Array.from(enc.cond));
  const pick = (idx: number[]): Table => ({ schema: full.schema, rows: idx.map((i) => full.rows[i]!) });
  return { train: pick(split.train), test: pick(split.test) };
}
const rngOf = (seed: string) => {
  const p = createPrng(seed);
  return { normal: () => p.normal(), uniform: () => p.next() || 0.5 };
};
const pearson = (t: Table, a: string, b: string) => {
  const i = t.schema.columns.findIndex((c) => c.name === a), j = t.schema.columns.findIndex((c) => c.name === b);
  const xs = t.rows.map((r) => Number(r[i])), ys = t.rows.map((r) => Number(r[j]));
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length, my = ys.reduce((s, y) => s + y, 0) / ys.length;
  let sxy = 0, sxx = 0, syy = 0;
  for (let k = 0; k < xs.length; k++) { sxy += (xs[k]! - mx) * (ys[k]! - my); sxx += (xs[k]! - mx) ** 2; syy += (ys[k]! - my) ** 2; }
  return sxy / Math.sqrt(sxx * syy);
};

describe('DP Gaussian copula (the benchmark baseline)', () => {
  it('normalQuantile inverts Φ to ~1e-15, in the centre and far in both tails', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 12);
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 10);
    for (const p of [1e-300, 1e-8, 0.01, 0.3, 0.7, 0.99, 1 - 1e-12]) expect(Math.abs(normalCdf(normalQuantile(p)) - p) / Math.min(p, 1 - p)).toBeLessThan(1e-9);
    expect(() => normalQuantile(0)).toThrow(FedtwinError);
  });

  it('nearestCorrelation turns an indefinite "correlation" into a valid one (unit diagonal, Cholesky works)', () => {
    const bad = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]; // not positive semi-definite
    expect(() => new CholeskyDecomposition(new Matrix(bad)).lowerTriangularMatrix).not.toThrow(); // ml-matrix does not throw…
    expect(new CholeskyDecomposition(new Matrix(bad)).isPositiveDefinite()).toBe(false); // …it says so
    const r = nearestCorrelation(bad);
    for (let i = 0; i < 3; i++) expect(r[i]![i]).toBe(1);
    expect(new CholeskyDecomposition(new Matrix(r)).isPositiveDefinite()).toBe(true);
    expect(r[0]![1]).toBeGreaterThan(0);
    expect(r[0]![2]).toBeLessThan(0);
  });

  it('without noise (ε = ∞) it keeps the class mix, the marginals and a strong correlation of the real rows', async () => {
    const { train, test } = await wdbc(1);
    const model = fitDpCopula(train, { epsilon: Infinity, delta: 1e-5, ...rngOf('fit') });
    expect(model.noiseMultiplier).toBe(0);
    const synth = sampleDpCopula(model, 4000, rngOf('sample'));
    const ti = train.schema.columns.findIndex((c) => c.name === train.schema.target);
    const share = (t: Table, v: string) => t.rows.filter((r) => r[ti] === v).length / t.rows.length;
    const target = train.schema.columns[ti]!;
    expect(target.kind === 'categorical' && target.categories.length).toBe(2);
    for (const v of (target as { categories: string[] }).categories) {
      expect(share(train, v)).toBeGreaterThan(0.3);
      expect(Math.abs(share(synth, v) - share(train, v))).toBeLessThan(0.03);
    }
    expect(fidelityReport(test, synth).mean).toBeGreaterThan(0.85);
    // radius and perimeter are ~0.99 correlated in WDBC; the copula keeps most of it through 16 bins.
    expect(pearson(train, 'mean_radius', 'mean_perimeter')).toBeGreaterThan(0.95);
    expect(pearson(synth, 'mean_radius', 'mean_perimeter')).toBeGreaterThan(0.85);
  });

  it('at ε = 8 its three releases compose to exactly the target on the RDP accountant, and the noise is there', async () => {
    const { train } = await wdbc(2);
    const model = fitDpCopula(train, { epsilon: 8, delta: 1e-5, ...rngOf('fit8') });
    expect(model.noiseMultiplier).toBeGreaterThan(0);
    const check = new RdpAccountant().compose({ sampleRate: 1, noiseMultiplier: model.noiseMultiplier, steps: 3 }).getEpsilon(1e-5).epsilon;
    expect(check).toBeCloseTo(model.epsilon, 12);
    expect(model.epsilon).toBeLessThanOrEqual(8 + 1e-9);
    expect(model.epsilon).toBeGreaterThan(7.99);
    // At ε = 0.05 the 16-bin histograms of ~450 rows are mostly noise: the fitted class mix is off the real one.
    const weak = fitDpCopula(train, { epsilon: 0.05, delta: 1e-5, ...rngOf('fit-weak') });
    const exact = fitDpCopula(train, { epsilon: Infinity, delta: 1e-5, ...rngOf('fit-exact') });
    const l1 = weak.histograms.flat(2).reduce((s, p, k) => s + Math.abs(p - exact.histograms.flat(2)[k]!), 0);
    expect(l1).toBeGreaterThan(1);
  });

  it('declared missing cells get a bin and come back empty at about their rate', () => {
    const schema = { target: 'y', columns: [
      { name: 'x', kind: 'numeric' as const, min: 0, max: 10, integer: false, decimals: 1 },
      { name: 'y', kind: 'categorical' as const, categories: ['a', 'b'] },
    ] };
    const rows: Array<Array<number | string>> = [];
    for (let i = 0; i < 1000; i++) rows.push([i % 4 === 0 ? '' : (i % 100) / 10, i % 2 ? 'a' : 'b']);
    const model = fitDpCopula({ schema, rows }, { epsilon: Infinity, delta: 1e-5, missing: ['x'], ...rngOf('m') });
    const synth = sampleDpCopula(model, 4000, rngOf('ms'));
    const rate = synth.rows.filter((r) => r[0] === MISSING_CELL).length / synth.rows.length;
    expect(rate).toBeGreaterThan(0.22);
    expect(rate).toBeLessThan(0.28);
    // Undeclared, a missing cell is refused (the schema must say which columns may be empty).
    expect(() => fitDpCopula({ schema, rows }, { epsilon: 8, delta: 1e-5, ...rngOf('m2') })).toThrow(/missing/);
  });

  it('refuses bad input with MARGINALS_BAD_ARGUMENT', () => {
    const schema = { target: 'x', columns: [{ name: 'x', kind: 'numeric' as const, min: 0, max: 1, integer: false, decimals: 2 }] };
    const code = (f: () => unknown) => { try { f(); } catch (e) { return (e as FedtwinError).code; } return 'none'; };
    const ok = { schema: { target: 'y', columns: [{ name: 'y', kind: 'categorical' as const, categories: ['a'] }] }, rows: [['a']] };
    expect(code(() => fitDpCopula({ schema, rows: [[0.5]] }, { epsilon: 8, delta: 1e-5, ...rngOf('b') }))).toBe('MARGINALS_BAD_ARGUMENT');
    expect(code(() => fitDpCopula(ok, { epsilon: 0, delta: 1e-5, ...rngOf('b') }))).toBe('MARGINALS_BAD_ARGUMENT');
    expect(code(() => fitDpCopula(ok, { epsilon: 8, delta: 1, ...rngOf('b') }))).toBe('MARGINALS_BAD_ARGUMENT');
    expect(code(() => fitDpCopula({ ...ok, rows: [] }, { epsilon: 8, delta: 1e-5, ...rngOf('b') }))).toBe('MARGINALS_BAD_ARGUMENT');
    expect(code(() => sampleDpCopula(fitDpCopula(ok, { epsilon: 8, delta: 1e-5, ...rngOf('b') }), -1, rngOf('c')))).toBe('MARGINALS_BAD_ARGUMENT');
  });
});
