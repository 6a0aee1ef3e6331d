import { describe, expect, it } from 'vitest';
import type { Table, TableSchema } from '@fedtwin/models';
import { accountMechanisms, applyCalibration, calibrateColumns, columnRelease, columnReleaseCounts, columnReleaseLength, domainFromSchema, fitCalibration, releasedColumns } from '../src/index.ts';

const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'y', kind: 'categorical', categories: ['no', 'yes'] },
    { name: 'count', kind: 'numeric', min: 0, max: 3, integer: true, decimals: 0, allowMissing: true }, // 4 per-value bins + missing
    { name: 'ward', kind: 'categorical', categories: ['a', 'b', 'c'] }, // not released: the VAE models it, no calibration
    { name: 'share', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 2 },
  ],
};
const table: Table = { schema, rows: [['no', 0, 'a', 0.1], ['no', 1, 'b', 0.2], ['yes', 3, 'a', 0.9], ['yes', null, 'c', 0.95], ['yes', 3, 'b', 0.5]] };

describe('columnRelease (the VAE consortium\'s 1-way count round)', () => {
  it('releases the numeric columns and the target, each as its hierarchy\'s levels', () => {
    const r = columnRelease(schema, { epsilon: Infinity, delta: 1e-5, fineBins: 16 });
    expect(r.columns).toEqual([0, 1, 3]);
    // y: 2 leaves, one level of 2 + the root? hierarchyOf(2, 2) has one level (span 1); count: 5 bins ≤ 8, one level;
    // share: 16 fine bins at branching 8 → levels of 2 and 16.
    expect(r.hierarchies.map((h) => h.sizes)).toEqual([[2], [5], [2, 16]]);
    expect(r.levels).toBe(4);
    expect(r.values).toBe(2 + 5 + 18);
    expect(columnReleaseLength(schema, 16)).toBe(r.values);
    expect(r.mechanism).toBeUndefined();
    expect(r.mu).toBe(0);
  });

  it('with exact sums (DP off) gives back every released column\'s counts and the class mix', () => {
    const r = columnRelease(schema, { epsilon: Infinity, delta: 1e-5, fineBins: 16 });
    const counts = columnReleaseCounts(r, table);
    expect(Array.from(counts.subarray(0, 2))).toEqual([2, 3]); // y
    expect(Array.from(counts.subarray(2, 7))).toEqual([1, 1, 0, 2, 1]); // count: 0, 1, 2, 3, missing
    const out = releasedColumns(r, counts);
    expect(out.classMix).toEqual([0.4, 0.6]);
    expect(out.total).toBeCloseTo(5, 9);
    expect(Array.from(out.oneWays[1]!)).toEqual([1, 1, 0, 2, 1]);
    expect(out.oneWays[2]).toBeUndefined();
    expect(Array.from(out.oneWays[3]!).reduce((a, b) => a + b, 0)).toBeCloseTo(5, 9);
  });

  it('under DP charges levels Skellam steps that spend the share of ε asked for, never more than ε', () => {
    const r = columnRelease(schema, { epsilon: 8, delta: 1e-5, fineBins: 16 });
    expect(r.mechanism?.steps).toBe(4);
    expect(r.mechanism?.skellam).toEqual({ mu: r.mu, l1: 1, l2: 1 });
    const alone = accountMechanisms([r.mechanism!], 1e-5).epsilon;
    expect(alone).toBeLessThan(8);
    expect(alone).toBeGreaterThan(2); // 30 % of ρ is well over a tenth of ε at this δ
    const smaller = columnRelease(schema, { epsilon: 8, delta: 1e-5, fineBins: 16, share: 0.1 });
    expect(smaller.mu).toBeGreaterThan(r.mu);
    expect(() => columnRelease(schema, { epsilon: 8, delta: 1e-5, share: 1 })).toThrow(/share/);
    expect(() => releasedColumns(r, new Float64Array(3))).toThrow(/3 values/);
  });
});

