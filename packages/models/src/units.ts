// The protected unit of DP-SGD when records are not independent: a patient with k visits is k rows,
// and record-level DP protects each visit, not the patient (≈ k·ε for the patient). A unit column
// (e.g. patient_id) is taken out of the records here, before any schema sees them — so it never
// becomes a feature the model could memorise — and replaced by dense unit indices for per-unit
// sampling and clipping (DpTrainOptions.units). The ids themselves are not kept.
import { FedtwinError } from '@fedtwin/errors';
import type { ParsedCsv } from './csv.ts';
import type { TableSchema } from './types.ts';

export interface UnitColumn extends ParsedCsv {
  /** Unit index of each row, 0..unitCount−1, numbered by first appearance. */
  units: Int32Array;
  unitCount: number;
}

/**
 * Removes `column` from the parsed records and returns the rest with one unit index per row. The
 * input is not modified. Errors: DATA_MISSING_COLUMN (no such column), DATA_MISSING_VALUE (an empty
 * id: its row would belong to no unit), DATA_BAD_SCHEMA (`schema` declares the unit column, i.e. it
 * would be a model input).
 */
export function extractUnitColumn(csv: ParsedCsv, column: string, opts: { schema?: TableSchema; source?: string } = {}): UnitColumn {
  const src = opts.source ?? 'csv';
  if (opts.schema?.columns.some((c) => c.name === column) || opts.schema?.target === column) {
    throw new FedtwinError('DATA_BAD_SCHEMA', `the schema declares the unit column "${column}": the id would enter the model`, {
      hint: `remove "${column}" from the schema's columns; it is only used to group rows per unit`,
      details: { column },
    });
  }
  const j = csv.header.indexOf(column);
  if (j < 0) {
    throw new FedtwinError('DATA_MISSING_COLUMN', `${src}: unit column "${column}" is missing`, {
      hint: `The CSV header has: ${csv.header.join(', ')}`,
      details: { column },
    });
  }
  const index = new Map<string, number>();
  const units = new Int32Array(csv.rows.length);
  const rows = csv.rows.map((r, i) => {
    const id = r[j].trim();
    if (id === '') {
      throw new FedtwinError('DATA_MISSING_VALUE', `${src}: data row ${i + 1} has no value in unit column "${column}"`, {
        hint: 'every record needs the id of the unit (e.g. patient) it belongs to',
        details: { column, row: i + 1 },
      });
    }
    let k = index.get(id);
    if (k === undefined) index.set(id, (k = index.size));
    units[i] = k;
    return r.filter((_, c) => c !== j);
  });
  return { header: csv.header.filter((_, c) => c !== j), rows, units, unitCount: index.size };
}
