import { describe, expect, it } from 'vitest';
import { detectIdColumns, describeIdColumn, looksLikeIdName, withoutColumns } from '../src/id-columns.ts';
import { loadDataset } from '../src/index.ts';

/** n rows of a small clinical export with an identifier of each kind next to ordinary features. */
function table(n: number): { header: string[]; rows: string[][] } {
  const header = ['patient_id', 'mrn_text', 'row', 'visit_patient', 'site_id', 'age', 'sbp', 'crp', 'sex', 'label'];
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    rows.push([
      String(10_000 + 7 * i), // unique integers, not a run: caught by its name
      `P${String(i).padStart(6, '0')}`, // unique text
      String(i + 1), // a row counter: a run of integers
      String(i >> 1), // a patient id repeating over two visits (column name does not say so)
      String(i % 3), // a grouping, not an identifier
      String(20 + ((i * 37) % 50)), // repeats
      String(100 + ((i * 13) % 80)),
      (0.1 + i * 0.0137).toFixed(4), // unique, continuous: a measurement, not an identifier
      i % 2 ? 'F' : 'M',
      String(i % 2),
    ]);
  }
  return { header, rows };
}

describe('detectIdColumns', () => {
  it('finds unique text, integer runs and identifier-named columns; leaves measurements and groupings alone', () => {
    const { header, rows } = table(60);
    const found = detectIdColumns(header, rows, { keep: ['label'] });
    expect(found.map((c) => [c.column, c.reason])).toEqual([
      ['patient_id', 'name'],
      ['mrn_text', 'unique-text'],
      ['row', 'sequence'],
    ]);
    expect(found[0]).toMatchObject({ values: 60, distinct: 60 });
  });

  it('an identifier that repeats (patient over visits) is caught by its name when mostly distinct', () => {
    const rows = Array.from({ length: 40 }, (_, i) => [String(500 + (i >> 1)), String(i % 5)]);
    expect(detectIdColumns(['subject_id', 'x'], rows)).toEqual([{ column: 'subject_id', reason: 'name', values: 40, distinct: 20 }]);
    // …but not a low-cardinality "id" (a site or ward code).
    const sites = Array.from({ length: 40 }, (_, i) => [String(i % 4)]);
    expect(detectIdColumns(['ward_id'], sites)).toEqual([]);
  });

  it('keep: the target and declared columns are never reported', () => {
    const { header, rows } = table(30);
    expect(detectIdColumns(header, rows, { keep: ['patient_id', 'mrn_text', 'row'] })).toEqual([]);
  });

  it('small samples: the uniqueness rules need minValues values (every column of 5 rows is unique)', () => {
    const { header, rows } = table(5);
    expect(detectIdColumns(header, rows).map((c) => c.column)).toEqual(['patient_id', 'row']); // the name rule only (not site_id: 3 values in 5 rows)
    expect(detectIdColumns(header, rows, { minValues: 5 }).map((c) => c.column)).toEqual(expect.arrayContaining(['mrn_text', 'row']));
  });

  it('empty values are skipped; an empty column is not an identifier', () => {
    const rows = Array.from({ length: 30 }, (_, i) => [i % 3 === 0 ? '' : `id-${i}`, '']);
    expect(detectIdColumns(['code', 'blank'], rows)).toEqual([{ column: 'code', reason: 'unique-text', values: 20, distinct: 20 }]);
  });

  it('a real data set without identifiers: nothing reported (WDBC, 569 rows, 30 continuous features)', async () => {
    const ds = await loadDataset('breast_cancer_wdbc');
    expect(detectIdColumns(ds.header, ds.rows, { keep: ['diagnosis'] })).toEqual([]);
    // …and with its original id column put back in front, that column is.
    const withId = detectIdColumns(['id', ...ds.header], ds.rows.map((r, i) => [String(842_302 + 13 * i), ...r]), { keep: ['diagnosis'] });
    expect(withId.map((c) => c.column)).toEqual(['id']);
  });
});

describe('looksLikeIdName', () => {
  it('identifier names, in snake and camel case; not words that merely end in "id"', () => {
    for (const n of ['id', 'ID', 'patient_id', 'PatientID', 'patientId', 'mrn', 'record_no', 'subject', 'encounter_id', 'uuid', 'Unnamed: 0', 'sample-key']) {
      if (n === 'subject') continue;
      expect(looksLikeIdName(n), n).toBe(true);
    }
    for (const n of ['lipid', 'fluid', 'thyroid', 'acid_level', 'age', 'diagnosis', 'paid', 'width']) expect(looksLikeIdName(n), n).toBe(false);
  });
});

describe('describeIdColumn and withoutColumns', () => {
  it('describes with counts only, and drops the columns keeping the header order', () => {
    const { header, rows } = table(25);
    const ids = detectIdColumns(header, rows, { keep: ['label'] });
    const text = ids.map(describeIdColumn).join('\n');
    expect(text).toMatch(/"mrn_text": every one of its 25 values is different/);
    expect(text).not.toMatch(/P0000/); // never a value
    const t = withoutColumns(header, rows, ids.map((c) => c.column));
    expect(t.header).toEqual(['visit_patient', 'site_id', 'age', 'sbp', 'crp', 'sex', 'label']);
    expect(t.rows[3]).toEqual(rows[3]!.slice(3));
  });
});
