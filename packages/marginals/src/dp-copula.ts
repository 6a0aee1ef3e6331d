// A DP Gaussian copula on one (pooled) table: the plain baseline issue 14's review measured fedtwin against, written
// for the benchmark (bench/twin.ts) so the comparison runs on the same splits, the same ε and the same evaluation.
//
// Three Gaussian releases, each with the same noise multiplier z (so each takes a third of the privacy), composed by
// @fedtwin/dp's RDP accountant at q = 1 and calibrated to the target (ε, δ):
//  1. class counts, one cell per target category (one record changes one cell by 1: sensitivity 1);
//  2. per class, a histogram of every other column over public bins (the schema's bounds, `bins` per numeric
//     column; one per declared category; a missing bin where declared): one record changes one cell of each of
//     the d histograms of its class, so the concatenated vector has L2 sensitivity √d;
//  3. the correlation of normal scores: each record's scores zⱼ = Φ⁻¹(Fⱼ(x)) with Fⱼ the pooled CDF of the
//     *noisy* histograms (public after release 2), clipped to ‖z‖ ≤ c; the sum of z·zᵀ over records, upper
//     triangle only (the diagonal is 1 after normalising), has L2 sensitivity c²/√2.
// Sampling: a class from the noisy class counts, z ~ N(0, R) with R the noisy correlation projected to the nearest
// valid correlation matrix (eigenvalues floored), uⱼ = Φ(zⱼ), each column from its class's noisy histogram by the
// inverse CDF (uniform within a numeric bin, rounded to the column's grid).
import { FedtwinError } from '@fedtwin/errors';
import { RdpAccountant, noiseMultiplierFor, normalCdf, type SampledGaussian } from '@fedtwin/dp';
import type { Cell, Table, TableSchema } from '@fedtwin/models';
import { CholeskyDecomposition, EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { binTable, columnSize, domainFromSchema, valueBins, type ColumnDomain } from './domain.ts';
import { MISSING_CELL } from './sample.ts';

export interface DpCopulaOptions {
  epsilon: number;
  delta: number;
  /** Bins per numeric column (integer columns with at most this many values get one bin per value). Default 16. */
  bins?: number;
  /** Columns that may hold missing cells (declared, public): they get a missing bin, sampled at its noisy rate. */
  missing?: readonly string[];
  /** Clip of a record's normal-score vector, as a multiple of √(columns). Default 1.25. */
  scoreClip?: number;
  /** N(0, 1) source for the releases' noise and for sampling. */
  normal: () => number;
  /** Uniform (0, 1) source for sampling. */
  uniform: () => number;
}

export interface DpCopula {
  schema: TableSchema;
  classes: string[];
  /** Noisy class frequencies (non-negative, summing to 1). */
  classProbs: number[];
  /** Per non-target column (schema order without the target), per class: noisy bin probabilities. */
  histograms: number[][][];
  /** The correlation of normal scores over the non-target columns, a valid correlation matrix. */
  correlation: number[][];
  /** The noise multiplier every release used, and the (ε, δ) the three compose to. */
  noiseMultiplier: number;
  epsilon: number;
  delta: number;
  domains: ColumnDomain[];
}

const bad = (message: string, hint?: string) => new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });

/** Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation, then one Halley step on Φ (relative error ~1e-15). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw bad(`normalQuantile needs p in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p > 1 - 0.02425) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else {
    const q = p - 0.5, r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** Non-negative, normalised; a vector with no positive mass becomes uniform. */
function toProbs(v: readonly number[]): number[] {
  const c = v.map((x) => Math.max(0, x));
  const s = c.reduce((a, b) => a + b, 0);
  return s > 0 ? c.map((x) => x / s) : c.map(() => 1 / c.length);
}

/** The nearest correlation matrix in the sense fedtwin needs: eigenvalues floored, unit diagonal. */
export function nearestCorrelation(m: readonly number[][], floor = 1e-3): number[][] {
  const d = m.length;
  const sym = new Matrix(d, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) sym.set(i, j, (m[i]![j]! + m[j]![i]!) / 2);
  const evd = new EigenvalueDecomposition(sym, { assumeSymmetric: true });
  const V = evd.eigenvectorMatrix;
  const L = Matrix.diag(evd.realEigenvalues.map((x) => Math.max(floor, x)));
  const r = V.mmul(L).mmul(V.transpose());
  const s = Array.from({ length: d }, (_, i) => Math.sqrt(r.get(i, i)));
  // Averaged with the transpose: V·L·Vᵀ is symmetric only up to rounding, and Cholesky checks exactly.
  return Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : (r.get(i, j) + r.get(j, i)) / (2 * s[i]! * s[j]!))));
}

