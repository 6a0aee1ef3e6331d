// From noisy marginals to a consistent tree model. Noisy counts are negative in places and disagree
// with each other (a column's 1-way counts vs the row sums of each 2-way table it is in). The fit:
//  1. the total N̂: inverse-variance weighted mean of every measurement's total;
//  2. each column's 1-way: inverse-variance weighted mean of its own measurement and of the margins of
//     the 2-way tables it is in, then the Euclidean projection onto {x ≥ 0, Σx = N̂} (least squares
//     under the constraints, as Private-PGM's estimate is for a single clique);
//  3. each tree edge's table: the same projection, then iterative proportional fitting so its row and
//     column sums are the two 1-way estimates (IPF keeps the table's odds ratios, i.e. the measured
//     dependence, and makes the tree's marginals consistent, so the tree defines one distribution).
// Everything here is post-processing of released noisy counts: no privacy cost, any member can run it.
import { FedtwinError } from '@fedtwin/errors';
import type { TableSchema } from '@fedtwin/models';
import type { Domain } from './domain.ts';
import { columnSize } from './domain.ts';
import type { Marginal } from './counts.ts';
import { marginalSize } from './counts.ts';
import type { Edge } from './select.ts';

/** A released noisy marginal and the noise variance of each cell (one number: the same for all). */
export interface Measurement {
  marginal: Marginal;
  values: Float64Array;
  variance: number | Float64Array;
}

export const TREE_MODEL_FORMAT = 'fedtwin-marginals-tree/1';

/** A fitted tree model: JSON-serialisable, enough to sample rows in the schema's columns and formats. */
export interface TreeModel {
  format: typeof TREE_MODEL_FORMAT;
  schema: TableSchema;
  /** The coarse domain the model's tables are over. */
  domain: Domain;
  /** Estimated number of records (N̂). */
  total: number;
  /** Ancestral order: every column after its parent. */
  order: number[];
  /** Parent column per column; −1 for a root. */
  parent: number[];
  edges: Array<[number, number]>;
  /** Per column, its estimated 1-way distribution over coarse bins (sums to 1). */
  oneWay: number[][];
  /** Per non-root column, P(column | parent): row-major [parent bin][column bin], rows sum to 1. */
  conditional: Array<number[] | null>;
  /** Per numeric column, how a coarse bin spreads over the fine bins inside it: the fine edges, the
   *  coarse bin of each fine bin, and the fine bins' estimated (non-negative) mass. */
  within: Array<{ edges: number[]; groups: number[]; weights: number[] } | null>;
}

function badArgument(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message);
}

/**
 * Euclidean projection of y onto {x ≥ 0, Σx = total}: x = max(y − τ, 0) with τ chosen so the sum is
 * `total` (sort-based, O(n log n)). With y already a non-negative vector summing to total it is y.
 */
