import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ColumnSpec, Table, TableSchema } from '../src/types.ts';
import { decodeRows, encodeTable, encodedLayout } from '../src/encode.ts';
import { tableToCsv, validateSchema } from '../src/schema.ts';
import { createPrng } from '../src/random.ts';

const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'age', kind: 'numeric', min: 20, max: 80, integer: true, decimals: 0 },
    { name: 'y', kind: 'categorical', categories: ['neg', 'pos'] },
    { name: 'sex', kind: 'categorical', categories: ['F', 'M', 'X'] },
    { name: 'bmi', kind: 'numeric', min: 10, max: 50, integer: false, decimals: 1 },
  ],
};

describe('encodedLayout / encodeTable', () => {
  it('lays out features (target excluded) and encodes known rows', () => {
    const layout = encodedLayout(schema);
    expect(layout.segments).toEqual([
      { column: 'age', kind: 'numeric', offset: 0, width: 1 },
      { column: 'sex', kind: 'categorical', offset: 1, width: 3 },
      { column: 'bmi', kind: 'numeric', offset: 4, width: 1 },
    ]);
    expect(layout.width).toBe(5);
    expect(layout.classes).toEqual(['neg', 'pos']);
    const e = encodeTable({ schema, rows: [[20, 'pos', 'M', 50], [50, 'neg', 'X', 20]] });
    expect(e.rows).toBe(2);
    expect(e.width).toBe(5);
    expect(Array.from(e.cond)).toEqual([1, 0]);
    expect(Array.from(e.x)).toEqual([0, 0, 1, 0, 1, 0.5, 0, 0, 1, 0.25]);
  });

  it('rejects values that are not in the schema', () => {
    expect(() => encodeTable({ schema, rows: [[20, 'maybe', 'M', 30]] })).toThrow(/not a declared class/);
    expect(() => encodeTable({ schema, rows: [[20, 'pos', 'Q', 30]] })).toThrow(/not a declared category/);
    expect(() => encodeTable({ schema, rows: [['20', 'pos', 'M', 30]] })).toThrow(/not a finite number/);
  });
});

describe('decodeRows', () => {
  it('unscales, clamps and rounds numerics; argmax for categories; target from cond', () => {
    const x = [0.51, 0.1, 0.7, 0.2, 0.333, 1.7, 0, 0, 0.9, -3];
    const rows = decodeRows(schema, x, [1, 0]);
    expect(rows).toEqual([
      [51, 'pos', 'M', 23.3],
      [80, 'neg', 'X', 10],
    ]);
  });

  it('samples categories in proportion to the outputs with a seeded rng', () => {
    const n = 4000;
    const x = new Float32Array(n * 5);
    for (let i = 0; i < n; i++) x.set([0.5, 0.2, 0.0, 0.6, 0.5], i * 5);
    const cond = new Int32Array(n);
    const a = decodeRows(schema, x, cond, { rng: createPrng(7) });
    const b = decodeRows(schema, x, cond, { rng: createPrng(7) });
    expect(a).toEqual(b);
    const counts = { F: 0, M: 0, X: 0 } as Record<string, number>;
    for (const r of a) counts[r[2] as string]++;
    expect(counts.M).toBe(0); // weight 0 is never drawn
    expect(counts.F / n).toBeGreaterThan(0.2); // expected 0.25
    expect(counts.F / n).toBeLessThan(0.3);
    // argmax never picks the minority
    expect(decodeRows(schema, x.subarray(0, 5), [0])[0][2]).toBe('X');
    // a plain function or an object with uniform() works too
    expect(decodeRows(schema, x.subarray(0, 5), [0], { rng: () => 0.1 })[0][2]).toBe('F');
    expect(decodeRows(schema, x.subarray(0, 5), [0], { rng: { uniform: () => 0.9 } })[0][2]).toBe('X');
  });

  it('rejects wrong sizes, bad class indices and non-finite model output', () => {
    expect(() => decodeRows(schema, [0, 0, 0], [0])).toThrow(/expected rows/);
    expect(() => decodeRows(schema, [0, 1, 0, 0, 0], [2])).toThrow(/not a class index/);
    expect(() => decodeRows(schema, [Number.NaN, 1, 0, 0, 0], [0])).toThrow(/non-finite|NaN/);
    expect(() => decodeRows(schema, [0, 1, 0, 0, 0], [0], { categorical: 'sample' })).toThrow(/needs an rng/);
  });

  it('keeps decoded values inside bounds that carry more decimals than the column', () => {
    const s: TableSchema = { target: 'y', columns: [{ name: 'v', kind: 'numeric', min: 0.004, max: 1.006, integer: false, decimals: 2 }, { name: 'y', kind: 'categorical', categories: ['a', 'b'] }] };
    expect(decodeRows(s, [0, 1], [0, 1]).map((r) => r[0])).toEqual([0.01, 1]);
  });
});

// Random schemas whose numeric ranges keep float32 scaling exact at their decimals.
const columnArb: fc.Arbitrary<ColumnSpec> = fc.oneof(
  fc.record({ lo: fc.integer({ min: -10_000, max: 10_000 }), span: fc.integer({ min: 1, max: 10_000 }), decimals: fc.integer({ min: 0, max: 3 }) }).map(({ lo, span, decimals }) => ({
    name: '',
    kind: 'numeric' as const,
    min: lo / 10 ** decimals,
    max: (lo + span) / 10 ** decimals,
    integer: decimals === 0,
    decimals,
  })),
  fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 5 }).map((categories) => ({ name: '', kind: 'categorical' as const, categories })),
);

const tableArb: fc.Arbitrary<Table> = fc
  .record({
    cols: fc.array(columnArb, { minLength: 1, maxLength: 6 }),
    classes: fc.uniqueArray(fc.constantFrom('0', '1', '2', 'a', 'b'), { minLength: 2, maxLength: 4 }),
    targetAt: fc.nat(),
    n: fc.integer({ min: 1, max: 8 }),
    seed: fc.nat(),
  })
  .map(({ cols, classes, targetAt, n, seed }) => {
    const columns: ColumnSpec[] = cols.map((c, i) => ({ ...c, name: `c${i}` }));
    columns.splice(targetAt % (columns.length + 1), 0, { name: 'target', kind: 'categorical', categories: classes });
    const s: TableSchema = { columns, target: 'target' };
    const rng = createPrng(seed);
    const rows = Array.from({ length: n }, () =>
      columns.map((c) => {
        if (c.kind === 'categorical') return c.categories[rng.int(c.categories.length)];
        const steps = Math.round((c.max - c.min) * 10 ** c.decimals);
        return Number((c.min + rng.int(steps + 1) / 10 ** c.decimals).toFixed(c.decimals));
      }),
    );
    return { schema: s, rows };
  });

describe('round trip', () => {
  it('decodeRows(encodeTable(t)) reproduces t, and writes the same CSV', () => {
    fc.assert(
      fc.property(tableArb, (t) => {
        validateSchema(t.schema);
        const e = encodeTable(t);
        const rows = decodeRows(t.schema, e.x, e.cond);
        expect(rows).toEqual(t.rows);
        expect(tableToCsv({ schema: t.schema, rows })).toBe(tableToCsv(t));
      }),
      { numRuns: 300 },
    );
  });
});
