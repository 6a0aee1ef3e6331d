// Shared contracts of @fedtwin/models. The data side (csv, schema, encoding, split, evaluation)
// and the model side (backend, VAE, training) meet only through these types.

/** A column as the consortium declares it. Bounds and categories are declared, never computed
 *  from one site's rows, so preprocessing leaks no per-site statistics. */
export type ColumnSpec =
  | ({ name: string; kind: 'numeric'; min: number; max: number; integer: boolean; decimals: number; zeroIsMissing?: boolean } & MissingSpec)
  | ({ name: string; kind: 'categorical'; categories: string[] } & MissingSpec);

/** Per-column missing-value declaration (docs/data.md, "Missing values"). Absent: the column has no
 *  missing cells and an empty field is an error, as in schemas written before missing values existed. */
export interface MissingSpec {
  /** The column may hold missing cells: a field equal (after trimming) to one of its tokens is missing. */
  allowMissing?: boolean;
  /** This column's tokens, instead of the schema's `missingTokens`. */
  missingTokens?: string[];
}

export interface TableSchema {
  columns: ColumnSpec[];
  /** Name of the conditioning / label column; must be categorical. */
  target: string;
  /**
   * Where the bounds and categories come from: `data` when `fedtwin schema infer` computed them from a CSV (they
   * then disclose that CSV's extremes and rare values), `declared` once reviewed against public knowledge.
   * Provenance only: no code path treats the two differently.
   */
  boundsSource?: 'data' | 'declared';
  /** Fields that mean "missing" in columns that allow missing cells; default DEFAULT_MISSING_TOKENS
   *  (empty, NA, N/A, ?, NaN). A column's own `missingTokens` replaces this list for that column. */
  missingTokens?: string[];
}

/** A table cell: a number (numeric column), a category (categorical column) or null (a missing cell,
 *  only in columns whose spec allows missing values). */
export type Cell = number | string | null;

/** Rows as parsed and validated against a schema: numbers for numeric columns, category
 *  strings for categorical ones, null for a missing cell, in schema column order. */
export interface Table {
  schema: TableSchema;
  rows: Array<Array<Cell>>;
}

/** One column's place in the encoded row vector. */
export type Segment =
  | { column: string; kind: 'numeric'; offset: number; width: 1 }
  | { column: string; kind: 'categorical'; offset: number; width: number; missing?: MissingSlot };

/** How a column's missingness is encoded: `slot` (a categorical column's extra last one-hot slot) or
 *  `indicator` (a 2-wide [present, missing] segment after a numeric column's value segment). */
export type MissingSlot = 'slot' | 'indicator';

/** Model-ready form of a Table (target column excluded from x; it is the condition). */
export interface EncodedTable {
  /** rows × width, row-major; numeric scaled to [0,1] by declared bounds, categorical one-hot. */
  x: Float32Array;
  rows: number;
  width: number;
  segments: Segment[];
  /** class index of the target per row, into `classes`. */
  cond: Int32Array;
  classes: string[];
}
