// Sampling rows from a fitted tree model: ancestral sampling over the tree (each column given its
// parent's bin), then bins back to values in the schema's formats. Post-processing: costs no ε, and a
// seeded stream is fine here (the noise that protects the data was added before the model existed).
import { FedtwinError } from '@fedtwin/errors';
import { drawIndex, type Cell, type Table } from '@fedtwin/models';
import { columnSize, valueBins } from './domain.ts';
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
export function sampleBins(model: TreeModel, n: number, uniform: () => number, fixed?: { column: number; bin: number }): Int32Array[] {
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
      for (let i = 0; i < n; i++) col[i] = drawIndex(w, 0, nc, t, uniform());
      continue;
    }
    const cond = model.conditional[c] as number[];
    const np = columnSize(model.domain.columns[p]);
    const totals = rowSums(cond.map((x) => (x > 0 ? x : 0)), np, nc);
    const pcol = out[p];
    for (let i = 0; i < n; i++) {
      const pb = pcol[i];
      if (!(totals[pb] > 0)) throw badModel(`column ${c}: the row of parent bin ${pb} is all zero`);
      col[i] = drawIndex(cond, pb * nc, nc, totals[pb], uniform());
    }
  }
  return out;
}

function roundTo(v: number, decimals: number): number {
  const r = Number(v.toFixed(decimals));
  return r === 0 ? 0 : r; // no -0
}

/**
 * Bins back to values, in schema column order: a categorical bin is its label; a numeric coarse bin
 * picks a fine bin inside it by the estimated fine mass (uniformly if none), then a uniform value inside
 * that, rounded to the column's decimals and kept inside the declared bounds; a missing bin is MISSING_CELL.
 */
export function decodeBins(model: TreeModel, bins: readonly Int32Array[], uniform: () => number): Cell[][] {
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
    const d0 = c.integer ? 0 : c.decimals;
    const scale = 10 ** d0;
    const hiOk = Math.floor(c.max * scale) / scale;
    const loOk = Math.ceil(c.min * scale) / scale;
    for (let i = 0; i < n; i++) {
      const q = b[i];
      if (c.missing && q === missingBin) {
        rows[i][k] = MISSING_CELL;
        continue;
      }
      const fs = members[q];
      if (fs === undefined || fs.length === 0) throw badModel(`column "${c.name}": coarse bin ${q} has no fine bins`);
      let f: number;
      if (mass[q] > 0) {
        let r = uniform() * mass[q];
        f = fs[fs.length - 1];
        for (const g of fs) {
          const m = Math.max(0, weights[g]);
          if (m <= 0) continue;
          r -= m;
          if (r < 0) {
            f = g;
            break;
          }
        }
      } else {
        // No estimated mass in this coarse bin: spread by width (fine bins of one column are equal-width).
        f = fs[Math.min(fs.length - 1, Math.floor(uniform() * fs.length))];
      }
      const lo = Math.max(c.min, fineEdges[f]);
      const hi = Math.min(c.max, fineEdges[f + 1]);
      let v = roundTo(lo + uniform() * (hi - lo), d0);
      if (v > c.max) v = hiOk;
      if (v < c.min) v = loOk;
      rows[i][k] = v;
    }
  });
  return rows;
}

/** n synthetic rows as a Table with the model's schema (same columns, order and number formats). */
export function sampleTable(model: TreeModel, n: number, uniform: () => number, fixed?: { column: number; bin: number }): Table {
  const bins = sampleBins(model, n, uniform, fixed);
  return { schema: model.schema, rows: decodeBins(model, bins, uniform) };
}
