// Table schemas: drafting one from a public data set (inferSchema), checking one read from JSON
// (validateSchema), and turning CSV rows into a validated Table against a declared schema (tableFromCsv).
import { z } from 'zod';
import { FedtwinError } from '@fedtwin/errors';
import type { Cell, ColumnSpec, Table, TableSchema } from './types.ts';
import { formatNumber, toCsv } from './csv.ts';
import { DEFAULT_MISSING_TOKENS, hasMissing, isMissing, isMissingField, missingTokensOf } from './missing.ts';

/** Decimal number as CSV writes it: optional sign, digits, optional fraction, optional exponent. */
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Strict numeric parse (no hex, no Infinity, no empty); surrounding spaces are tolerated. */
export function parseNumber(s: string): number | undefined {
  const t = s.trim();
  if (!NUMBER_RE.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/** Digits after the decimal point as written ("1.50" → 2, "1e-3" → 3), capped at 15. */
export function decimalsOf(s: string): number {
  const t = s.trim();
  const m = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (m === null) return 0;
  const frac = m[2]?.length ?? 0;
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  return Math.min(15, Math.max(0, frac - exp));
}

/**
 * Decimals a value really needs: the fewest (≤ the written count) that reproduce it to 12
 * significant digits, so float artefacts such as "5.3660000000000005" count as 3, not 16.
 */
export function significantDecimals(s: string): number {
  const written = decimalsOf(s);
  const v = parseNumber(s);
  if (v === undefined || v === 0) return 0;
  for (let d = 0; d < written; d++) {
    if (Math.abs(Number(v.toFixed(d)) - v) <= 1e-12 * Math.abs(v)) return d;
  }
  return written;
}

/** Numbers if every category is numeric, else code-point order: "2" < "10", "neg" < "pos". */
export function sortCategories(cats: Iterable<string>): string[] {
  const arr = [...new Set(cats)];
  if (arr.every((c) => parseNumber(c) !== undefined)) {
    return arr.sort((a, b) => (parseNumber(a) as number) - (parseNumber(b) as number) || (a < b ? -1 : a > b ? 1 : 0));
  }
  return arr.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface InferSchemaOptions {
  /** The label / conditioning column; always made categorical. */
  target: string;
  /** Max distinct values of a categorical column (and the target). Default 50. */
  maxCategories?: number;
  /** Columns to make categorical even if every value is a number (e.g. codes). */
  categorical?: string[];
  /** Round numeric bounds outward to two significant digits of the range. Default true. */
  roundBounds?: boolean;
  /** Fields that mean "missing" (default DEFAULT_MISSING_TOKENS); an empty field is always missing. A column
   *  holding any gets `allowMissing: true`, and they are not counted as categories or taken for non-numbers. */
  missingTokens?: readonly string[];
  /** Numeric columns where 0 means "not measured" (e.g. Pima insulin): declared `zeroIsMissing`, zeros kept out of the bounds. */
  zeroIsMissing?: readonly string[];
}

function roundTo(v: number, decimals: number): number {
  return Number(v.toFixed(Math.max(0, Math.min(20, decimals))));
}

/** Widen [min, max] outward to a step of 10^(⌊log10(range)⌋−1), so bounds are round numbers. */
function roundOutward(min: number, max: number, integer: boolean, decimals: number): [number, number] {
  if (max === min) {
    const step = integer ? 1 : 10 ** -decimals;
    return [min, roundTo(min + step, decimals)];
  }
  let e = Math.floor(Math.log10(max - min)) - 1;
  if (integer) e = Math.max(e, 0);
  const step = 10 ** e;
  const places = Math.max(0, -e);
  return [roundTo(Math.floor(min / step) * step, places), roundTo(Math.ceil(max / step) * step, places)];
}

/**
 * Draft a schema from rows (e.g. a public data set, or a consortium operator's sample). Numeric
 * columns get min/max (rounded outward), `integer` and `decimals` (most decimals seen, ignoring
 * float artefacts: see significantDecimals); other
 * columns are categorical with their sorted categories. Missing tokens (and empty fields) are not values:
 * a column holding any is declared `allowMissing`, and the schema lists the tokens (`missingTokens`).
 */
export function inferSchema(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>, opts: InferSchemaOptions): TableSchema {
  const maxCategories = opts.maxCategories ?? 50;
  if (!Number.isInteger(maxCategories) || maxCategories < 2) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `maxCategories must be an integer ≥ 2, got ${maxCategories}`);
  }
  const forced = new Set(opts.categorical ?? []);
  const zeroMissing = new Set(opts.zeroIsMissing ?? []);
  const tokens = [...new Set([...(opts.missingTokens ?? DEFAULT_MISSING_TOKENS)].map((t) => t.trim()))];
  // An empty field is never a value (no category may be empty, no number is blank).
  const detect = tokens.includes('') ? tokens : [...tokens, ''];
  for (const c of [opts.target, ...forced, ...zeroMissing]) {
    if (!header.includes(c)) {
      throw new FedtwinError('DATA_MISSING_COLUMN', `column "${c}" is not in the header`, {
        hint: `Columns are: ${header.join(', ')}`,
        details: { column: c },
      });
    }
  }
  if (rows.length === 0) throw new FedtwinError('DATA_EMPTY', 'no rows to infer a schema from');
  if (zeroMissing.has(opts.target)) throw new FedtwinError('DATA_BAD_ARGUMENT', `the target "${opts.target}" cannot have zero meaning missing`, { hint: 'zeroIsMissing is for numeric feature columns' });
  const columns: ColumnSpec[] = [];
  let sawBlank = false;
  for (let j = 0; j < header.length; j++) {
    const name = header[j];
    let min = Infinity;
    let max = -Infinity;
    let decimals = 0;
    let integer = true;
    let numeric = !forced.has(name) && name !== opts.target;
    let firstNonNumeric: { row: number; value: string } | undefined;
    const cats = new Set<string>();
    let present = 0;
    let missing = 0;
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i][j];
      if (s === undefined || isMissingField(s, detect)) {
        missing++;
        if (s !== undefined && s.trim() === '') sawBlank = true;
        continue;
      }
      if (zeroMissing.has(name) && parseNumber(s) === 0) continue;
      present++;
      if (cats.size <= maxCategories) cats.add(s);
      if (!numeric) continue;
      const v = parseNumber(s);
      if (v === undefined) {
        numeric = false;
        firstNonNumeric = { row: i + 1, value: s };
        continue;
      }
      if (v < min) min = v;
      if (v > max) max = v;
      if (!Number.isInteger(v)) integer = false;
      // Only values written with more decimals than the running max can raise it.
      if (decimalsOf(s) > decimals) {
        const d = significantDecimals(s);
        if (d > decimals) decimals = d;
      }
    }
    if (present === 0) {
      throw new FedtwinError('DATA_MISSING_VALUE', `column "${name}" has no values`, { hint: 'Drop the column or fill it', details: { column: name } });
    }
    if (missing > 0 && name === opts.target) {
      throw new FedtwinError('DATA_MISSING_VALUE', `target "${name}" has ${missing} missing value(s)`, {
        hint: 'Every record needs its class: drop the rows without one, or choose another --target',
        details: { column: name, missing },
      });
    }
    const miss = missing > 0 ? { allowMissing: true } : {};
    if (zeroMissing.has(name) && !numeric) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `column "${name}" is not numeric: zero cannot mean missing there`, { hint: 'zeroIsMissing is for numeric columns', details: { column: name } });
    }
    if (numeric) {
      // A constant column is widened by one step either way: scaling needs min < max.
      const [lo, hi] = opts.roundBounds === false && min < max ? [min, max] : roundOutward(min, max, integer, decimals);
      const zero = zeroMissing.has(name) ? { zeroIsMissing: true } : {};
      columns.push({ name, kind: 'numeric', min: lo, max: hi, integer, decimals: integer ? 0 : decimals, ...miss, ...zero });
      continue;
    }
    if (cats.size > maxCategories) {
      const isTarget = name === opts.target;
      throw new FedtwinError(
        isTarget ? 'DATA_TARGET_NOT_CATEGORICAL' : 'DATA_TOO_MANY_CATEGORIES',
        `column "${name}" has more than ${maxCategories} distinct values` +
          (firstNonNumeric ? ` and non-numeric values (e.g. "${firstNonNumeric.value}" in data row ${firstNonNumeric.row})` : ''),
        {
          hint: isTarget
            ? 'The target must be a class label: choose another --target or bin this column into classes (docs/data.md)'
            : firstNonNumeric
              // Mostly numbers and one odd spelling is usually a missing-value token nobody declared.
              ? `If "${firstNonNumeric.value}" means missing, declare it a missing token (schema infer --missing, missingTokens); otherwise drop the column or raise maxCategories`
              : `Drop the column, make it numeric, or raise maxCategories`,
          details: { column: name, maxCategories },
        },
      );
    }
    columns.push({ name, kind: 'categorical', categories: sortCategories(cats), ...miss });
  }
  const target = columns.find((c) => c.name === opts.target);
  if (target?.kind === 'categorical' && target.categories.length < 2) {
    throw new FedtwinError('DATA_TARGET_NOT_CATEGORICAL', `target "${opts.target}" has a single class "${target.categories[0]}"`, {
      hint: 'The target needs at least two classes',
    });
  }
  if (columns.length < 2) {
    throw new FedtwinError('DATA_BAD_SCHEMA', 'a table needs at least one column besides the target', { hint: 'Add feature columns' });
  }
  // Declare the tokens only when some column holds missing cells, so complete data keeps its old schema.
  if (!columns.some((c) => c.allowMissing === true)) return { columns, target: opts.target };
  const declared = sawBlank && !tokens.includes('') ? [...tokens, ''] : tokens;
  return { columns, target: opts.target, missingTokens: declared };
}