export function projectSimplex(y: ArrayLike<number>, total: number): Float64Array {
  const n = y.length;
  if (n === 0) throw badArgument('projectSimplex of an empty vector');
  if (!(total >= 0) || !Number.isFinite(total)) throw badArgument(`total must be a finite number ≥ 0, got ${total}`);
  const u = Float64Array.from(y).sort().reverse();
  let cum = 0;
  // k = 0 always qualifies (u[0] − τ₀ = total ≥ 0); with total = 0 it is the answer (all zeros).
  let tau = u[0] - total;
  for (let k = 0; k < n; k++) {
    cum += u[k];
    const t = (cum - total) / (k + 1);
    // The largest k with u[k] > t defines τ (Held, Wolfe & Crowder 1974; Duchi et al. 2008).
    if (u[k] - t > 0) tau = t;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.max(0, y[i] - tau);
  return out;
}

function cellVariance(m: Measurement, i: number): number {
  return typeof m.variance === 'number' ? m.variance : m.variance[i];
}

/** Inverse-variance weighted mean of the measurements' totals (exact when any is noiseless). */
export function estimateTotal(measurements: readonly Measurement[]): number {
  let num = 0;
  let den = 0;
  let exact: number | undefined;
  for (const m of measurements) {
    let t = 0;
    let v = 0;
    for (let i = 0; i < m.values.length; i++) {
      t += m.values[i];
      v += cellVariance(m, i);
    }
    if (v === 0) exact = t;
    else {
      num += t / v;
      den += 1 / v;
    }
  }
  if (exact !== undefined) return Math.max(0, exact);
  if (den === 0) throw badArgument('estimateTotal needs at least one measurement');
  return Math.max(1, num / den);
}

/** Per column, the 1-way estimates every measurement gives (own 1-way, or a 2-way's margin) with variances. */
function oneWayEvidence(domain: Domain, measurements: readonly Measurement[]): Array<Array<{ values: Float64Array; variance: Float64Array }>> {
  const ev: Array<Array<{ values: Float64Array; variance: Float64Array }>> = domain.columns.map(() => []);
  for (const m of measurements) {
    const size = marginalSize(domain, m.marginal);
    if (m.values.length !== size) throw badArgument(`measurement ${JSON.stringify(m.marginal)} has ${m.values.length} cells, expected ${size}`);
    if (m.marginal.length === 1) {
      const variance = Float64Array.from({ length: size }, (_, i) => cellVariance(m, i));
      ev[m.marginal[0]].push({ values: m.values, variance });
    } else if (m.marginal.length === 2) {
      const [a, b] = m.marginal;
      const na = columnSize(domain.columns[a]);
      const nb = columnSize(domain.columns[b]);
      const ra = new Float64Array(na);
      const va = new Float64Array(na);
      const rb = new Float64Array(nb);
      const vb = new Float64Array(nb);
      for (let i = 0; i < na; i++) {
        for (let j = 0; j < nb; j++) {
          const x = m.values[i * nb + j];
          const v = cellVariance(m, i * nb + j);
          ra[i] += x;
          va[i] += v;
          rb[j] += x;
          vb[j] += v;
        }
      }
      ev[a].push({ values: ra, variance: va });
      ev[b].push({ values: rb, variance: vb });
    }
    // Higher-order marginals are not produced by MST; they would add evidence the same way.
  }
  return ev;
}

/** Each column's 1-way counts: combined evidence, projected onto {x ≥ 0, Σx = total}. */
export function estimateOneWays(domain: Domain, measurements: readonly Measurement[], total: number): Float64Array[] {
  const ev = oneWayEvidence(domain, measurements);
  return domain.columns.map((c, k) => {
    const size = columnSize(c);
    const list = ev[k];
    if (list.length === 0) throw badArgument(`column "${c.name}" is in no measurement`);
    const est = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const exact = list.filter((e) => e.variance[i] === 0);
      if (exact.length > 0) {
        est[i] = exact.reduce((s, e) => s + e.values[i], 0) / exact.length;
        continue;
      }
      let num = 0;
      let den = 0;
      for (const e of list) {
        num += e.values[i] / e.variance[i];
        den += 1 / e.variance[i];
      }
      est[i] = num / den;
    }
    return projectSimplex(est, total);
  });
}

/**
 * Iterative proportional fitting of a non-negative na×nb table to row sums `rows` and column sums
 * `cols` (both summing to the same total). A tiny multiple of the independence table is added first so
 * that a row or column the noise emptied can still take its target mass (IPF cannot scale zeros).
 */
