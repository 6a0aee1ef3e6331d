// The protected unit column (e.g. a patient id): taken out of the records before the schema sees
// them, so it never becomes a feature, and turned into dense unit indices for per-unit DP-SGD.
import { describe, expect, it } from 'vitest';
import { isFedtwinError } from '@fedtwin/errors';
import { encodeTable, extractUnitColumn, inferSchema, parseCsv, tableFromCsv } from '../src/index.ts';
import type { TableSchema } from '../src/index.ts';

const CSV = `patient_id,age,sex,outcome
p7,61,F,yes
p2,45,M,no
p7,62,F,yes
p9,70,M,no
p2,46,M,yes
`;

describe('unit column', () => {
  it('drops the id column, maps ids to dense indices by first appearance, and the model width never includes it', () => {
    const csv = parseCsv(CSV);
    const { header, rows, units, unitCount } = extractUnitColumn(csv, 'patient_id');
    expect(header).toEqual(['age', 'sex', 'outcome']);
    expect(rows.every((r) => r.length === 3)).toBe(true);
    expect(rows[0]).toEqual(['61', 'F', 'yes']);
    expect(Array.from(units)).toEqual([0, 1, 0, 2, 1]);
    expect(unitCount).toBe(3);
    expect(csv.header).toContain('patient_id'); // the input is not modified
    const schema = inferSchema(header, rows, { target: 'outcome' });
    expect(schema.columns.map((c) => c.name)).not.toContain('patient_id');
    const enc = encodeTable(tableFromCsv(header, rows, schema));
    // age (1) + sex one-hot (2); the target is the condition, not a column of x.
    expect(enc.width).toBe(3);
    expect(enc.segments.map((s) => s.column)).toEqual(['age', 'sex']);
  });

  it('refuses a schema that declares the unit column as a feature, a missing column and an empty id', () => {
    const csv = parseCsv(CSV);
    const code = (f: () => unknown): string => {
      try { f(); } catch (e) { return isFedtwinError(e) ? e.code : String(e); }
      return 'no error';
    };
    const withId: TableSchema = inferSchema(csv.header, csv.rows, { target: 'outcome' });
    expect(withId.columns.map((c) => c.name)).toContain('patient_id');
    expect(code(() => extractUnitColumn(csv, 'patient_id', { schema: withId }))).toBe('DATA_BAD_SCHEMA');
    expect(code(() => extractUnitColumn(csv, 'visit'))).toBe('DATA_MISSING_COLUMN');
    expect(code(() => extractUnitColumn(parseCsv('id,a\n,1\n'), 'id'))).toBe('DATA_MISSING_VALUE');
  });
});
