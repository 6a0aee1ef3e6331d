// Discretisation: every column becomes a finite set of bins, fixed by public information only (the
// schema's declared bounds and categories, or a DP release). Counts over these bins are the only thing
// a site ever contributes, so nothing here may depend on one site's rows.
import { FedtwinError } from '@fedtwin/errors';
import { hasMissing, type Table, type TableSchema } from '@fedtwin/models';

/**
 * One column's bins. Numeric: bin k is [edges[k], edges[k+1]) (the last one closed), so `edges` has
 * one entry more than there are value bins. With `missing`, one extra bin (the last index) holds
 * missing cells, so every marginal over the column counts missingness jointly with the other columns.
 */
export type ColumnDomain =
  | { name: string; kind: 'numeric'; edges: number[]; min: number; max: number; integer: boolean; decimals: number; missing: boolean }
  | { name: string; kind: 'categorical'; categories: string[]; missing: boolean };

export interface Domain {
  columns: ColumnDomain[];
}

/** Default cap on a numeric column's fine (first-round) bins. */
export const DEFAULT_FINE_BINS = 1024;

export interface DomainOptions {
  /** Cap on the fine bins of a numeric column. A column whose declared grid (step 1 for integer
   *  columns, 10^−decimals otherwise) has at most this many values gets one bin per value, so values
   *  such as 0 keep their mass on themselves; a finer grid gets this many equal-width bins over
   *  [min, max]. Default DEFAULT_FINE_BINS. */
  bins?: number;
  /** Columns that get a missing-value bin (empty cell, null, undefined or NaN lands there), besides those
   *  the schema declares as allowing missing cells (allowMissing / zeroIsMissing), which always get one. */
  missing?: readonly string[];
}

function badArgument(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });
}

/** Number of bins of a column, the missing bin included. */
export function columnSize(c: ColumnDomain): number {
  return (c.kind === 'numeric' ? c.edges.length - 1 : c.categories.length) + (c.missing ? 1 : 0);
}

/** Number of value bins (the missing bin excluded). */
export function valueBins(c: ColumnDomain): number {
  return c.kind === 'numeric' ? c.edges.length - 1 : c.categories.length;
}

/** The fine domain of a schema: what the first round counts. Depends on the schema only. */
export function domainFromSchema(schema: TableSchema, opts: DomainOptions = {}): Domain {
  const bins = opts.bins ?? DEFAULT_FINE_BINS;
  if (!Number.isInteger(bins) || bins < 1 || bins > 65_536) throw badArgument(`bins must be an integer in [1, 65536], got ${bins}`);
  const missing = new Set(opts.missing ?? []);
  for (const m of missing) {
    if (!schema.columns.some((c) => c.name === m)) throw badArgument(`missing-value column "${m}" is not in the schema`);
  }
  const columns = schema.columns.map((c): ColumnDomain => {
    // Public: the bin exists because the schema declares the column may be missing, not because a site's rows are.
    const miss = missing.has(c.name) || hasMissing(c);
    if (c.kind === 'categorical') return { name: c.name, kind: 'categorical', categories: [...c.categories], missing: miss };
    if (!(c.min < c.max)) throw badArgument(`column "${c.name}": declared max (${c.max}) must exceed min (${c.min})`);
    const decimals = c.integer ? 0 : c.decimals;
    const step = 10 ** -decimals;
    // Grid values k·step inside [min, max]; the 1e-9 absorbs float noise in min/step.
    const k0 = Math.ceil(c.min / step - 1e-9);
    const k1 = Math.floor(c.max / step + 1e-9);
    const values = k1 - k0 + 1;
    let edges: number[];
    if (values >= 1 && values <= bins) {
      // One bin per grid value, centred on it: decoding returns the value itself.
      edges = Array.from({ length: values + 1 }, (_, k) => (k0 + k - 0.5) * step);
    } else {
      const w = (c.max - c.min) / bins;
      edges = Array.from({ length: bins + 1 }, (_, k) => (k === bins ? c.max : c.min + k * w));
    }
    return { name: c.name, kind: 'numeric', edges, min: c.min, max: c.max, integer: c.integer, decimals, missing: miss };
  });
  return { columns };
}