// ---------------------------------------------------------------------------------------------
// validateSchema

const MAX_COLUMNS = 10_000;
const MAX_CATEGORIES = 10_000;

const numericSpec = z
  .object({
    name: z.string().min(1),
    kind: z.literal('numeric'),
    min: z.number().finite(),
    max: z.number().finite(),
    integer: z.boolean(),
    decimals: z.number().int().min(0).max(15),
    allowMissing: z.boolean().optional(),
    missingTokens: z.array(z.string().max(100)).max(100).optional(),
    zeroIsMissing: z.boolean().optional(),
  })
  .strict();
const categoricalSpec = z
  .object({
    name: z.string().min(1),
    kind: z.literal('categorical'),
    categories: z.array(z.string().min(1)).min(1).max(MAX_CATEGORIES),
    allowMissing: z.boolean().optional(),
    missingTokens: z.array(z.string().max(100)).max(100).optional(),
  })
  .strict();
const tableSchemaZ = z
  .object({
    columns: z.array(z.discriminatedUnion('kind', [numericSpec, categoricalSpec])).min(2).max(MAX_COLUMNS),
    target: z.string().min(1),
    boundsSource: z.enum(['data', 'declared']).optional(),
    missingTokens: z.array(z.string().max(100)).max(100).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.columns.forEach((c, i) => {
      if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: ['columns', i, 'name'], message: `duplicate column name "${c.name}"` });
      names.add(c.name);
      if (c.missingTokens !== undefined && !hasMissing(c as ColumnSpec)) {
        ctx.addIssue({ code: 'custom', path: ['columns', i, 'missingTokens'], message: 'missingTokens needs allowMissing: true on the column' });
      }
      if (c.kind === 'categorical' && c.allowMissing === true) {
        // A category spelled like a missing token would be read as missing: refuse the ambiguity.
        const tokens = missingTokensOf(s as TableSchema, c as ColumnSpec);
        const clash = c.categories.find((cat) => tokens.includes(cat.trim()));
        if (clash !== undefined) ctx.addIssue({ code: 'custom', path: ['columns', i, 'categories'], message: `category "${clash}" is also a missing token of the column` });
      }
      if (c.name === s.target && hasMissing(c as ColumnSpec)) {
        ctx.addIssue({ code: 'custom', path: ['columns', i, 'allowMissing'], message: 'the target cannot have missing values' });
      }
      if (c.kind === 'numeric') {
        if (!(c.min < c.max)) ctx.addIssue({ code: 'custom', path: ['columns', i, 'max'], message: `max (${c.max}) must be greater than min (${c.min})` });
        if (c.integer && c.decimals !== 0) ctx.addIssue({ code: 'custom', path: ['columns', i, 'decimals'], message: 'an integer column must have decimals 0' });
      } else {
        const seen = new Set<string>();
        c.categories.forEach((cat, k) => {
          if (seen.has(cat)) ctx.addIssue({ code: 'custom', path: ['columns', i, 'categories', k], message: `duplicate category "${cat}"` });
          seen.add(cat);
        });
      }
    });
    const t = s.columns.findIndex((c) => c.name === s.target);
    if (t === -1) ctx.addIssue({ code: 'custom', path: ['target'], message: `target "${s.target}" is not one of the columns` });
    else {
      const tc = s.columns[t];
      if (tc.kind !== 'categorical') ctx.addIssue({ code: 'custom', path: ['target'], message: `target "${s.target}" must be a categorical column` });
      else if (tc.categories.length < 2) ctx.addIssue({ code: 'custom', path: ['columns', t, 'categories'], message: 'the target needs at least two categories' });
    }
  });

