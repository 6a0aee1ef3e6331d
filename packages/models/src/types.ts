// Shared contracts of @fedtwin/models. The data side (csv, schema, encoding, split, evaluation)
// and the model side (backend, VAE, training) meet only through these types.

/** A column as the consortium declares it. Bounds and categories are declared, never computed
 *  from one site's rows, so preprocessing leaks no per-site statistics. */
export type ColumnSpec =
  | { name: string; kind: 'numeric'; min: number; max: number; integer: boolean; decimals: number }
  | { name: string; kind: 'categorical'; categories: string[] };

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
}

/** Rows as parsed and validated against a schema: numbers for numeric columns, category
 *  strings for categorical ones, in schema column order. */
export interface Table {
  schema: TableSchema;
  rows: Array<Array<number | string>>;
}

/** One column's place in the encoded row vector. */
export type Segment =
  | { column: string; kind: 'numeric'; offset: number; width: 1 }
  | { column: string; kind: 'categorical'; offset: number; width: number };

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
