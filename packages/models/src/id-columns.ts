import { parseNumber } from './schema.ts';

/**
 * Identifier columns in a CSV: a patient id, a record number, a row counter. Used as a feature, an identifier
 * teaches the model nothing that generalises, its bounds (drafted into a schema every member sees) disclose the
 * id range, and a generator trained on it emits plausible ids. `fedtwin schema infer` leaves them out of a
 * drafted schema unless the operator keeps one; `fedtwin data check` names them among a CSV's extra columns.
 */
export interface IdColumn {
  column: string;
  /**
   * `unique-text`: every value differs and they are not numbers (P000123, a UUID, free text).
   * `sequence`: whole numbers, every value differs and together they are a run (a row counter: 1..n, 1001..1000+n).
   * `name`: named like an identifier (patient_id, mrn, subject, recordId) and mostly distinct (a patient id repeats
   * across visits; a `site_id` with three values is a grouping, not an identifier, and is not reported).
   */
  reason: 'unique-text' | 'sequence' | 'name';
  /** Non-empty values and how many are distinct. */
  values: number;
  distinct: number;
}

export interface DetectIdColumnsOptions {
  /** Columns never reported: the target, and any the operator declared a feature on purpose. */
  keep?: readonly string[];
  /**
   * Fewest non-empty values for the uniqueness rules (default 20): in 5 rows every column of a small sample is
   * "unique". The name rule applies from 2 values (below minValues only to a column whose values all differ).
   */
  minValues?: number;
}

/** Identifier-like names: id, *_id, uuid, guid, mrn, ssn, the usual subject words with an id suffix, pandas' index column. */
const ID_NAME = /^(?:id|uuid|guid|mrn|ssn|nhs_?(?:no|number)|row_?(?:id|no|num|number)?|index|unnamed: ?\d+|record_?(?:id|no|num|number)|(?:patient|subject|person|participant|encounter|visit|case|sample|record|specimen|admission|episode|member|customer|user)_?(?:id|no|num|number|nr|key|uuid))$|[_\s.-](?:id|uuid|guid|key)$/i;
/** camelCase: patientId, recordID (case-sensitive, else "lipid" and "fluid" would read as identifiers). */
const CAMEL_ID = /[a-z](?:Id|ID|Uuid|UUID)$/;

/** Whether a column name reads as an identifier (exported for messages and tests). */
export function looksLikeIdName(name: string): boolean {
  const n = name.trim();
  return ID_NAME.test(n) || CAMEL_ID.test(n);
}

/**
 * The columns of `header`/`rows` that look like identifiers, in header order. Pure: reads the values once per
 * column, keeps a set of distinct values (stopping early once a repeat rules the uniqueness rules out and the
 * name rule does not apply).
 */
export function detectIdColumns(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>, opts: DetectIdColumnsOptions = {}): IdColumn[] {
  const keep = new Set(opts.keep ?? []);
  const minValues = opts.minValues ?? 20;
  const out: IdColumn[] = [];
  header.forEach((column, j) => {
    if (keep.has(column)) return;
    const named = looksLikeIdName(column);
    const seen = new Set<string>();
    let values = 0;
    let allIntegers = true;
    let min = Infinity;
    let max = -Infinity;
    let repeated = false;
    for (const row of rows) {
      const raw = row[j];
      if (raw === undefined) continue;
      const s = raw.trim();
      if (s === '') continue;
      values++;
      if (seen.has(s)) {
        repeated = true;
        if (!named) return; // neither uniqueness rule can hold any more, and the name rule does not apply
      } else {
        seen.add(s);
      }
      if (allIntegers) {
        const v = parseNumber(s);
        if (v === undefined || !Number.isInteger(v)) allIntegers = false;
        else { if (v < min) min = v; if (v > max) max = v; }
      }
    }
    const distinct = seen.size;
    if (values === 0) return;
    const numeric = [...seen].every((s) => parseNumber(s) !== undefined);
    if (!repeated && values >= minValues) {
      if (!numeric) { out.push({ column, reason: 'unique-text', values, distinct }); return; }
      if (allIntegers && max - min + 1 === values) { out.push({ column, reason: 'sequence', values, distinct }); return; }
    }
    // In a handful of rows a grouping (site_id: 3 values in 5 rows) looks distinct too: there, all must differ.
    const mostlyDistinct = values >= minValues ? distinct / values >= 0.5 : distinct === values;
    if (named && values >= 2 && mostlyDistinct && (numeric ? allIntegers : true)) out.push({ column, reason: 'name', values, distinct });
  });
  return out;
}

/** One line for an operator: which column, and why it reads as an identifier (counts only, never a value). */
export function describeIdColumn(c: IdColumn): string {
  switch (c.reason) {
    case 'unique-text': return `"${c.column}": every one of its ${c.values} values is different and not a number (an identifier or free text)`;
    case 'sequence': return `"${c.column}": whole numbers, all ${c.values} different and consecutive (a row or record number)`;
    case 'name': return `"${c.column}": named like an identifier, ${c.distinct} distinct values in ${c.values}`;
  }
}

/** The table without `drop` (header order kept): what a schema is inferred from once identifiers are left out. */
export function withoutColumns(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>, drop: readonly string[]): { header: string[]; rows: string[][] } {
  const gone = new Set(drop);
  const keepIdx = header.map((h, j) => (gone.has(h) ? -1 : j)).filter((j) => j >= 0);
  return { header: keepIdx.map((j) => header[j]!), rows: rows.map((r) => keepIdx.map((j) => r[j]!)) };
}