function pathString(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(root)' : out;
}

/** Check a schema read from JSON; throws `DATA_BAD_SCHEMA` naming the offending field (e.g. `columns[3].max`). */
export function validateSchema(json: unknown): TableSchema {
  const r = tableSchemaZ.safeParse(json);
  if (r.success) return r.data as TableSchema;
  const issues = r.error.issues.slice(0, 5).map((i) => `${pathString(i.path)}: ${i.message}`);
  throw new FedtwinError('DATA_BAD_SCHEMA', `invalid schema: ${issues.join('; ')}`, {
    hint: 'See docs/data.md for the schema format',
    details: { issues },
  });
}

// ---------------------------------------------------------------------------------------------
// tableFromCsv

export interface TableFromCsvOptions {
  /** Clamp numeric values outside the declared [min, max] (and count them) instead of failing. Default false. */
  clampOutOfRange?: boolean;
  /**
   * Drop a row with a value its column does not declare (a feature's category or the target's class) and count
   * it, instead of failing. Default false. A member loads its records with this and clampOutOfRange so that one
   * record cannot decide whether its site takes part (docs/data.md, "Values outside the schema").
   */
  dropUnknownCategories?: boolean;
  /** Ignore CSV columns the schema does not declare instead of failing. Default false. */
  ignoreExtraColumns?: boolean;
  /** Name used in error messages (e.g. the file path). */
  source?: string;
}

