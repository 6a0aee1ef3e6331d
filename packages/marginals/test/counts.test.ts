import { describe, expect, it } from 'vitest';
import { createRng, dirichletSplit, encodeTable, loadDatasetTable, seededNoise } from '@fedtwin/models';
import type { Table, TableSchema } from '@fedtwin/models';
import { addNoise, allPairs, binTable, coarsenDomain, domainFromSchema, localCounts, marginalSize, noiseShare, sumCounts } from '../src/index.ts';

const tiny: TableSchema = {
  target: 'y',
  columns: [
    { name: 'age', kind: 'numeric', min: 0, max: 3, integer: true, decimals: 0 },
    { name: 'bmi', kind: 'numeric', min: 10, max: 50, integer: false, decimals: 1 },
    { name: 'y', kind: 'categorical', categories: ['neg', 'pos'] },
  ],
};

describe('domain', () => {
  it('bins from the declared schema only: one bin per grid value when the grid is small, equal width otherwise', () => {
    const d = domainFromSchema(tiny, { bins: 100 });
    const age = d.columns[0];
    const bmi = d.columns[1];
    expect(age.kind === 'numeric' && age.edges).toEqual([-0.5, 0.5, 1.5, 2.5, 3.5]);
    // bmi has 401 grid values (10.0 … 50.0) > 100: 100 equal-width bins over [10, 50].
    expect(bmi.kind === 'numeric' && bmi.edges.length).toBe(101);
    expect(bmi.kind === 'numeric' && bmi.edges[1]).toBeCloseTo(10.4, 12);
    // With room for the grid, every value 10.0, 10.1, … gets its own bin.
    const fine = domainFromSchema(tiny, { bins: 1024 });
    expect(fine.columns[1].kind === 'numeric' && fine.columns[1].edges.length).toBe(402);
    const t: Table = { schema: tiny, rows: [[0, 10, 'neg'], [3, 50, 'pos'], [2, 33.3, 'pos']] };
    const [a, b, y] = binTable(fine, t);
    expect(Array.from(a)).toEqual([0, 3, 2]);
    expect(Array.from(b)).toEqual([0, 400, 233]);
    expect(Array.from(y)).toEqual([0, 1, 1]);
  });

  it('refuses values the domain cannot hold, with stable codes; the missing-value hook takes empty cells', () => {
    const d = domainFromSchema(tiny);
    expect(() => binTable(d, { schema: tiny, rows: [[4, 20, 'neg']] })).toThrow(expect.objectContaining({ code: 'MARGINALS_OUT_OF_RANGE' }));
    expect(() => binTable(d, { schema: tiny, rows: [[1, 20, 'maybe']] })).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_VALUE' }));
    expect(() => binTable(d, { schema: tiny, rows: [[1, '', 'neg']] })).toThrow(expect.objectContaining({ code: 'MARGINALS_MISSING_VALUE' }));
    const withMissing = domainFromSchema(tiny, { missing: ['bmi'] });
    const [, b] = binTable(withMissing, { schema: tiny, rows: [[1, '', 'neg'], [1, 10, 'neg']] });
    const size = withMissing.columns[1].kind === 'numeric' ? withMissing.columns[1].edges.length - 1 : -1;
    expect(Array.from(b)).toEqual([size, 0]); // the missing bin is the last one
    const other: TableSchema = { ...tiny, columns: [tiny.columns[1], tiny.columns[0], tiny.columns[2]] };
    expect(() => binTable(d, { schema: other, rows: [] })).toThrow(expect.objectContaining({ code: 'MARGINALS_SCHEMA_MISMATCH' }));
  });

  it('coarsens at the quantiles of the (noisy, public) fine counts; cuts fall on fine edges', () => {
    const d = domainFromSchema(tiny, { bins: 1024 });
    const counts = d.columns.map((c) => new Float64Array(c.kind === 'numeric' ? c.edges.length - 1 : c.categories.length));
    counts[0].set([10, 10, 0, 10]); // age: mass at 0, 1 and 3
    counts[1][0] = 5; // bmi: all mass in two places
    counts[1][300] = 5;
    const { domain, groups } = coarsenDomain(d, counts, 3);
    expect(domain.columns[0].kind === 'numeric' && domain.columns[0].edges).toEqual([-0.5, 0.5, 1.5, 3.5]);
    expect(Array.from(groups[0])).toEqual([0, 1, 2, 2]);
    const bmi = domain.columns[1];
    expect(bmi.kind === 'numeric' && bmi.edges.length).toBe(3); // two coarse bins: [10, …) up to the 2nd atom, and the rest
    expect(Array.from(groups[2])).toEqual([0, 1]); // categorical unchanged
    const eq = coarsenDomain(d, undefined, 2, 'equal-width');
    expect(eq.domain.columns[0].kind === 'numeric' && eq.domain.columns[0].edges).toEqual([-0.5, 1.5, 3.5]);
  });
});