describe('fitCalibration / applyCalibration', () => {
  const domain = domainFromSchema(schema, { bins: 4 });
  const half = () => 0.5;

  it('maps a value by its rank in the reference onto the release (hand-checked)', () => {
    const reference: Table = { schema, rows: [0, 1, 2, 3].map((v) => ['no', v, 'a', 0.5]) };
    // 4 knots at quantiles 1/8, 3/8, 5/8, 7/8 are the values 0, 1, 2, 3 themselves.
    const uniformMap = fitCalibration(reference, domain, [undefined, [5, 5, 5, 5, 0], undefined, undefined], 4, 4);
    expect(uniformMap.columns).toEqual([{ column: 1, knots: [0, 1, 2, 3], release: [5, 5, 5, 5] }]);
    const sample: Table = { schema, rows: [['yes', 2, 'b', 0.3], ['no', null, 'c', 0.4]] };
    expect(applyCalibration(sample, domain, uniformMap, half).rows).toEqual(sample.rows); // identity; missing stays
    // Release [1, 0, 6, 1] (cumulative 0, 1, 1, 7, 8): value 0 sits on knot 0, its quantile range [0, 1/4) → with
    // uniform ½: u = 1/8, r = u·8 = 1, which is not past bin 0's upper mass 1 → bin 2 (value 2).
    const skew = fitCalibration(reference, domain, [undefined, [1, 0, 6, 1, 0], undefined, undefined], 4, 4);
    expect(applyCalibration({ schema, rows: [['no', 0, 'a', 0.1]] }, domain, skew, half).rows[0]![1]).toBe(2);
  });

  it('keeps a class-conditioned sample\'s shift, where rank-matching the sample itself would erase it', () => {
    // Reference at the pooled mix: class "no" around 0–1, class "yes" around 2–3.
    const reference: Table = { schema, rows: [['no', 0, 'a', 0.5], ['no', 1, 'a', 0.5], ['yes', 2, 'a', 0.5], ['yes', 3, 'a', 0.5]] };
    const release = [undefined, [1, 1, 1, 1, 0], undefined, undefined];
    const map = fitCalibration(reference, domain, release, 4, 4);
    const yesOnly: Table = { schema, rows: [['yes', 2, 'a', 0.5], ['yes', 3, 'a', 0.5]] };
    expect(applyCalibration(yesOnly, domain, map, half).rows.map((r) => r[1])).toEqual([2, 3]);
    expect(calibrateColumns(yesOnly, domain, release).rows.map((r) => r[1])).toEqual([1, 3]); // pulled onto the pooled 1-way
  });

  it('interpolates between knots and spreads a repeated value over the release\'s mass there', () => {
    const reference: Table = { schema, rows: [0, 0, 0, 0].map((v) => ['no', v, 'a', 0.5]) };
    const map = fitCalibration(reference, domain, [undefined, [1, 1, 1, 1, 0], undefined, undefined], 4, 4);
    // Every reference value is 0, so a 0 takes a uniform quantile in [0, 1): the four quarters give 0, 1, 2, 3.
    const draws = [0.1, 0.3, 0.6, 0.9];
    let i = 0;
    const out = applyCalibration({ schema, rows: draws.map(() => ['no', 0, 'a', 0.5]) }, domain, map, () => draws[i++]!);
    expect(out.rows.map((r) => r[1])).toEqual([0, 1, 2, 3]);
    // Between knots 0.2 and 0.4 of "share" (quantiles 1/8, 3/8 of 4 knots) 0.3 sits at u = 1/4: the release's
    // quantile 1/4 over 4 equal bins of [0, 1] is the edge 0.25.
    const ref2: Table = { schema, rows: [0.2, 0.4, 0.6, 0.8].map((v) => ['no', 1, 'a', v]) };
    const m2 = fitCalibration(ref2, domain, [undefined, undefined, undefined, [1, 1, 1, 1]], 4, 4);
    expect(applyCalibration({ schema, rows: [['no', 1, 'a', 0.3]] }, domain, m2, half).rows[0]![3]).toBe(0.25);
  });

  it('refuses a map that does not fit the schema', () => {
    const map = { fineBins: 4, columns: [{ column: 0, knots: [0, 1], release: [1, 1] }] };
    expect(() => applyCalibration(table, domain, map, half)).toThrow(/not a numeric column/);
    const unsorted = { fineBins: 4, columns: [{ column: 1, knots: [2, 1], release: [1, 1, 1, 1] }] };
    expect(() => applyCalibration(table, domain, unsorted, half)).toThrow(/not sorted/);
  });
});
