// Missing values end to end on the data side: tokens, zero-is-missing, infer, encode/decode, metrics.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FedtwinError } from '@fedtwin/errors';
import { errorOf } from './error-of.ts';
import type { TableSchema } from '../src/types.ts';
import { inferSchema, tableFromCsv, tableToCsv, validateSchema } from '../src/schema.ts';
import { parseCsv } from '../src/csv.ts';
import { DEFAULT_MISSING_TOKENS, hasMissing, isMissingField, missingTokensOf } from '../src/missing.ts';
import { decodeRows, encodeTable, encodedLayout } from '../src/encode.ts';
import { columnScores, correlationDistance, fidelityReport, missingnessReport } from '../src/evaluate.ts';
import { defaultDataDir, loadDatasetTable } from '../src/datasets.ts';

const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'age', kind: 'numeric', min: 0, max: 120, integer: true, decimals: 0, allowMissing: true },
    { name: 'insulin', kind: 'numeric', min: 0, max: 900, integer: true, decimals: 0, zeroIsMissing: true },
    { name: 'smoker', kind: 'categorical', categories: ['no', 'yes'], allowMissing: true, missingTokens: ['', 'unknown'] },
    { name: 'bmi', kind: 'numeric', min: 10, max: 60, integer: false, decimals: 1 },
    { name: 'y', kind: 'categorical', categories: ['0', '1'] },
  ],
};
const header = schema.columns.map((c) => c.name);

describe('missing tokens', () => {
  it('default to empty, NA, N/A, ? and NaN, compared after trimming; a column may have its own', () => {
    expect([...DEFAULT_MISSING_TOKENS]).toEqual(['', 'NA', 'N/A', '?', 'NaN']);
    for (const t of ['', '  ', 'NA', ' N/A ', '?', 'NaN']) expect(isMissingField(t, DEFAULT_MISSING_TOKENS)).toBe(true);
    for (const t of ['na', 'NULL', '0', '-']) expect(isMissingField(t, DEFAULT_MISSING_TOKENS)).toBe(false);
    expect(missingTokensOf(schema, schema.columns[0])).toEqual(DEFAULT_MISSING_TOKENS);
    expect(missingTokensOf(schema, schema.columns[2])).toEqual(['', 'unknown']);
    expect(missingTokensOf({ ...schema, missingTokens: ['-'] }, schema.columns[0])).toEqual(['-']);
    expect(hasMissing(schema.columns[1])).toBe(true);
    expect(hasMissing(schema.columns[3])).toBe(false);
  });

  it('read into null cells; zero means missing where declared; written back empty (0 in a zero-is-missing column)', () => {
    const rows = [
      ['NA', '0', 'unknown', '22.5', '0'],
      ['?', '120', 'yes', '30', '1'],
      ['', ' 0 ', '', '41.2', '1'],
      ['40', '15', 'no', '19', '0'],
    ];
    const t = tableFromCsv(header, rows, schema);
    expect(t.rows.map((r) => r.slice(0, 3))).toEqual([[null, null, null], [null, 120, 'yes'], [null, null, null], [40, 15, 'no']]);
    expect(tableToCsv(t)).toBe('age,insulin,smoker,bmi,y\n,0,,22.5,0\n,120,yes,30,1\n,0,,41.2,1\n40,15,no,19,0\n');
    // And what is written reads back the same.
    const back = parseCsv(tableToCsv(t));
    expect(tableFromCsv(back.header, back.rows, schema).rows).toEqual(t.rows);
    // A column's own tokens replace the defaults: "NA" is not missing in smoker.
    expect(errorOf(() => tableFromCsv(header, [['1', '1', 'NA', '20', '0']], schema)).code).toBe('DATA_UNKNOWN_CATEGORY');
  });

  it('keeps errors clear for truly bad values and for missing cells a column does not declare', () => {
    const bad = errorOf(() => tableFromCsv(header, [['abc', '1', 'no', '20', '0']], schema));
    expect(bad.code).toBe('DATA_BAD_VALUE');
    expect(bad.hint).toMatch(/missing token/);
    const empty = errorOf(() => tableFromCsv(header, [['1', '1', 'no', '', '0']], schema));
    expect(empty.code).toBe('DATA_MISSING_VALUE');
    expect(empty.hint).toMatch(/allowMissing/);
    // "N/A" in a numeric column that does not allow missing: not a number, with a hint that names the fix.
    const na = errorOf(() => tableFromCsv(header, [['1', '1', 'no', 'N/A', '0']], schema));
    expect(na.code).toBe('DATA_BAD_VALUE');
    expect(na.hint).toMatch(/looks like a missing value.*allowMissing/);
    expect(errorOf(() => tableFromCsv(header, [['1', '1', 'no', '20', '']], schema)).code).toBe('DATA_MISSING_VALUE');
    expect(errorOf(() => tableFromCsv(header, [['200', '1', 'no', '20', '0']], schema)).code).toBe('DATA_OUT_OF_RANGE');
  });
});