/** True for what counts as a missing cell: empty (after trimming), null, undefined, NaN. */
export function isMissingCell(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'string' && v.trim() === '') || (typeof v === 'number' && Number.isNaN(v));
}

/** Index of the bin holding v: the largest k with edges[k] ≤ v (v = last edge goes to the last bin). */
function numericBin(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Bin index per row of each column (schema column order); throws on values the domain cannot hold. */
export function binTable(domain: Domain, table: Table): Int32Array[] {
  assertMatches(domain, table.schema);
  const n = table.rows.length;
  return domain.columns.map((c, k) => {
    const out = new Int32Array(n);
    const index = c.kind === 'categorical' ? new Map(c.categories.map((v, i) => [v, i])) : undefined;
    const missingBin = valueBins(c);
    for (let i = 0; i < n; i++) {
      const v = table.rows[i][k] as unknown;
      if (isMissingCell(v)) {
        if (!c.missing) {
          throw new FedtwinError('MARGINALS_MISSING_VALUE', `row ${i + 1}, column "${c.name}": missing value in a column without a missing-value bin`, {
            hint: 'Declare the column as allowing missing values (DomainOptions.missing)',
            details: { row: i + 1, column: c.name },
          });
        }
        out[i] = missingBin;
        continue;
      }
      if (c.kind === 'categorical') {
        const b = (index as Map<string, number>).get(String(v));
        if (b === undefined) {
          throw new FedtwinError('MARGINALS_BAD_VALUE', `row ${i + 1}, column "${c.name}": ${JSON.stringify(v)} is not a declared category`, { details: { row: i + 1, column: c.name } });
        }
        out[i] = b;
        continue;
      }
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new FedtwinError('MARGINALS_BAD_VALUE', `row ${i + 1}, column "${c.name}": ${JSON.stringify(v)} is not a finite number`, { details: { row: i + 1, column: c.name } });
      }
      // Outside the declared bounds is a validation failure upstream (tableFromCsv refuses or clamps);
      // silently clamping here would hide it.
      if (v < c.min || v > c.max) {
        throw new FedtwinError('MARGINALS_OUT_OF_RANGE', `row ${i + 1}, column "${c.name}": ${v} is outside the declared range [${c.min}, ${c.max}]`, {
          hint: 'Validate the table against the schema first (tableFromCsv, optionally with clampOutOfRange)',
          details: { row: i + 1, column: c.name, value: v },
        });
      }
      out[i] = numericBin(c.edges, v);
    }
    return out;
  });
}

/** Throws MARGINALS_SCHEMA_MISMATCH unless the table's columns are the domain's, in order. */
export function assertMatches(domain: Domain, schema: TableSchema): void {
  const names = schema.columns.map((c) => c.name);
  const want = domain.columns.map((c) => c.name);
  if (names.length !== want.length || names.some((n, k) => n !== want[k])) {
    throw new FedtwinError('MARGINALS_SCHEMA_MISMATCH', `table columns (${names.join(', ')}) are not the domain's (${want.join(', ')})`, {
      hint: 'Count tables read with the consortium schema the domain was built from',
    });
  }
  schema.columns.forEach((c, k) => {
    const d = domain.columns[k];
    if (c.kind !== d.kind) throw new FedtwinError('MARGINALS_SCHEMA_MISMATCH', `column "${c.name}" is ${c.kind} in the table, ${d.kind} in the domain`);
  });
}

export type CoarsenMode = 'noisy-quantiles' | 'equal-width';

export interface Coarsening {
  /** The coarse domain: numeric edges are a subset of the fine ones; categorical columns unchanged. */
  domain: Domain;
  /** Per column, fine bin → coarse bin (the missing bin maps to the missing bin). */
  groups: Int32Array[];
}