/** Fits the copula to `table` under (ε, δ)-DP (add/remove one row). ε = Infinity fits without noise. */
export function fitDpCopula(table: Table, opts: DpCopulaOptions): DpCopula {
  const { schema } = table;
  if (!(opts.epsilon > 0)) throw bad(`epsilon must be > 0 (Infinity for no noise), got ${opts.epsilon}`);
  if (!(opts.delta > 0 && opts.delta < 1)) throw bad(`delta must be in (0, 1), got ${opts.delta}`);
  const ti = schema.columns.findIndex((c) => c.name === schema.target);
  const target = schema.columns[ti];
  if (!target || target.kind !== 'categorical') throw bad(`the target "${schema.target}" must be a categorical column of the schema`);
  if (table.rows.length === 0) throw bad('the table has no rows');
  const domain = domainFromSchema(schema, { bins: opts.bins ?? 16, ...(opts.missing ? { missing: opts.missing } : {}) });
  const binned = binTable(domain, table);
  const cols = domain.columns.map((c, k) => ({ c, k })).filter(({ k }) => k !== ti);
  const d = cols.length;
  const classes = target.categories;
  const n = table.rows.length;
  const y = binned[ti]!;

  // One noise multiplier for the three releases, calibrated on the exact composition.
  const z = Number.isFinite(opts.epsilon) ? noiseMultiplierFor({ epsilon: opts.epsilon, sampleRate: 1, steps: 3, delta: opts.delta }).noiseMultiplier : 0;
  const noisy = (v: number, sensitivity: number) => (z > 0 ? v + z * sensitivity * opts.normal() : v);

  // 1. class counts
  const classCounts = classes.map(() => 0);
  for (let i = 0; i < n; i++) classCounts[y[i]!]!++;
  const classNoisy = classCounts.map((v) => noisy(v, 1));
  const total = Math.max(1, classNoisy.reduce((a, b) => a + Math.max(0, b), 0));

  // 2. per-class histograms of every other column (one vector, sensitivity √d)
  const histograms = cols.map(({ c, k }) => {
    const size = columnSize(c);
    const counts = classes.map(() => new Array<number>(size).fill(0));
    const b = binned[k]!;
    for (let i = 0; i < n; i++) counts[y[i]!]![b[i]!]!++;
    return counts.map((row) => toProbs(row.map((v) => noisy(v, Math.sqrt(d)))));
  });

  // 3. correlation of clipped normal scores under the pooled noisy CDFs
  const pooled = histograms.map((perClass) => {
    const p = perClass[0]!.map((_, j) => perClass.reduce((s, h, ci) => s + h[j]! * Math.max(0, classNoisy[ci]!), 0));
    return toProbs(p);
  });
  const starts = pooled.map((p) => { let s = 0; return p.map((x) => { const a = s; s += x; return a; }); });
  const clip = (opts.scoreClip ?? 1.25) * Math.sqrt(d);
  const sum = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const score = new Array<number>(d);
  for (let i = 0; i < n; i++) {
    let norm2 = 0;
    for (let j = 0; j < d; j++) {
      const bin = binned[cols[j]!.k]![i]!;
      // Mid-point of the record's bin under the noisy CDF, kept off 0 and 1.
      const u = Math.min(1 - 1e-6, Math.max(1e-6, starts[j]![bin]! + pooled[j]![bin]! / 2));
      score[j] = normalQuantile(u);
      norm2 += score[j]! ** 2;
    }
    const scale = norm2 > clip * clip ? clip / Math.sqrt(norm2) : 1;
    for (let a = 0; a < d; a++) for (let b = a + 1; b < d; b++) sum[a]![b]! += score[a]! * score[b]! * scale * scale;
  }
  const corr: number[][] = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, b) => (a === b ? 1 : 0)));
  for (let a = 0; a < d; a++) {
    for (let b = a + 1; b < d; b++) {
      const r = Math.max(-1, Math.min(1, noisy(sum[a]![b]!, (clip * clip) / Math.SQRT2) / total));
      corr[a]![b] = r;
      corr[b]![a] = r;
    }
  }
  const correlation = d > 1 ? nearestCorrelation(corr) : corr;

  const steps: SampledGaussian[] = z > 0 ? [{ sampleRate: 1, noiseMultiplier: z, steps: 3 }] : [];
  const acc = new RdpAccountant();
  for (const m of steps) acc.compose(m);
  return {
    schema, classes, classProbs: toProbs(classNoisy), histograms, correlation, noiseMultiplier: z,
    epsilon: z > 0 ? acc.getEpsilon(opts.delta).epsilon : Infinity, delta: opts.delta, domains: cols.map(({ c }) => c),
  };
}

/** `rows` synthetic rows in schema column order (missing cells as MISSING_CELL). */
export function sampleDpCopula(model: DpCopula, rows: number, rng: { normal: () => number; uniform: () => number }): Table {
  if (!Number.isInteger(rows) || rows < 0) throw bad(`rows must be a non-negative integer, got ${rows}`);
  const d = model.domains.length;
  const L = d > 0 ? new CholeskyDecomposition(new Matrix(model.correlation)).lowerTriangularMatrix : new Matrix(0, 0);
  const ti = model.schema.columns.findIndex((c) => c.name === model.schema.target);
  const pick = (p: readonly number[], u: number) => {
    let s = 0;
    for (let k = 0; k < p.length; k++) { s += p[k]!; if (u < s) return { k, within: p[k]! > 0 ? (u - (s - p[k]!)) / p[k]! : 0.5 }; }
    return { k: p.length - 1, within: 0.5 };
  };
  const out: Cell[][] = [];
  const e = new Array<number>(d);
  for (let r = 0; r < rows; r++) {
    const ci = pick(model.classProbs, rng.uniform()).k;
    for (let j = 0; j < d; j++) e[j] = rng.normal();
    const row: Cell[] = new Array(model.schema.columns.length);
    row[ti] = model.classes[ci]!;
    let j = 0;
    for (let k = 0; k < model.schema.columns.length; k++) {
      if (k === ti) continue;
      let zj = 0;
      for (let m = 0; m <= j; m++) zj += L.get(j, m) * e[m]!;
      const { k: bin, within } = pick(model.histograms[j]![ci]!, Math.min(1 - 1e-12, normalCdf(zj)));
      const c = model.domains[j]!;
      if (bin >= valueBins(c)) row[k] = MISSING_CELL;
      else if (c.kind === 'categorical') row[k] = c.categories[bin]!;
      else {
        const v = c.edges[bin]! + within * (c.edges[bin + 1]! - c.edges[bin]!);
        const step = 10 ** -c.decimals;
        row[k] = Math.min(c.max, Math.max(c.min, Number((Math.round(v / step) * step).toFixed(c.decimals))));
      }
      j++;
    }
    out.push(row);
  }
  return { schema: model.schema, rows: out };
}