export interface TableReport {
  /** Values clamped into bounds in the rows kept, per column (only columns with clamps appear). */
  clamped: Record<string, number>;
  clampedTotal: number;
  /** Rows dropped for an undeclared category, per column (a row counts once, under its first such column). */
  dropped: Record<string, number>;
  droppedTotal: number;
  /** 0-based indices (into the input rows) of the dropped rows, ascending: to keep per-row side data aligned. */
  droppedRows: number[];
  /** CSV columns dropped because the schema does not declare them. */
  ignoredColumns: string[];
}

/** A Table plus what was done to get it. */
export interface LoadedTable extends Table {
  report: TableReport;
}

/**
 * Validate CSV rows against a declared schema and convert them to a Table (schema column order).
 * Errors: DATA_MISSING_COLUMN, DATA_EXTRA_COLUMN, DATA_MISSING_VALUE, DATA_BAD_VALUE,
 * DATA_UNKNOWN_CATEGORY (unless dropUnknownCategories), DATA_OUT_OF_RANGE (unless clampOutOfRange) — each
 * with column, data row (1-based) and value; DATA_EMPTY if no row is left.
 */
export function tableFromCsv(
  header: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string>>,
  schema: TableSchema,
  opts: TableFromCsvOptions = {},
): LoadedTable {
  const src = opts.source ?? 'csv';
  const index = new Map<string, number>();
  header.forEach((h, j) => index.set(h, j));
  const declared = new Set(schema.columns.map((c) => c.name));
  for (const c of schema.columns) {
    if (!index.has(c.name)) {
      throw new FedtwinError('DATA_MISSING_COLUMN', `${src}: column "${c.name}" declared in the schema is missing`, {
        hint: `The CSV header has: ${header.join(', ')}`,
        details: { column: c.name },
      });
    }
  }
  const extra = header.filter((h) => !declared.has(h));
  if (extra.length > 0 && opts.ignoreExtraColumns !== true) {
    throw new FedtwinError('DATA_EXTRA_COLUMN', `${src}: column "${extra[0]}" is not declared in the schema` + (extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''), {
      hint: 'Remove the column from the CSV export, or declare it in the consortium schema',
      details: { columns: extra },
    });
  }
  const cols = schema.columns.map((c) => ({
    spec: c,
    j: index.get(c.name) as number,
    cats: c.kind === 'categorical' ? new Set(c.categories) : undefined,
    tokens: hasMissing(c) ? missingTokensOf(schema, c) : undefined,
  }));
  const clamped: Record<string, number> = {};
  let clampedTotal = 0;
  const dropped: Record<string, number> = {};
  const droppedRows: number[] = [];
  const out: Cell[][] = [];
  rowLoop: for (let i = 0; i < rows.length; i++) {
    const raw = rows[i];
    if (raw.length !== header.length) {
      throw new FedtwinError('DATA_CSV_MALFORMED', `${src}: data row ${i + 1} has ${raw.length} fields, header has ${header.length}`);
    }
    const row: Cell[] = new Array(cols.length);
    const clampedHere: string[] = []; // counted only if the row is kept
    for (let k = 0; k < cols.length; k++) {
      const { spec, j, cats, tokens } = cols[k];
      const s = raw[j];
      const where = { row: i + 1, column: spec.name, value: s };
      if (tokens !== undefined && isMissingField(s, tokens)) {
        row[k] = null;
        continue;
      }
      if (s.trim() === '') {
        throw new FedtwinError('DATA_MISSING_VALUE', `${src}: data row ${i + 1}, column "${spec.name}": empty value`, {
          hint: spec.name === schema.target
            ? 'Every record needs its class: drop the rows without one'
            : `Declare the column as allowing missing cells ("allowMissing": true in the schema, docs/data.md "Missing values"), or fill the value`,
          details: where,
        });
      }
      if (spec.kind === 'categorical') {
        if (!(cats as Set<string>).has(s)) {
          if (opts.dropUnknownCategories === true) {
            dropped[spec.name] = (dropped[spec.name] ?? 0) + 1;
            droppedRows.push(i);
            continue rowLoop;
          }
          throw new FedtwinError('DATA_UNKNOWN_CATEGORY', `${src}: data row ${i + 1}, column "${spec.name}": "${s}" is not a declared category`, {
            hint: `Declared categories: ${spec.categories.slice(0, 20).join(', ')}${spec.categories.length > 20 ? ', …' : ''}`,
            details: where,
          });
        }
        row[k] = s;
        continue;
      }
      let v = parseNumber(s);
      if (v === undefined) {
        throw new FedtwinError('DATA_BAD_VALUE', `${src}: data row ${i + 1}, column "${spec.name}": "${s}" is not a number`, {
          hint: badNumberHint(s, tokens),
          details: where,
        });
      }
      if (v === 0 && spec.zeroIsMissing === true) {
        row[k] = null;
        continue;
      }
      if (spec.integer && !Number.isInteger(v)) {
        throw new FedtwinError('DATA_BAD_VALUE', `${src}: data row ${i + 1}, column "${spec.name}": "${s}" is not an integer`, {
          hint: 'The schema declares this column integer',
          details: where,
        });
      }
      if (v < spec.min || v > spec.max) {
        if (opts.clampOutOfRange !== true) {
          throw new FedtwinError('DATA_OUT_OF_RANGE', `${src}: data row ${i + 1}, column "${spec.name}": ${s} is outside the declared range [${spec.min}, ${spec.max}]`, {
            hint: 'Fix the value, or widen the bounds in the schema (the consortium declares them); a fedtwin node clamps such values to the bound itself',
            details: { ...where, min: spec.min, max: spec.max },
          });
        }
        v = v < spec.min ? spec.min : spec.max;
        clampedHere.push(spec.name);
      }
      row[k] = v;
    }
    for (const c of clampedHere) clamped[c] = (clamped[c] ?? 0) + 1;
    clampedTotal += clampedHere.length;
    out.push(row);
  }
  if (out.length === 0) {
    throw new FedtwinError('DATA_EMPTY', `${src}: no data rows` + (droppedRows.length > 0 ? ` (all ${droppedRows.length} had a value the schema does not declare)` : ''), {
      ...(droppedRows.length > 0 ? { hint: 'the records do not use the categories the consortium schema declares: check the export against the schema', details: { dropped } } : {}),
    });
  }
  return { schema, rows: out, report: { clamped, clampedTotal, dropped, droppedTotal: droppedRows.length, droppedRows, ignoredColumns: extra } };
}