/**
 * Merge each numeric column's fine bins into at most `bins` contiguous coarse bins. 'noisy-quantiles'
 * cuts where the cumulative estimated mass (`fineCounts`, e.g. the projected noisy first-round counts:
 * DP, so public) crosses k/bins of the total, which puts resolution where the data are; 'equal-width'
 * merges equal runs of fine bins and ignores the counts. Empty runs at either end are folded into
 * their neighbour so no coarse bin is known to be empty.
 */
export function coarsenDomain(fine: Domain, fineCounts: ReadonlyArray<ArrayLike<number>> | undefined, bins: number | readonly number[], mode: CoarsenMode = 'noisy-quantiles'): Coarsening {
  const want = (k: number): number => {
    const b = typeof bins === 'number' ? bins : bins[k];
    if (!Number.isInteger(b) || b < 1) throw badArgument(`coarse bins must be integers ≥ 1, got ${b}`);
    return b;
  };
  if (mode === 'noisy-quantiles' && fineCounts === undefined) throw badArgument("'noisy-quantiles' coarsening needs the fine counts");
  if (fineCounts !== undefined && fineCounts.length !== fine.columns.length) throw badArgument(`fineCounts has ${fineCounts.length} columns, the domain ${fine.columns.length}`);
  const groups: Int32Array[] = [];
  const columns = fine.columns.map((c, k): ColumnDomain => {
    const size = columnSize(c);
    if (c.kind === 'categorical') {
      groups.push(Int32Array.from({ length: size }, (_, i) => i));
      return { ...c, categories: [...c.categories] };
    }
    const nv = valueBins(c);
    const b = Math.min(want(k), nv);
    let cuts: number[]; // coarse bin q covers fine bins [cuts[q], cuts[q+1])
    if (mode === 'equal-width') {
      cuts = Array.from({ length: b + 1 }, (_, q) => Math.round((q * nv) / b));
    } else {
      const w = fineCounts?.[k] as ArrayLike<number>;
      if (w.length !== size) throw badArgument(`fineCounts[${k}] has ${w.length} bins, column "${c.name}" has ${size}`);
      cuts = quantileCuts(w, nv, b);
    }
    const g = new Int32Array(size);
    for (let q = 0; q + 1 < cuts.length; q++) for (let f = cuts[q]; f < cuts[q + 1]; f++) g[f] = q;
    if (c.missing) g[nv] = cuts.length - 1;
    groups.push(g);
    return { ...c, edges: cuts.map((f) => c.edges[f]) };
  });
  return { domain: { columns }, groups };
}

/** Cut points (fine-bin indices, first 0, last nv) of ≤ b runs holding about equal positive mass. */
function quantileCuts(w: ArrayLike<number>, nv: number, b: number): number[] {
  let total = 0;
  for (let f = 0; f < nv; f++) total += Math.max(0, w[f]);
  if (!(total > 0)) return Array.from({ length: b + 1 }, (_, q) => Math.round((q * nv) / b));
  const cuts = [0];
  let cum = 0;
  let next = 1;
  for (let f = 0; f < nv && next < b; f++) {
    cum += Math.max(0, w[f]);
    // Cut after fine bin f once the mass so far reaches the next quantile; a heavy fine bin may cover
    // several quantiles, so skip the ones it passed (fewer, never empty, coarse bins).
    if (cum >= (next * total) / b && f + 1 < nv) {
      cuts.push(f + 1);
      while (next < b && cum >= (next * total) / b) next++;
    }
  }
  cuts.push(nv);
  // Fold a massless first or last run into its neighbour.
  const mass = (a: number, z: number): number => {
    let s = 0;
    for (let f = a; f < z; f++) s += Math.max(0, w[f]);
    return s;
  };
  if (cuts.length > 2 && mass(cuts[0], cuts[1]) === 0) cuts.splice(1, 1);
  if (cuts.length > 2 && mass(cuts[cuts.length - 2], cuts[cuts.length - 1]) === 0) cuts.splice(cuts.length - 2, 1);
  return cuts;
}