describe('counts', () => {
  it('counts a small table by hand (row-major cells, last column fastest)', () => {
    // bins 4: age keeps its 4 values; bmi gets [10, 20), [20, 30), [30, 40), [40, 50].
    const d = domainFromSchema(tiny, { bins: 4 });
    const t: Table = { schema: tiny, rows: [[0, 10, 'neg'], [0, 49, 'pos'], [3, 30.1, 'pos'], [3, 11, 'pos']] };
    const [age, ageY, bmiY] = localCounts(d, t, [[0], [0, 2], [1, 2]]);
    expect(Array.from(age)).toEqual([2, 0, 0, 2]);
    expect(Array.from(ageY)).toEqual([1, 1, 0, 0, 0, 0, 0, 2]);
    expect(Array.from(bmiY)).toEqual([1, 1, 0, 0, 0, 1, 0, 1]);
    expect(marginalSize(d, [0, 1, 2])).toBe(32);
    expect(() => localCounts(d, t, [[2, 0]])).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  it('the sum of the sites\' counts is the count of the pooled table (WDBC over 3 Dirichlet sites, every 1- and 2-way marginal)', async () => {
    const full = await loadDatasetTable('breast_cancer_wdbc');
    const enc = encodeTable(full);
    const parts = dirichletSplit(Array.from(enc.cond), 3, 0.5, 7);
    const sites: Table[] = parts.map((p) => ({ schema: full.schema, rows: p.map((i) => full.rows[i]) }));
    const d = domainFromSchema(full.schema, { bins: 64 });
    const marginals = [...full.schema.columns.map((_, k) => [k]), ...allPairs(full.schema.columns.length)];
    const summed = sumCounts(sites.map((s) => localCounts(d, s, marginals)));
    const pooled = localCounts(d, full, marginals);
    expect(summed.length).toBe(pooled.length);
    summed.forEach((s, k) => expect(Array.from(s)).toEqual(Array.from(pooled[k])));
    expect(pooled.every((c) => c.reduce((a, b) => a + b, 0) === full.rows.length)).toBe(true);
    expect(() => sumCounts([localCounts(d, sites[0], [[0]]), localCounts(d, sites[1], [[30]])])).toThrow(expect.objectContaining({ code: 'MARGINALS_SHAPE_MISMATCH' }));
    expect(() => sumCounts([localCounts(d, sites[0], [[0]]), localCounts(d, sites[1], [[0], [1]])])).toThrow(expect.objectContaining({ code: 'MARGINALS_SHAPE_MISMATCH' }));
  });

  it('noise: σ once on the sum, or σ²/m shares from m members that add up to σ²', () => {
    const cells = 40_000;
    const zeros = [new Float64Array(cells)];
    const sigma = 3;
    const central = addNoise(zeros, sigma, seededNoise(createRng(1)))[0];
    const shares = [2, 3, 4, 5].map((s) => noiseShare(zeros, sigma, 4, seededNoise(createRng(s)))[0]);
    const summed = sumCounts(shares.map((x) => [x]))[0];
    // Sample variance of 40k N(0, 9) draws: sd of the estimate is 9·√(2/40000) ≈ 0.064; 6 sd ≈ 0.38.
    for (const x of [central, summed]) {
      const v = x.reduce((s, z) => s + z * z, 0) / cells;
      expect(Math.abs(v - sigma ** 2)).toBeLessThan(0.4);
    }
    // One share alone carries σ²/4.
    const v1 = shares[0].reduce((s, z) => s + z * z, 0) / cells;
    expect(Math.abs(v1 - sigma ** 2 / 4)).toBeLessThan(0.1);
    expect(Array.from(addNoise([Float64Array.of(5, 6)], 0, seededNoise(createRng(1)))[0])).toEqual([5, 6]);
    expect(() => addNoise(zeros, -1, seededNoise(createRng(1)))).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});
