// Sampling rows from a fitted tree model: ancestral sampling over the tree (each column given its
// parent's bin), then bins back to values in the schema's formats. Post-processing: costs no ε, and a
// seeded stream is fine here (the noise that protects the data was added before the model existed).
import { FedtwinError } from '@fedtwin/errors';
import { drawIndex, type Cell, type Table } from '@fedtwin/models';
import { columnSize, valueBins, type ColumnDomain } from './domain.ts';
import type { TreeModel } from './fit.ts';
import { TREE_MODEL_FORMAT } from './fit.ts';

/** A missing cell in a sampled Table (tableToCsv writes it as an empty field). */
export const MISSING_CELL: Cell = null;

function badModel(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_MODEL', message, { hint: 'Use a model produced by fitTree / fitMst' });
}


function rowSums(p: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const s = new Float64Array(rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) s[i] += p[i * cols + j];
  return s;
}

/**
 * How `m` draws from the distribution ∝ max(0, w[off + k]), k < n, fall on the bins under **systematic sampling**
 * (Madow 1949; what Private-PGM's `synthetic_data(method='round')` does for MST's release): the points
 * (j + u)/m, j < m, one uniform u, mapped through the inverse CDF. Bin k gets ⌊m·p_k⌋ or ⌈m·p_k⌉ draws and
 * exactly m·p_k in expectation, so after a random permutation every draw still has the marginal p; what goes is
 * the multinomial spread of iid draws (variance m·p(1−p) per bin), the part of a release's error that says
 * nothing about the data. `total` is the sum of the positive weights (> 0).
 */
export function systematicCounts(w: ArrayLike<number>, off: number, n: number, total: number, m: number, u: number): Int32Array {
  if (!(total > 0)) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `systematicCounts needs positive weights, total ${total}`);
  if (!(u >= 0 && u < 1)) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `u must be in [0, 1), got ${u}`);
  const out = new Int32Array(n);
  let cum = 0;
  let given = 0;
  let last = -1;
  for (let k = 0; k < n; k++) {
    const p = w[off + k];
    if (!(p > 0)) continue;
    last = k;
    cum += p;
    // Points (j + u)/m at or below the CDF so far: ⌊m·F + 1 − u⌋ of them (capped at m against rounding).
    const upTo = Math.min(m, Math.floor((m * cum) / total + 1 - u));
    out[k] = upTo - given;
    given = upTo;
  }
  if (given < m && last >= 0) out[last] += m - given; // rounding left some points past the last bin
  return out;
}

/** Fisher–Yates shuffle in place, one uniform per position. */
function shuffle(a: Int32Array | number[], uniform: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(uniform() * (i + 1)));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/** `m` bins drawn systematically from ∝ w[off..off+n), in random order. */
function systematicDraws(w: ArrayLike<number>, off: number, n: number, total: number, m: number, uniform: () => number): Int32Array {
  const counts = systematicCounts(w, off, n, total, m, uniform());
  const out = new Int32Array(m);
  let i = 0;
  for (let k = 0; k < n; k++) for (let c = 0; c < counts[k]; c++) out[i++] = k;
  shuffle(out, uniform);
  return out;
}

/** How rows are drawn: 'systematic' (default; see systematicCounts) or independent draws ('iid'). */
export type SampleMethod = 'systematic' | 'iid';

/** Check the model's shape (a model read from JSON); throws MARGINALS_BAD_MODEL. */
export function checkTreeModel(model: TreeModel): void {
  if (model?.format !== TREE_MODEL_FORMAT) throw badModel(`not a tree model (format ${JSON.stringify(model?.format)})`);
  const d = model.domain.columns.length;
  if (model.schema.columns.length !== d || model.parent.length !== d || model.oneWay.length !== d || model.conditional.length !== d || model.within.length !== d) {
    throw badModel('per-column arrays do not match the number of columns');
  }
  const seen = new Set<number>();
  for (const c of model.order) {
    const p = model.parent[c];
    if (p >= 0 && !seen.has(p)) throw badModel(`column ${c} comes before its parent ${p} in the order`);
    seen.add(c);
    const n = columnSize(model.domain.columns[c]);
    if (model.oneWay[c].length !== n) throw badModel(`column ${c}: 1-way has ${model.oneWay[c].length} bins, expected ${n}`);
    const cond = model.conditional[c];
    if (p >= 0 && (cond === null || cond.length !== columnSize(model.domain.columns[p]) * n)) throw badModel(`column ${c}: conditional table has the wrong size`);
  }
  if (seen.size !== d) throw badModel('the order does not list every column once');
}

