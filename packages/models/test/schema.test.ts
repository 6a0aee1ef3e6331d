import { describe, expect, it } from 'vitest';
import { FedtwinError } from '@fedtwin/errors';
import { errorOf } from './error-of.ts';
import type { TableSchema } from '../src/types.ts';
import { decimalsOf, inferSchema, parseNumber, significantDecimals, sortCategories, tableFromCsv, tableToCsv, validateSchema } from '../src/schema.ts';
import { parseCsv } from '../src/csv.ts';

const header = ['age', 'bmi', 'smoker', 'site', 'label'];
const rows = [
  ['34', '22.15', 'no', '10', '0'],
  ['71', '31.4', 'yes', '2', '1'],
  ['58', '27', 'no', '2', '1'],
  ['45', '19.875', 'former', '10', '0'],
];

describe('number helpers', () => {
  it('parses strict decimals only', () => {
    expect(parseNumber(' 12.5 ')).toBe(12.5);
    expect(parseNumber('-.5')).toBe(-0.5);
    expect(parseNumber('1e3')).toBe(1000);
    for (const bad of ['', '0x10', 'Infinity', 'NaN', '1,5', '1.2.3', 'abc', '1e999']) expect(parseNumber(bad)).toBeUndefined();
  });

  it('counts decimals as written and as needed', () => {
    expect(decimalsOf('1.50')).toBe(2);
    expect(decimalsOf('12')).toBe(0);
    expect(decimalsOf('1.5e-3')).toBe(4);
    expect(decimalsOf('2.5e3')).toBe(0);
    expect(significantDecimals('5.3660000000000005')).toBe(3);
    expect(significantDecimals('0.000000000001')).toBe(12);
    expect(significantDecimals('0.07871')).toBe(5);
  });

  it('sorts numeric-looking categories by value, others by code point', () => {
    expect(sortCategories(['10', '2', '1', '2'])).toEqual(['1', '2', '10']);
    expect(sortCategories(['pos', 'neg', 'B'])).toEqual(['B', 'neg', 'pos']);
  });
});

describe('inferSchema', () => {
  it('declares rounded-outward bounds, integer, decimals, sorted categories, categorical target', () => {
    const s = inferSchema(header, rows, { target: 'label', categorical: ['site'] });
    expect(s).toEqual({
      target: 'label',
      columns: [
        { name: 'age', kind: 'numeric', min: 34, max: 71, integer: true, decimals: 0 },
        // range 12.25 → step 1: [19.875, 31.4] → [19, 32]
        { name: 'bmi', kind: 'numeric', min: 19, max: 32, integer: false, decimals: 3 },
        { name: 'smoker', kind: 'categorical', categories: ['former', 'no', 'yes'] },
        { name: 'site', kind: 'categorical', categories: ['2', '10'] },
        { name: 'label', kind: 'categorical', categories: ['0', '1'] },
      ],
    });
    // Larger ranges round to 2 significant digits of the range; integers never get fractional bounds.
    const wide = inferSchema(['g', 'y'], [['44', 'a'], ['199', 'b']], { target: 'y' });
    expect(wide.columns[0]).toMatchObject({ min: 40, max: 200 });
    const exact = inferSchema(['g', 'y'], [['44', 'a'], ['199', 'b']], { target: 'y', roundBounds: false });
    expect(exact.columns[0]).toMatchObject({ min: 44, max: 199 });
  });

  it('widens a constant numeric column so that min < max', () => {
    const s = inferSchema(['c', 'd', 'y'], [['5', '0.25', 'a'], ['5', '0.25', 'b']], { target: 'y' });
    expect(s.columns[0]).toMatchObject({ min: 5, max: 6 });
    expect(s.columns[1]).toMatchObject({ min: 0.25, max: 0.26 });
    expect(() => validateSchema(s)).not.toThrow();
  });

  it('refuses high-cardinality text columns and unusable targets', () => {
    const many = Array.from({ length: 60 }, (_, i) => [`id${i}`, String(i), i % 2 ? 'a' : 'b']);
    const e = errorOf(() => inferSchema(['id', 'v', 'y'], many, { target: 'y' }));
    expect(e.code).toBe('DATA_TOO_MANY_CATEGORIES');
    expect(e.message).toContain('"id"');
    expect(errorOf(() => inferSchema(['v', 'y'], many.map((r) => [r[1], r[2]]), { target: 'v' })).code).toBe('DATA_TARGET_NOT_CATEGORICAL');
    expect(errorOf(() => inferSchema(['v', 'y'], [['1', 'a'], ['2', 'a']], { target: 'y' })).message).toContain('single class');
    expect(errorOf(() => inferSchema(['v', 'y'], [['1', 'a']], { target: 'nope' })).code).toBe('DATA_MISSING_COLUMN');
  });

  it('ignores empty fields but fails on an all-empty column', () => {
    const s = inferSchema(['v', 'y'], [['', 'a'], ['3', 'b']], { target: 'y' });
    expect(s.columns[0]).toMatchObject({ kind: 'numeric', min: 3, max: 4 });
    expect(errorOf(() => inferSchema(['v', 'y'], [['', 'a'], [' ', 'b']], { target: 'y' })).code).toBe('DATA_MISSING_VALUE');
  });
});