export function ipf(table: ArrayLike<number>, rows: ArrayLike<number>, cols: ArrayLike<number>, opts: { iterations?: number; tolerance?: number; floor?: number } = {}): Float64Array {
  const na = rows.length;
  const nb = cols.length;
  if (table.length !== na * nb) throw badArgument(`ipf: table has ${table.length} cells for ${na}×${nb}`);
  const total = sum(rows);
  if (Math.abs(total - sum(cols)) > 1e-9 * Math.max(1, total)) throw badArgument(`ipf: row sums (${total}) and column sums (${sum(cols)}) differ`);
  const floor = opts.floor ?? 1e-6;
  const iterations = opts.iterations ?? 500;
  const tol = (opts.tolerance ?? 1e-10) * Math.max(1, total);
  const t = new Float64Array(na * nb);
  for (let i = 0; i < na; i++) {
    for (let j = 0; j < nb; j++) {
      const v = table[i * nb + j];
      if (!(v >= 0)) throw badArgument(`ipf: cell ${i * nb + j} is ${v}, tables must be non-negative`);
      t[i * nb + j] = v + (total > 0 ? (floor * rows[i] * cols[j]) / total : 0);
    }
  }
  const rs = new Float64Array(na);
  const cs = new Float64Array(nb);
  for (let it = 0; it < iterations; it++) {
    rs.fill(0);
    for (let i = 0; i < na; i++) for (let j = 0; j < nb; j++) rs[i] += t[i * nb + j];
    for (let i = 0; i < na; i++) {
      const f = rs[i] > 0 ? rows[i] / rs[i] : 0;
      for (let j = 0; j < nb; j++) t[i * nb + j] *= f;
    }
    cs.fill(0);
    for (let i = 0; i < na; i++) for (let j = 0; j < nb; j++) cs[j] += t[i * nb + j];
    let err = 0;
    for (let j = 0; j < nb; j++) {
      const f = cs[j] > 0 ? cols[j] / cs[j] : 0;
      for (let i = 0; i < na; i++) t[i * nb + j] *= f;
      err = Math.max(err, Math.abs(cs[j] - cols[j]));
    }
    // After the column step the columns are exact; the row error left is bounded by the last column error.
    if (err <= tol) break;
  }
  return t;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

export interface FitTreeOptions {
  /** The number of records to fit to; default estimateTotal(measurements). Pass the estimate other
   *  released counts were already made consistent with (projecting onto a different total shifts every
   *  cell by the same amount, which distorts small bins). */
  total?: number;
  /** Column to root the tree at (conditional sampling of it is then direct). Default: the schema's target. */
  root?: number;
  /** Per numeric column, the fine bins inside each coarse bin and their estimated mass (see TreeModel.within). */
  within?: TreeModel['within'];
}

/**
 * Fit the tree model with the given edges to the measurements (1-way and 2-way marginals over `domain`).
 * Columns not joined by the edges become extra roots (a forest samples them independently).
 */
export function fitTree(schema: TableSchema, domain: Domain, measurements: readonly Measurement[], edges: readonly Edge[], opts: FitTreeOptions = {}): TreeModel {
  const d = domain.columns.length;
  if (schema.columns.length !== d) throw badArgument(`schema has ${schema.columns.length} columns, the domain ${d}`);
  const total = opts.total ?? estimateTotal(measurements);
  if (!(total >= 0) || !Number.isFinite(total)) throw badArgument(`total must be a finite number ≥ 0, got ${total}`);
  const oneWay = estimateOneWays(domain, measurements, total);
  const byPair = new Map<string, Measurement>();
  for (const m of measurements) if (m.marginal.length === 2) byPair.set(`${m.marginal[0]},${m.marginal[1]}`, m);
  // Tree structure from the root(s), breadth first.
  const adj: number[][] = Array.from({ length: d }, () => []);
  for (const [a, b] of edges) {
    adj[a].push(b);
    adj[b].push(a);
  }
  const target = schema.columns.findIndex((c) => c.name === schema.target);
  const root = opts.root ?? (target >= 0 ? target : 0);
  if (!Number.isInteger(root) || root < 0 || root >= d) throw badArgument(`root ${root} is not a column index`);
  const parent = new Array<number>(d).fill(-2);
  const order: number[] = [];
  for (const start of [root, ...Array.from({ length: d }, (_, i) => i)]) {
    if (parent[start] !== -2) continue;
    parent[start] = -1;
    const queue = [start];
    while (queue.length > 0) {
      const u = queue.shift() as number;
      order.push(u);
      for (const v of adj[u]) {
        if (parent[v] !== -2) continue;
        parent[v] = u;
        queue.push(v);
      }
    }
  }
  if (order.length !== d) throw badArgument('edges do not form a forest over the columns');
  const conditional: Array<number[] | null> = new Array(d).fill(null);
  for (const c of order) {
    const p = parent[c];
    if (p < 0) continue;
    const [a, b] = p < c ? [p, c] : [c, p];
    const m = byPair.get(`${a},${b}`);
    if (m === undefined) throw badArgument(`edge (${a}, ${b}) has no 2-way measurement`);
    const table = ipf(projectSimplex(m.values, total), oneWay[a], oneWay[b]);
    const np = columnSize(domain.columns[p]);
    const nc = columnSize(domain.columns[c]);
    const nb = columnSize(domain.columns[b]);
    const cond = new Array<number>(np * nc);
    for (let i = 0; i < np; i++) {
      let rowSum = 0;
      for (let j = 0; j < nc; j++) rowSum += p === a ? table[i * nb + j] : table[j * nb + i];
      for (let j = 0; j < nc; j++) {
        const v = p === a ? table[i * nb + j] : table[j * nb + i];
        // A parent bin with no mass is never sampled; give it the child's 1-way so rows still sum to 1.
        cond[i * nc + j] = rowSum > 0 ? v / rowSum : oneWay[c][j] / Math.max(total, Number.MIN_VALUE);
      }
    }
    conditional[c] = cond;
  }
  const probs = oneWay.map((w) => {
    const s = sum(w);
    return Array.from(w, (x) => (s > 0 ? x / s : 1 / w.length));
  });
  return {
    format: TREE_MODEL_FORMAT,
    schema,
    domain,
    total,
    order,
    parent,
    edges: edges.map(([a, b]) => [a, b] as [number, number]),
    oneWay: probs,
    conditional,
    within: opts.within ?? domain.columns.map(() => null),
  };
}