/**
 * Draw n rows of coarse bins, one Int32Array per column. `fixed` pins a root column to a bin (e.g. the
 * target rooted tree sampled for one class); its descendants follow from the conditionals.
 */
export function sampleBins(model: TreeModel, n: number, uniform: () => number, fixed?: { column: number; bin: number }, method: SampleMethod = 'systematic'): Int32Array[] {
  checkTreeModel(model);
  if (!Number.isInteger(n) || n < 0) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `rows must be an integer ≥ 0, got ${n}`);
  const d = model.domain.columns.length;
  if (fixed !== undefined) {
    if (model.parent[fixed.column] !== -1) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `column ${fixed.column} is not a root of the tree: cannot pin it without conditioning upwards`);
    if (!(fixed.bin >= 0 && fixed.bin < columnSize(model.domain.columns[fixed.column]))) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `bin ${fixed.bin} is not a bin of column ${fixed.column}`);
  }
  const out = Array.from({ length: d }, () => new Int32Array(n));
  for (const c of model.order) {
    const nc = columnSize(model.domain.columns[c]);
    const p = model.parent[c];
    const col = out[c];
    if (fixed !== undefined && fixed.column === c) {
      col.fill(fixed.bin);
      continue;
    }
    if (p < 0) {
      const w = model.oneWay[c];
      const t = w.reduce((s, x) => s + (x > 0 ? x : 0), 0);
      if (!(t > 0)) throw badModel(`column ${c} has an all-zero distribution`);
      if (method === 'systematic') col.set(systematicDraws(w, 0, nc, t, n, uniform));
      else for (let i = 0; i < n; i++) col[i] = drawIndex(w, 0, nc, t, uniform());
      continue;
    }
    const cond = model.conditional[c] as number[];
    const np = columnSize(model.domain.columns[p]);
    const totals = rowSums(cond.map((x) => (x > 0 ? x : 0)), np, nc);
    const pcol = out[p];
    if (method === 'systematic') {
      // Rows grouped by their parent's bin; each group draws its child bins systematically from its conditional.
      const groups = groupRows(pcol, np);
      for (let pb = 0; pb < np; pb++) {
        const rowsOf = groups[pb];
        if (rowsOf.length === 0) continue;
        if (!(totals[pb] > 0)) throw badModel(`column ${c}: the row of parent bin ${pb} is all zero`);
        const draws = systematicDraws(cond, pb * nc, nc, totals[pb], rowsOf.length, uniform);
        for (let j = 0; j < rowsOf.length; j++) col[rowsOf[j]] = draws[j];
      }
      continue;
    }
    for (let i = 0; i < n; i++) {
      const pb = pcol[i];
      if (!(totals[pb] > 0)) throw badModel(`column ${c}: the row of parent bin ${pb} is all zero`);
      col[i] = drawIndex(cond, pb * nc, nc, totals[pb], uniform());
    }
  }
  return out;
}

/** Row indices per bin (bins 0..size−1), in row order. */
function groupRows(bins: Int32Array, size: number): number[][] {
  const out: number[][] = Array.from({ length: size }, () => []);
  for (let i = 0; i < bins.length; i++) out[bins[i]]?.push(i);
  return out;
}

function roundTo(v: number, decimals: number): number {
  const r = Number(v.toFixed(decimals));
  return r === 0 ? 0 : r; // no -0
}

/**
 * The value at fraction `frac` of a numeric column's bin [edges[f], edges[f+1]) (the bin clipped to the declared
 * bounds), rounded to the column's decimals and kept inside the bounds without breaking that format.
 */
export function valueInBin(c: Extract<ColumnDomain, { kind: 'numeric' }>, edges: readonly number[], f: number, frac: number): number {
  const decimals = c.integer ? 0 : c.decimals;
  const scale = 10 ** decimals;
  const lo = Math.max(c.min, edges[f]);
  const hi = Math.min(c.max, edges[f + 1]);
  const v = roundTo(lo + Math.min(1, Math.max(0, frac)) * (hi - lo), decimals);
  if (v > c.max) return Math.floor(c.max * scale) / scale;
  if (v < c.min) return Math.ceil(c.min * scale) / scale;
  return v;
}

