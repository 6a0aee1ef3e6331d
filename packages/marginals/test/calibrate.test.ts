import { describe, expect, it } from 'vitest';
import type { Table, TableSchema } from '@fedtwin/models';
import { calibrateColumns, domainFromSchema } from '../src/index.ts';

// Hand-checked cases: the r-th smallest of m present cells takes the release's quantile (r + ½)/m.
const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'y', kind: 'categorical', categories: ['no', 'yes'] },
    { name: 'count', kind: 'numeric', min: 0, max: 3, integer: true, decimals: 0, allowMissing: true }, // 4 per-value bins + missing
    { name: 'share', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 2 }, // 101 grid values > 4 bins: equal width
  ],
};
const domain = domainFromSchema(schema, { bins: 4 });

describe('calibrateColumns', () => {
  it('maps a per-value column by rank onto the release: equal masses give one row per value, in the rows\' order', () => {
    const table: Table = { schema, rows: [['no', 3, 0.1], ['yes', 0, 0.2], ['no', 2, 0.3], ['yes', 1, 0.4]] };
    // The synthetic values were 3, 0, 2, 1 → ranks 3, 0, 2, 1; quantiles .875, .125, .625, .375 of uniform mass on 0..3.
    const out = calibrateColumns(table, domain, [undefined, [5, 5, 5, 5, 0], undefined]);
    expect(out.rows.map((r) => r[1])).toEqual([3, 0, 2, 1]);
    // A release with 3/4 of its mass on value 2: masses [1, 0, 6, 1] (total 8), cumulative 0, 1, 1, 7, 8; ranks 0..3
    // ask for r = u·8 = 1, 3, 5, 7, which fall in bins 2 (cumulative 1 is not past 1), 2, 2 and 3.
    const skew = calibrateColumns(table, domain, [undefined, [1, 0, 6, 1, 0], undefined]);
    expect(skew.rows.map((r) => r[1])).toEqual([3, 2, 2, 2]);
    // Everything else is the table's.
    expect(skew.rows.map((r) => [r[0], r[2]])).toEqual(table.rows.map((r) => [r[0], r[2]]));
  });

  it('takes quantiles inside an equal-width bin, rounded to the column\'s decimals', () => {
    const table: Table = { schema, rows: [['no', 0, 0.9], ['yes', 1, 0.05]] };
    // All mass in the last bin [.75, 1]: quantiles .25 and .75 of it are .8125 → .81 and .9375 → .94.
    const out = calibrateColumns(table, domain, [undefined, undefined, [0, 0, 0, 2]]);
    expect(out.rows.map((r) => r[2])).toEqual([0.94, 0.81]);
    // Equal mass in the first and last bins: r = u·2 is .5 for rank 0 (half-way into bin 0: .125 → .13) and 1.5 for
    // rank 1 (half-way into bin 3: .875 → .88); the first row has rank 1.
    const two = calibrateColumns(table, domain, [undefined, undefined, [1, 0, 0, 1]]);
    expect(two.rows.map((r) => r[2])).toEqual([0.88, 0.13]);
  });

  it('leaves missing cells out of the ranks and keeps them missing; ignores the release\'s missing bin', () => {
    const table: Table = { schema, rows: [['no', null, 0.5], ['yes', 2, 0.5], ['no', 0, 0.5], ['yes', null, 0.5]] };
    const out = calibrateColumns(table, domain, [undefined, [0, 0, 0, 10, 99], undefined]);
    expect(out.rows.map((r) => r[1])).toEqual([null, 3, 3, null]);
  });

  it('leaves a column whose released value mass is not positive as it was (negative noisy counts count as 0)', () => {
    const table: Table = { schema, rows: [['no', 1, 0.5], ['yes', 2, 0.5]] };
    expect(calibrateColumns(table, domain, [undefined, [-3, 0, -1, 0, 7], undefined]).rows).toEqual(table.rows);
  });

  it('refuses a release of the wrong size, a non-finite count, or a table of another schema', () => {
    const table: Table = { schema, rows: [['no', 1, 0.5]] };
    expect(() => calibrateColumns(table, domain, [undefined, [1, 1, 1], undefined])).toThrow(/release has 3 bins, the domain 5/);
    expect(() => calibrateColumns(table, domain, [undefined, [1, Number.NaN, 1, 1, 0], undefined])).toThrow(/NaN/);
    expect(() => calibrateColumns(table, domain, [undefined, undefined])).toThrow(/2 1-way releases for 3 columns/);
    const other: TableSchema = { ...schema, columns: [schema.columns[0], schema.columns[2], schema.columns[1]] };
    expect(() => calibrateColumns({ schema: other, rows: [] }, domain, [undefined, undefined, undefined])).toThrow(expect.objectContaining({ code: 'MARGINALS_SCHEMA_MISMATCH' }));
  });
});