describe('validateSchema', () => {
  const good: TableSchema = inferSchema(header, rows, { target: 'label' });

  it('accepts a well-formed schema (and a JSON round trip of it)', () => {
    expect(validateSchema(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });

  it('names the offending field', () => {
    const cases: Array<[unknown, string]> = [
      [{ ...good, columns: good.columns.map((c, i) => (i === 1 ? { ...c, max: -1 } : c)) }, 'columns[1].max'],
      [{ ...good, columns: good.columns.map((c, i) => (i === 0 ? { ...c, decimals: 2 } : c)) }, 'columns[0].decimals'],
      [{ ...good, columns: good.columns.map((c, i) => (i === 0 ? { ...c, min: 'x' } : c)) }, 'columns[0].min'],
      [{ ...good, columns: good.columns.map((c, i) => (i === 2 ? { ...c, catgories: [] } : c)) }, 'columns[2]'],
      [{ ...good, target: 'age' }, 'target'],
      [{ ...good, target: 'ghost' }, 'target'],
      [{ ...good, extra: 1 }, '(root)'],
      [{ ...good, columns: [...good.columns, good.columns[0]] }, 'columns[5].name'],
      [{ columns: [] }, 'columns'],
    ];
    for (const [json, field] of cases) {
      const e = errorOf(() => validateSchema(json));
      expect(e.code).toBe('DATA_BAD_SCHEMA');
      expect(e.message).toContain(field);
    }
  });
});

describe('tableFromCsv', () => {
  const schema = inferSchema(header, rows, { target: 'label' });

  it('converts rows to schema order and types, whatever the CSV column order', () => {
    const csv = parseCsv('label,smoker,bmi,age,site\n1,yes,30.5,60,2\n');
    const t = tableFromCsv(csv.header, csv.rows, schema);
    expect(t.rows).toEqual([[60, 30.5, 'yes', 2, '1']]);
    expect(t.report).toEqual({ clamped: {}, clampedTotal: 0, dropped: {}, droppedTotal: 0, droppedRows: [], ignoredColumns: [] });
  });

  it('rejects a missing column by name, and extra columns unless told to ignore them', () => {
    const e = errorOf(() => tableFromCsv(['age', 'bmi', 'smoker', 'label'], [['40', '20', 'no', '1']], schema));
    expect(e.code).toBe('DATA_MISSING_COLUMN');
    expect(e.details).toEqual({ column: 'site' });
    const h = [...header, 'notes'];
    const r = [['40', '20', 'no', '2', '1', 'hello']];
    const x = errorOf(() => tableFromCsv(h, r, schema));
    expect(x.code).toBe('DATA_EXTRA_COLUMN');
    expect(x.hint).toMatch(/Remove the column from the CSV export, or declare it/); // names no option that does not exist (packages/cli/test/hints.test.ts)
    const t = tableFromCsv(h, r, schema, { ignoreExtraColumns: true });
    expect(t.rows).toEqual([[40, 20, 'no', 2, '1']]);
    expect(t.report.ignoredColumns).toEqual(['notes']);
  });

  it('reports bad, missing, unknown and out-of-range values with row, column and value', () => {
    const base = ['40', '20', 'no', '2', '1'];
    const at = (k: number, v: string): string[][] => [base, base.map((x, i) => (i === k ? v : x))];
    const bad = errorOf(() => tableFromCsv(header, at(1, 'twenty'), schema));
    expect(bad.code).toBe('DATA_BAD_VALUE');
    expect(bad.details).toEqual({ row: 2, column: 'bmi', value: 'twenty' });
    expect(errorOf(() => tableFromCsv(header, at(0, '40.5'), schema)).message).toContain('not an integer');
    expect(errorOf(() => tableFromCsv(header, at(2, ''), schema)).code).toBe('DATA_MISSING_VALUE');
    const unk = errorOf(() => tableFromCsv(header, at(2, 'maybe'), schema));
    expect(unk.code).toBe('DATA_UNKNOWN_CATEGORY');
    expect(unk.hint).toContain('former, no, yes');
    expect(errorOf(() => tableFromCsv(header, at(4, '2'), schema)).code).toBe('DATA_UNKNOWN_CATEGORY');
    const oor = errorOf(() => tableFromCsv(header, at(1, '99'), schema));
    expect(oor.code).toBe('DATA_OUT_OF_RANGE');
    expect(oor.details).toMatchObject({ row: 2, column: 'bmi', min: 19, max: 32 });
  });

  it('clamps out-of-range values when asked and counts them per column', () => {
    const t = tableFromCsv(header, [['40', '99', 'no', '2', '1'], ['10', '1', 'no', '2', '1'], ['200', '25', 'no', '2', '0']], schema, { clampOutOfRange: true });
    expect(t.rows.map((r) => [r[0], r[1]])).toEqual([
      [40, 32],
      [34, 19],
      [71, 25],
    ]);
    expect(t.report).toMatchObject({ clamped: { age: 2, bmi: 2 }, clampedTotal: 4 });
  });

  it('drops rows with an undeclared category when asked, counting them per column and naming the dropped rows', () => {
    // Issue 13: one record must not decide whether a site can take part, so a value the schema cannot
    // represent drops its row (a function of that record alone) instead of aborting the load.
    const input = [['40', '20', 'no', '2', '1'], ['41', '21', 'maybe', '2', '1'], ['42', '22', 'yes', '10', '3'], ['43', '23', 'no', '10', '0']];
    const t = tableFromCsv(header, input, schema, { dropUnknownCategories: true });
    expect(t.rows.map((r) => r[0])).toEqual([40, 43]);
    expect(t.report).toMatchObject({ dropped: { smoker: 1, label: 1 }, droppedTotal: 2, droppedRows: [1, 2] });
    // A row counts once, under the first column that drops it; a clamp in a dropped row is not counted.
    const two = tableFromCsv(header, [['40', '99', 'maybe', '2', '3'], ['41', '21', 'no', '2', '1']], schema, { dropUnknownCategories: true, clampOutOfRange: true });
    expect(two.report).toMatchObject({ dropped: { smoker: 1 }, droppedTotal: 1, droppedRows: [0], clamped: {}, clampedTotal: 0 });
    // Nothing dropped: empty counts; every row dropped: DATA_EMPTY, as for a file without rows.
    expect(tableFromCsv(header, rows, schema, { dropUnknownCategories: true }).report).toMatchObject({ dropped: {}, droppedTotal: 0, droppedRows: [] });
    expect(errorOf(() => tableFromCsv(header, [['40', '20', 'maybe', '2', '1']], schema, { dropUnknownCategories: true })).code).toBe('DATA_EMPTY');
    // Without the option an undeclared category is still an error, and bad numbers are not dropped either way.
    expect(errorOf(() => tableFromCsv(header, input, schema)).code).toBe('DATA_UNKNOWN_CATEGORY');
    expect(errorOf(() => tableFromCsv(header, [['40', 'x', 'no', '2', '1']], schema, { dropUnknownCategories: true })).code).toBe('DATA_BAD_VALUE');
  });

  it('writes a table back with the declared number formats', () => {
    const t = tableFromCsv(header, rows, schema);
    expect(tableToCsv(t)).toBe('age,bmi,smoker,site,label\n34,22.15,no,10,0\n71,31.4,yes,2,1\n58,27,no,2,1\n45,19.875,former,10,0\n');
  });
});