/** Why a field is not a number, and what to do: a missing token in a column not declared to allow missing. */
function badNumberHint(s: string, tokens: readonly string[] | undefined): string {
  if (tokens === undefined && DEFAULT_MISSING_TOKENS.includes(s.trim())) {
    return `"${s.trim()}" looks like a missing value: declare the column "allowMissing": true in the schema (docs/data.md "Missing values")`;
  }
  const also = tokens === undefined ? '' : ` or a missing token (${tokens.map((t) => JSON.stringify(t)).join(', ')})`;
  return `Numeric columns take plain decimals like 12.5 or -3${also}`;
}

/**
 * How a missing cell of column `c` is written: 0 in a zeroIsMissing column (the input's own convention), else
 * empty — or, if the schema's tokens for the column leave out the empty field, its first token, so the file reads back.
 */
export function missingFieldOf(schema: TableSchema, c: ColumnSpec): string {
  if (c.kind === 'numeric' && c.zeroIsMissing === true) return '0';
  const tokens = missingTokensOf(schema, c);
  return tokens.includes('') || tokens.length === 0 ? '' : tokens[0];
}

/** Write a Table as CSV with the schema's columns and number formats (decimals; no exponents; missing cells empty). */
export function tableToCsv(table: Table): string {
  const specs = table.schema.columns;
  const missingAs = specs.map((c) => missingFieldOf(table.schema, c));
  const rows = table.rows.map((r) => r.map((v, k) => {
    const c = specs[k];
    if (isMissing(v)) return missingAs[k];
    return c.kind === 'numeric' && typeof v === 'number' ? formatNumber(v, c.decimals) : String(v);
  }));
  return toCsv(specs.map((c) => c.name), rows);
}

/** Index of the target column in `schema.columns`; throws DATA_BAD_SCHEMA if absent or not categorical. */
export function targetIndex(schema: TableSchema): number {
  const t = schema.columns.findIndex((c) => c.name === schema.target);
  if (t === -1 || schema.columns[t].kind !== 'categorical') {
    throw new FedtwinError('DATA_BAD_SCHEMA', `target "${schema.target}" must be a categorical column of the schema`);
  }
  return t;
}
