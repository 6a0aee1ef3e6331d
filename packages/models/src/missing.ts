// Missing cells: which fields mean "missing" (declared in the schema, never guessed per site) and
// the small predicates every reader, encoder and metric shares, so they all agree on what is missing.
import type { Cell, ColumnSpec, TableSchema } from './types.ts';

/** Tokens that mean "missing" when a schema declares none: the usual spellings of R, pandas and UCI exports. */
export const DEFAULT_MISSING_TOKENS: readonly string[] = Object.freeze(['', 'NA', 'N/A', '?', 'NaN']);

/** Whether a column can hold missing cells (declared with allowMissing, or zero meaning missing). */
export function hasMissing(c: ColumnSpec): boolean {
  return c.allowMissing === true || (c.kind === 'numeric' && c.zeroIsMissing === true);
}

/** The tokens that mean missing in column `c` (trimmed): its own list, else the schema's, else the defaults. */
export function missingTokensOf(schema: TableSchema, c: ColumnSpec): readonly string[] {
  return (c.missingTokens ?? schema.missingTokens ?? DEFAULT_MISSING_TOKENS).map((t) => t.trim());
}

/** A raw CSV field is a missing token of the column (tokens compare after trimming, so '' matches blanks). */
export function isMissingField(field: string, tokens: readonly string[]): boolean {
  return tokens.includes(field.trim());
}

/** A table cell is missing (null; NaN and undefined too, so a stray one is never taken for a value). */
export function isMissing(v: Cell | undefined): v is null | undefined {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

/** Names of the schema's columns that can hold missing cells, in schema order. */
export function missingColumns(schema: TableSchema): string[] {
  return schema.columns.filter(hasMissing).map((c) => c.name);
}
