import type { ColumnSpec, TableSchema } from '@fedtwin/models';
import { detectIdColumns, parseNumber, type IdColumn } from '@fedtwin/models';

/**
 * A site's CSV against the consortium's schema, before the site joins: what its node would refuse, and what it
 * would clamp or drop, column by column. Counts only, never a value: the report is made to be pasted into a
 * ticket or sent to the consortium's operator, and the records are patients'.
 *
 * The rules are the node's own (packages/node/src/phases/join.ts → tableFromCsv with clampOutOfRange and
 * dropUnknownCategories): a missing or undeclared column, an empty cell, a number that does not parse, a
 * fraction in an integer column or a ragged row stops the node; a number outside the declared bounds is clamped
 * to the bound and a row with an undeclared category is dropped (both logged by the node, counted here).
 */
export interface DataCheckReport {
  rows: number;
  /** Columns in the CSV header (the unit column included). */
  columns: number;
  /** The manifest's privacy.unitColumn: taken out before the schema sees the records. */
  unitColumn?: { name: string; present: boolean; units?: number; emptyIds: number };
  /** Declared by the schema (or its target), absent from the CSV. */
  missingColumns: string[];
  /** In the CSV, not declared (and not the unit column). */
  unknownColumns: string[];
  /** Identifier-like columns among the CSV's (declared or not): an identifier should not be a feature. */
  idLikeColumns: Array<Pick<IdColumn, 'column' | 'reason'>>;
  /** Rows whose field count differs from the header's. */
  raggedRows: number;
  perColumn: ColumnCounts[];
  /** Rows the node would keep (rows with an undeclared category dropped). */
  rowsKept: number;
  /** What stops the node (exit 2), and what it would clamp or drop (exit 0). */
  problems: string[];
  warnings: string[];
  ok: boolean;
}

export interface ColumnCounts {
  column: string;
  kind: 'numeric' | 'categorical';
  empty: number;
  notNumber: number;
  notInteger: number;
  belowMin: number;
  aboveMax: number;
  undeclaredCategory: number;
}

export function checkCsvAgainstSchema(csv: { header: readonly string[]; rows: ReadonlyArray<ReadonlyArray<string>> }, schema: TableSchema, opts: { unitColumn?: string } = {}): DataCheckReport {
  const { header, rows } = csv;
  const index = new Map(header.map((h, j) => [h, j] as const));
  const declared = new Set(schema.columns.map((c) => c.name));
  const problems: string[] = [];
  const warnings: string[] = [];

  let unitColumn: DataCheckReport['unitColumn'];
  if (opts.unitColumn !== undefined) {
    const j = index.get(opts.unitColumn);
    if (j === undefined) {
      unitColumn = { name: opts.unitColumn, present: false, emptyIds: 0 };
      problems.push(`the unit column "${opts.unitColumn}" (the manifest's privacy.unitColumn: the id of the patient each row belongs to) is missing`);
    } else {
      const ids = new Set<string>();
      let emptyIds = 0;
      for (const r of rows) {
        const id = (r[j] ?? '').trim();
        if (id === '') emptyIds++;
        else ids.add(id);
      }
      unitColumn = { name: opts.unitColumn, present: true, units: ids.size, emptyIds };
      if (emptyIds) problems.push(`${emptyIds} row(s) have no value in the unit column "${opts.unitColumn}"`);
    }
    if (declared.has(opts.unitColumn)) problems.push(`the schema declares the unit column "${opts.unitColumn}": the id would enter the model (the consortium's schema must not list it)`);
  }

  const missingColumns = schema.columns.map((c) => c.name).filter((n) => !index.has(n));
  for (const c of missingColumns) problems.push(`column "${c}" declared in the schema is missing`);
  const unknownColumns = header.filter((h) => !declared.has(h) && h !== opts.unitColumn);
  if (unknownColumns.length) problems.push(`${unknownColumns.length} column(s) not declared in the schema: ${unknownColumns.map((c) => `"${c}"`).join(', ')} (remove them from the export, or the consortium declares them)`);

  let raggedRows = 0;
  for (const r of rows) if (r.length !== header.length) raggedRows++;
  if (raggedRows) problems.push(`${raggedRows} row(s) have a different number of fields than the header (${header.length})`);

  const perColumn: ColumnCounts[] = [];
  const dropped = new Uint8Array(rows.length);
  for (const spec of schema.columns) {
    const j = index.get(spec.name);
    if (j === undefined) continue;
    const counts = countColumn(spec, rows, j, dropped);
    perColumn.push(counts);
    if (counts.empty) problems.push(`column "${spec.name}": ${counts.empty} empty value(s) (fedtwin does not impute: fill or drop those rows before export)`);
    if (counts.notNumber) problems.push(`column "${spec.name}": ${counts.notNumber} value(s) that are not numbers`);
    if (counts.notInteger) problems.push(`column "${spec.name}": ${counts.notInteger} value(s) with a fraction in a column the schema declares integer`);
    if (spec.kind === 'numeric' && (counts.belowMin || counts.aboveMax)) {
      warnings.push(`column "${spec.name}": ${counts.belowMin} value(s) below ${spec.min} and ${counts.aboveMax} above ${spec.max}; the node clamps them to the bound`);
    }
    if (counts.undeclaredCategory) warnings.push(`column "${spec.name}": ${counts.undeclaredCategory} row(s) with a category the schema does not declare; the node drops those rows`);
  }
  const rowsKept = rows.length - dropped.reduce((a, d) => a + d, 0);
  if (rows.length === 0) problems.push('the CSV has no data rows');
  else if (rowsKept === 0) problems.push('no row would be left: every row has a category the schema does not declare');

  const idLikeColumns = detectIdColumns(header, rows, { keep: [schema.target, ...(opts.unitColumn ? [opts.unitColumn] : [])] }).map(({ column, reason }) => ({ column, reason }));
  for (const c of idLikeColumns) {
    warnings.push(`column "${c.column}" looks like an identifier (${c.reason})${declared.has(c.column) ? ': the schema declares it, so it is a model input' : ''}`);
  }

  return {
    rows: rows.length, columns: header.length, ...(unitColumn ? { unitColumn } : {}), missingColumns, unknownColumns, idLikeColumns,
    raggedRows, perColumn, rowsKept, problems, warnings, ok: problems.length === 0,
  };
}

function countColumn(spec: ColumnSpec, rows: ReadonlyArray<ReadonlyArray<string>>, j: number, dropped: Uint8Array): ColumnCounts {
  const c: ColumnCounts = { column: spec.name, kind: spec.kind, empty: 0, notNumber: 0, notInteger: 0, belowMin: 0, aboveMax: 0, undeclaredCategory: 0 };
  const cats = spec.kind === 'categorical' ? new Set(spec.categories) : undefined;
  rows.forEach((r, i) => {
    const s = r[j];
    if (s === undefined || s.trim() === '') { c.empty++; return; }
    if (cats) {
      if (!cats.has(s)) { c.undeclaredCategory++; dropped[i] = 1; }
      return;
    }
    if (spec.kind !== 'numeric') return;
    const v = parseNumber(s);
    if (v === undefined) { c.notNumber++; return; }
    if (spec.integer && !Number.isInteger(v)) c.notInteger++;
    if (v < spec.min) c.belowMin++;
    else if (v > spec.max) c.aboveMax++;
  });
  return c;
}