describe('schema validation of missing declarations', () => {
  it('accepts them, keeps old schemas, and refuses ambiguous or misplaced ones', () => {
    expect(validateSchema(schema)).toEqual(schema);
    const old = { target: 'y', columns: [{ name: 'a', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 2 }, { name: 'y', kind: 'categorical', categories: ['0', '1'] }] };
    expect(validateSchema(old)).toEqual(old);
    const msg = (s: unknown) => errorOf(() => validateSchema(s)).message;
    expect(msg({ ...schema, columns: schema.columns.map((c) => (c.name === 'y' ? { ...c, allowMissing: true } : c)) })).toMatch(/target cannot have missing/);
    expect(msg({ ...schema, columns: schema.columns.map((c) => (c.name === 'smoker' ? { ...c, categories: ['no', 'unknown'] } : c)) })).toMatch(/also a missing token/);
    expect(msg({ ...schema, columns: schema.columns.map((c) => (c.name === 'bmi' ? { ...c, missingTokens: ['-'] } : c)) })).toMatch(/needs allowMissing/);
    expect(msg({ ...schema, columns: schema.columns.map((c) => (c.name === 'smoker' ? { ...c, zeroIsMissing: true } : c)) })).toMatch(/zeroIsMissing/);
  });
});

describe('inferSchema detects missing values', () => {
  it('declares allowMissing where tokens occur, does not count them as categories or non-numbers, and lists the tokens', () => {
    const h = ['glucose', 'insulin', 'smoker', 'pedigree', 'y'];
    const rows = [
      ['148', '0', 'yes', '0.627', 'pos'],
      ['N/A', '94', 'NA', '0.351', 'neg'],
      ['183', '0', '?', '0.672', 'pos'],
      ['', '168', 'no', '0.167', 'neg'],
    ];
    const s = inferSchema(h, rows, { target: 'y', maxCategories: 2, zeroIsMissing: ['insulin'] });
    expect(s.columns[0]).toEqual({ name: 'glucose', kind: 'numeric', min: 148, max: 183, integer: true, decimals: 0, allowMissing: true });
    // Zeros kept out of the bounds (94…168, not 0…168).
    expect(s.columns[1]).toEqual({ name: 'insulin', kind: 'numeric', min: 94, max: 168, integer: true, decimals: 0, zeroIsMissing: true });
    // Two real categories: NA and ? are not a third and fourth (maxCategories 2 would refuse them).
    expect(s.columns[2]).toEqual({ name: 'smoker', kind: 'categorical', categories: ['no', 'yes'], allowMissing: true });
    expect(s.columns[3]).toEqual({ name: 'pedigree', kind: 'numeric', min: 0.16, max: 0.68, integer: false, decimals: 3 });
    expect(s.missingTokens).toEqual(['', 'NA', 'N/A', '?', 'NaN']);
    expect(validateSchema(s)).toEqual(s);
    const t = tableFromCsv(h, rows, s);
    expect(t.rows.map((r) => r[0])).toEqual([148, null, 183, null]);
    // Complete data keeps the schema it always had (no missing fields at all).
    expect(inferSchema(h, rows.map((r) => ['1', '2', 'no', '0.5', r[4]]), { target: 'y' })).not.toHaveProperty('missingTokens');
    // Configurable tokens: "-" is missing, "?" now a category.
    const custom = inferSchema(['c', 'y'], [['-', 'a'], ['?', 'b'], ['x', 'a']], { target: 'y', missingTokens: ['-'] });
    expect(custom.columns[0]).toEqual({ name: 'c', kind: 'categorical', categories: ['?', 'x'], allowMissing: true });
    expect(custom.missingTokens).toEqual(['-']);
    // A missing class is not modelled: the record needs its label.
    expect(errorOf(() => inferSchema(h, [...rows, ['1', '1', 'no', '0.1', 'NA']], { target: 'y' })).code).toBe('DATA_MISSING_VALUE');
    expect(errorOf(() => inferSchema(h, rows, { target: 'y', zeroIsMissing: ['smoker'] })).code).toBe('DATA_BAD_ARGUMENT');
    // An undeclared spelling of missing in a numeric column: the hint names the fix, not only maxCategories.
    const many = Array.from({ length: 60 }, (_, i) => [i === 7 ? 'missing' : String(i), String(i % 2)]);
    const e = errorOf(() => inferSchema(['v', 'y'], many, { target: 'y' }));
    expect(e.code).toBe('DATA_TOO_MANY_CATEGORIES');
    expect(e.hint).toMatch(/If "missing" means missing, declare it a missing token/);
    expect(inferSchema(['v', 'y'], many, { target: 'y', missingTokens: ['', 'missing'] }).columns[0]).toMatchObject({ kind: 'numeric', allowMissing: true });
  });
});