/**
 * Bins back to values, in schema column order: a categorical bin is its label; a numeric coarse bin's
 * distribution is piecewise uniform over the fine bins inside it, each with its estimated mass (by width if
 * none); a row takes the value at a quantile of it, rounded to the column's decimals and kept inside the
 * declared bounds; a missing bin is MISSING_CELL. 'systematic' (default): the m rows of a coarse bin take the
 * quantiles (j + u)/m, j < m, in random order (see systematicCounts); 'iid': an independent uniform each.
 */
export function decodeBins(model: TreeModel, bins: readonly Int32Array[], uniform: () => number, method: SampleMethod = 'systematic'): Cell[][] {
  const d = model.domain.columns.length;
  if (bins.length !== d) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `${bins.length} columns of bins for ${d} columns`);
  const n = bins[0]?.length ?? 0;
  const rows: Cell[][] = Array.from({ length: n }, () => new Array(d));
  model.domain.columns.forEach((c, k) => {
    const missingBin = valueBins(c);
    const b = bins[k];
    if (c.kind === 'categorical') {
      for (let i = 0; i < n; i++) rows[i][k] = b[i] === missingBin && c.missing ? MISSING_CELL : c.categories[b[i]];
      return;
    }
    // Fine bins per coarse bin, with their masses (uniform by width when the estimate has none).
    const w = model.within[k];
    const fineEdges = w?.edges ?? c.edges;
    const groups = w?.groups ?? Array.from({ length: c.edges.length - 1 }, (_, i) => i);
    const weights = w?.weights ?? new Array<number>(groups.length).fill(1);
    const members: number[][] = Array.from({ length: valueBins(c) }, () => []);
    for (let f = 0; f < fineEdges.length - 1; f++) members[groups[f]]?.push(f);
    const mass = members.map((fs) => fs.reduce((s, f) => s + Math.max(0, weights[f]), 0));
    // The value at quantile u of coarse bin q's within-bin distribution: piecewise uniform over its fine bins,
    // each with its estimated mass (by width when the bin has none), rounded to the column's decimals.
    const valueAt = (q: number, u: number): number => {
      const fs = members[q];
      if (fs === undefined || fs.length === 0) throw badModel(`column "${c.name}": coarse bin ${q} has no fine bins`);
      let f = fs[fs.length - 1];
      let frac = u;
      if (mass[q] > 0) {
        let r = u * mass[q];
        for (const g of fs) {
          const m = Math.max(0, weights[g]);
          if (m <= 0) continue;
          f = g;
          if (r < m) {
            frac = r / m;
            break;
          }
          r -= m;
          frac = 1;
        }
      } else {
        // No estimated mass in this coarse bin: spread by width (fine bins of one column are equal-width).
        const x = u * fs.length;
        const j = Math.min(fs.length - 1, Math.floor(x));
        f = fs[j];
        frac = x - j;
      }
      return valueInBin(c, fineEdges, f, frac);
    };
    if (method === 'iid') {
      for (let i = 0; i < n; i++) {
        const q = b[i];
        if (c.missing && q === missingBin) rows[i][k] = MISSING_CELL;
        else {
          // two uniforms as before: the fine bin, then the position inside it — here one quantile does both
          rows[i][k] = valueAt(q, uniform());
        }
      }
      return;
    }
    // Systematic: the rows of coarse bin q take the values at the quantiles (j + u)/m, j < m, in random order.
    const byBin = groupRows(b, columnSize(c));
    byBin.forEach((rowsOf, q) => {
      if (rowsOf.length === 0) return;
      if (c.missing && q === missingBin) {
        for (const i of rowsOf) rows[i][k] = MISSING_CELL;
        return;
      }
      const m = rowsOf.length;
      const u0 = uniform();
      const order = Array.from({ length: m }, (_, j) => j);
      shuffle(order, uniform);
      for (let j = 0; j < m; j++) rows[rowsOf[j]][k] = valueAt(q, (order[j] + u0) / m);
    });
  });
  return rows;
}

/** n synthetic rows as a Table with the model's schema (same columns, order and number formats). */
export function sampleTable(model: TreeModel, n: number, uniform: () => number, fixed?: { column: number; bin: number }, method: SampleMethod = 'systematic'): Table {
  const bins = sampleBins(model, n, uniform, fixed, method);
  return { schema: model.schema, rows: decodeBins(model, bins, uniform, method) };
}