describe('encoding carries missingness as data', () => {
  it('adds a missing slot to categorical columns and a [present, missing] indicator after numeric ones; decode writes null', () => {
    const layout = encodedLayout(schema);
    expect(layout.segments.map((s) => [s.column, s.kind, s.width, s.kind === 'categorical' ? s.missing ?? '-' : '-'])).toEqual([
      ['age', 'numeric', 1, '-'], ['age', 'categorical', 2, 'indicator'],
      ['insulin', 'numeric', 1, '-'], ['insulin', 'categorical', 2, 'indicator'],
      ['smoker', 'categorical', 3, 'slot'],
      ['bmi', 'numeric', 1, '-'],
    ]);
    const t = tableFromCsv(header, [['NA', '0', '', '22.5', '0'], ['40', '15', 'no', '19', '1']], schema);
    const e = encodeTable(t);
    expect(Array.from(e.x.slice(0, e.width))).toEqual([0.5, 0, 1, 0.5, 0, 1, 0, 0, 1, 0.25]);
    expect(decodeRows(schema, e.x, e.cond)).toEqual(t.rows);
  });

  it('round-trips the shipped pima_diabetes_na.csv byte for byte (missing cells empty)', async () => {
    const t = await loadDatasetTable('pima_diabetes_na');
    const e = encodeTable(t);
    const back = { schema: t.schema, rows: decodeRows(t.schema, e.x, e.cond) };
    expect(tableToCsv(back)).toBe(await readFile(join(defaultDataDir(), 'pima_diabetes_na.csv'), 'utf8'));
    const missing = t.rows.reduce((s, r) => s + r.filter((v) => v === null).length, 0);
    expect(missing).toBe(652);
    const lung = await loadDatasetTable('lung_ncctg');
    expect(lung.rows.reduce((s, r) => s + r.filter((v) => v === null).length, 0)).toBe(67);
    expect(lung.schema.columns.filter((c) => c.allowMissing).map((c) => c.name)).toEqual(['inst', 'ph_ecog', 'ph_karno', 'pat_karno', 'meal_cal', 'wt_loss']);
  });
});

describe('fidelity with missing cells', () => {
  const s2: TableSchema = {
    target: 'y',
    columns: [
      { name: 'v', kind: 'numeric', min: 0, max: 10, integer: true, decimals: 0, allowMissing: true },
      { name: 'c', kind: 'categorical', categories: ['a', 'b'], allowMissing: true },
      { name: 'y', kind: 'categorical', categories: ['0', '1'] },
    ],
  };
  it('scores present values per column and the missingness rate apart (hand-checked)', () => {
    const real = { schema: s2, rows: [[1, 'a', '0'], [2, null, '1'], [null, 'b', '0'], [null, 'a', '1']] };
    const synth = { schema: s2, rows: [[1, 'a', '0'], [2, 'b', '1'], [1, 'b', '0'], [null, null, '1']] };
    const cols = columnScores(real, synth);
    // v present: real {1, 2}, synth {1, 2, 1}: KS D = |1/2 − 2/3| = 1/6.
    expect(cols[0].score).toBeCloseTo(5 / 6, 12);
    // c present: real a 2/3 b 1/3; synth a 1/3 b 2/3: TV 1/3.
    expect(cols[1].score).toBeCloseTo(2 / 3, 12);
    const m = missingnessReport(real, synth)!;
    expect(m.columns).toEqual([
      { name: 'v', real: 0.5, synthetic: 0.25, score: 0.75 },
      { name: 'c', real: 0.25, synthetic: 0.25, score: 1 },
    ]);
    expect(m.mean).toBeCloseTo(0.875, 12);
    expect(fidelityReport(real, synth).missingness).toEqual(m);
    expect(Number.isFinite(correlationDistance(real, synth))).toBe(true);
    // A column missing everywhere on one side only scores 0.
    const allMissing = { schema: s2, rows: synth.rows.map((r) => [null, r[1], r[2]]) };
    expect(columnScores(real, allMissing)[0].score).toBe(0);
    // No declared missingness: no missingness figure.
    const plain: TableSchema = { target: 'y', columns: [{ name: 'v', kind: 'numeric', min: 0, max: 10, integer: true, decimals: 0 }, s2.columns[2]] };
    expect(missingnessReport({ schema: plain, rows: [[1, '0']] }, { schema: plain, rows: [[2, '1']] })).toBeUndefined();
  });
});

describe('vae with missing values', () => {
  it('pima_diabetes_na without DP: generated missing rates close to real; the missing slot of a numeric column is masked in the loss', { timeout: 120_000 }, async () => {
    const { initBackend, createTwinVae } = await import('../src/index.ts');
    const { getVaeCore } = await import('../src/vae.ts');
    const tf = await import('@tensorflow/tfjs-core');
    await initBackend();
    const t = await loadDatasetTable('pima_diabetes_na');
    const enc = encodeTable(t);
    const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, latentDim: 8, hidden: 64, seed: 3 });
    try {
      // The numeric mask of a row follows its own indicator: glucose's slot counts only where glucose is present.
      const core = getVaeCore(vae);
      const g = enc.segments.findIndex((s) => s.column === 'glucose' && s.kind === 'numeric');
      const off = enc.segments[g].offset;
      const missingRow = t.rows.findIndex((r) => r[1] === null);
      const mask = tf.tidy(() => core.numMaskOf(tf.tensor2d(enc.x.slice(0, 2 * enc.width).map((v, i) => (i < enc.width ? enc.x[missingRow * enc.width + i] : v)), [2, enc.width])).dataSync());
      expect([mask[off], mask[enc.width + off]]).toEqual([0, 1]);
      await vae.trainEpochs(enc, { epochs: 40, batchSize: 64, learningRate: 0.01, seed: 3 });
      const gen = vae.generate(3000, { seed: 4 });
      const synth = { schema: t.schema, rows: decodeRows(t.schema, gen.x, gen.cond) };
      const m = missingnessReport(t, synth)!;
      console.log(`vae pima_na no DP: ${m.columns.map((c) => `${c.name} ${c.real.toFixed(3)}/${c.synthetic.toFixed(3)}`).join(', ')}; mean ${m.mean.toFixed(3)}`);
      for (const c of m.columns) expect(Math.abs(c.real - c.synthetic)).toBeLessThan(0.08);
      // Present values stay inside the declared bounds and missing ones are null, nothing else.
      for (const r of synth.rows) expect(r[1] === null || (typeof r[1] === 'number' && r[1] >= 0)).toBe(true);
    } finally {
      vae.dispose();
    }
  });
});
