// Fidelity (does synthetic data look like real data?) and utility (does a model trained on it
// work on real data?). Pure functions except the logistic regression, which trains with tfjs.
import * as tf from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';
import type { EncodedTable, Table, TableSchema } from './types.ts';
import { encodeTable } from './encode.ts';
import { targetIndex } from './schema.ts';
import { hasMissing, isMissing } from './missing.ts';
import { createPrng } from './random.ts';

// ---------------------------------------------------------------------------------------------
// Per-column similarity

function sortedFinite(v: ArrayLike<number>, what: string): Float64Array {
  const a = Float64Array.from(v as ArrayLike<number>);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new FedtwinError('DATA_BAD_VALUE', `${what}: non-finite value at ${i}`);
  return a.sort();
}

/** Two-sample Kolmogorov–Smirnov statistic D = sup_x |F_a(x) − F_b(x)| (ties handled exactly). */
export function ksStatistic(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length === 0 || b.length === 0) throw new FedtwinError('DATA_EMPTY', 'ksStatistic needs two non-empty samples');
  const x = sortedFinite(a, 'ksStatistic(a)');
  const y = sortedFinite(b, 'ksStatistic(b)');
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = x[i] <= y[j] ? x[i] : y[j];
    // Step past every copy of v in both samples before comparing the two ECDFs.
    while (i < x.length && x[i] === v) i++;
    while (j < y.length && y[j] === v) j++;
    const diff = Math.abs(i / x.length - j / y.length);
    if (diff > d) d = diff;
  }
  return d;
}

/** 1 − KS statistic: 1 for identical distributions, 0 for disjoint supports. */
export function ksComplement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return 1 - ksStatistic(a, b);
}

/** Total variation distance ½·Σ|p_k − q_k| between the empirical distributions of two samples. */
export function tvDistance(a: ArrayLike<string>, b: ArrayLike<string>): number {
  if (a.length === 0 || b.length === 0) throw new FedtwinError('DATA_EMPTY', 'tvDistance needs two non-empty samples');
  const ca = new Map<string, number>();
  const cb = new Map<string, number>();
  for (let i = 0; i < a.length; i++) ca.set(a[i], (ca.get(a[i]) ?? 0) + 1);
  for (let i = 0; i < b.length; i++) cb.set(b[i], (cb.get(b[i]) ?? 0) + 1);
  let s = 0;
  for (const k of new Set([...ca.keys(), ...cb.keys()])) s += Math.abs((ca.get(k) ?? 0) / a.length - (cb.get(k) ?? 0) / b.length);
  return s / 2;
}

/** 1 − total variation distance. */
export function tvComplement(a: ArrayLike<string>, b: ArrayLike<string>): number {
  return 1 - tvDistance(a, b);
}

/** Column k's present values (missing cells left out: their rate is scored apart, by missingnessReport). */
function column<T>(t: Table, k: number): T[] {
  const out: T[] = [];
  for (const r of t.rows) if (!isMissing(r[k])) out.push(r[k] as T);
  return out;
}

/** Score of two present-value samples; a column missing everywhere on one side only scores 0, on both 1. */
function presentScore<T>(a: T[], b: T[], score: (a: T[], b: T[]) => number): number {
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 1 : 0;
  return score(a, b);
}

/** Throws DATA_SCHEMA_MISMATCH unless both schemas have the same columns (name, kind, categories) and target. */
export function assertSameSchema(a: TableSchema, b: TableSchema): void {
  const bad = (why: string): never => {
    throw new FedtwinError('DATA_SCHEMA_MISMATCH', `tables have different schemas: ${why}`, { hint: 'Compare tables read with the same schema' });
  };
  if (a.target !== b.target) bad(`target "${a.target}" vs "${b.target}"`);
  if (a.columns.length !== b.columns.length) bad(`${a.columns.length} vs ${b.columns.length} columns`);
  a.columns.forEach((c, k) => {
    const d = b.columns[k];
    if (c.name !== d.name || c.kind !== d.kind) bad(`column ${k + 1}: ${c.name} (${c.kind}) vs ${d.name} (${d.kind})`);
    if (c.kind === 'categorical' && d.kind === 'categorical' && c.categories.join('\u0000') !== d.categories.join('\u0000')) {
      bad(`column "${c.name}" has different categories`);
    }
  });
}

function nonEmpty(t: Table, what: string): void {
  if (t.rows.length === 0) throw new FedtwinError('DATA_EMPTY', `${what} table has no rows`);
}

export interface ColumnScore {
  name: string;
  kind: 'numeric' | 'categorical';
  /** Which score (names as in SDMetrics). */
  metric: 'KSComplement' | 'TVComplement';
  /** KS complement (numeric) or TV complement (categorical), in [0, 1]; 1 = same marginal. */
  score: number;
}

/** Per-column marginal similarity over every column, the target included; over present values only. */
export function columnScores(real: Table, synth: Table): ColumnScore[] {
  assertSameSchema(real.schema, synth.schema);
  nonEmpty(real, 'real');
  nonEmpty(synth, 'synthetic');
  return real.schema.columns.map((c, k) => ({
    name: c.name,
    kind: c.kind,
    metric: c.kind === 'numeric' ? ('KSComplement' as const) : ('TVComplement' as const),
    score: c.kind === 'numeric'
      ? presentScore(column<number>(real, k), column<number>(synth, k), ksComplement)
      : presentScore(column<string>(real, k), column<string>(synth, k), tvComplement),
  }));
}

/** Fraction of a table's rows whose cell k is missing. */
export function missingRate(t: Table, k: number): number {
  if (t.rows.length === 0) return 0;
  let m = 0;
  for (const r of t.rows) if (isMissing(r[k])) m++;
  return m / t.rows.length;
}

export interface MissingnessScore {
  name: string;
  /** Fraction of missing cells in the real and the synthetic rows. */
  real: number;
  synthetic: number;
  /** 1 − |real − synthetic|: 1 = same missingness rate. */
  score: number;
}

export interface MissingnessReport {
  /** Every column the schema declares as allowing missing cells, in schema order. */
  columns: MissingnessScore[];
  /** Mean score over those columns. */
  mean: number;
}

/** Missingness-rate fidelity per column that may be missing; undefined when the schema declares none. */
export function missingnessReport(real: Table, synth: Table): MissingnessReport | undefined {
  assertSameSchema(real.schema, synth.schema);
  const columns: MissingnessScore[] = [];
  real.schema.columns.forEach((c, k) => {
    if (!hasMissing(c)) return;
    const r = missingRate(real, k);
    const s = missingRate(synth, k);
    columns.push({ name: c.name, real: r, synthetic: s, score: 1 - Math.abs(r - s) });
  });
  if (columns.length === 0) return undefined;
  return { columns, mean: columns.reduce((a, c) => a + c.score, 0) / columns.length };
}

// ---------------------------------------------------------------------------------------------
// Correlation structure

/** Encoded features plus the target's one-hot; `block[j]` names the source column of feature j. */
function correlationMatrixInput(t: Table): { x: Float64Array; rows: number; width: number; block: number[] } {
  const e = encodeTable(t);
  const k = e.classes.length;
  const width = e.width + k;
  const x = new Float64Array(e.rows * width);
  for (let i = 0; i < e.rows; i++) {
    for (let j = 0; j < e.width; j++) x[i * width + j] = e.x[i * e.width + j];
    x[i * width + e.width + e.cond[i]] = 1;
  }
  // Blocks are source columns: a numeric value and its missing indicator are one block (their pairing is by construction).
  const names = [...new Set(e.segments.map((s) => s.column))];
  const block: number[] = [];
  for (const s of e.segments) for (let q = 0; q < s.width; q++) block.push(names.indexOf(s.column));
  for (let q = 0; q < k; q++) block.push(names.length);
  return { x, rows: e.rows, width, block };
}

/** Pearson correlation matrix (row-major, width × width); a pair involving a constant column gets 0. */
export function pearsonMatrix(x: ArrayLike<number>, rows: number, width: number): Float64Array {
  if (x.length !== rows * width) throw new FedtwinError('DATA_BAD_ARGUMENT', `pearsonMatrix: ${x.length} values for ${rows}×${width}`);
  const mean = new Float64Array(width);
  for (let i = 0; i < rows; i++) for (let j = 0; j < width; j++) mean[j] += x[i * width + j];
  for (let j = 0; j < width; j++) mean[j] /= rows;
  const cov = new Float64Array(width * width);
  const c = new Float64Array(width);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < width; j++) c[j] = x[i * width + j] - mean[j];
    for (let a = 0; a < width; a++) {
      const ca = c[a];
      if (ca === 0) continue;
      for (let b = a; b < width; b++) cov[a * width + b] += ca * c[b];
    }
  }
  const r = new Float64Array(width * width);
  for (let a = 0; a < width; a++) {
    for (let b = a; b < width; b++) {
      const va = cov[a * width + a];
      const vb = cov[b * width + b];
      // Relative threshold: a column is constant if its variance is ~0 at float precision.
      const v = va > 1e-12 * rows && vb > 1e-12 * rows ? cov[a * width + b] / Math.sqrt(va * vb) : a === b ? 1 : 0;
      const clipped = v > 1 ? 1 : v < -1 ? -1 : v;
      r[a * width + b] = clipped;
      r[b * width + a] = clipped;
    }
  }
  return r;
}

/**
 * Mean |r_real − r_synth| over pairs of encoded columns (numeric scaled, one-hot categorical, and
 * the target one-hot), excluding pairs inside one column's one-hot block. Range [0, 2]; 0 = same.
 */
export function correlationDistance(real: Table, synth: Table): number {
  assertSameSchema(real.schema, synth.schema);
  nonEmpty(real, 'real');
  nonEmpty(synth, 'synthetic');
  const a = correlationMatrixInput(real);
  const b = correlationMatrixInput(synth);
  const ra = pearsonMatrix(a.x, a.rows, a.width);
  const rb = pearsonMatrix(b.x, b.rows, b.width);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < a.width; i++) {
    for (let j = i + 1; j < a.width; j++) {
      if (a.block[i] === a.block[j]) continue;
      sum += Math.abs(ra[i * a.width + j] - rb[i * a.width + j]);
      count++;
    }
  }
  return count === 0 ? 0 : sum / count;
}

export interface FidelityReport {
  columns: ColumnScore[];
  /** Mean of the column scores. */
  mean: number;
  correlationDistance: number;
  /** Missingness rates real vs synthetic; present only when the schema declares columns that may be missing. */
  missingness?: MissingnessReport;
}

/** Marginal and pairwise fidelity of synthetic vs real rows (same schema), and missingness when declared. */
export function fidelityReport(real: Table, synth: Table): FidelityReport {
  const columns = columnScores(real, synth);
  const mean = columns.reduce((s, c) => s + c.score, 0) / columns.length;
  const missingness = missingnessReport(real, synth);
  return { columns, mean, correlationDistance: correlationDistance(real, synth), ...(missingness ? { missingness } : {}) };
}

export type ColumnHistogram =
  | { name: string; kind: 'numeric'; edges: number[]; labels: string[]; real: number[]; synthetic: number[] }
  | { name: string; kind: 'categorical'; categories: string[]; labels: string[]; real: number[]; synthetic: number[] };

/** Per-column histograms as fractions of rows, for plots: numeric over `bins` equal bins of the
 *  declared [min, max] (labels "lo–hi"); categorical over the declared categories (labels = categories). */
export function columnHistograms(real: Table, synth: Table, bins = 20): ColumnHistogram[] {
  assertSameSchema(real.schema, synth.schema);
  if (!Number.isInteger(bins) || bins < 1 || bins > 10_000) throw new FedtwinError('DATA_BAD_ARGUMENT', `bins must be an integer in [1, 10000], got ${bins}`);
  return real.schema.columns.map((c, k): ColumnHistogram => {
    if (c.kind === 'numeric') {
      const w = (c.max - c.min) / bins;
      const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? c.max : c.min + i * w));
      const hist = (t: Table): number[] => {
        const h = new Array<number>(bins).fill(0);
        for (const r of t.rows) {
          if (isMissing(r[k])) continue; // missing cells are the shortfall below 1 (missingnessReport has the rate)
          const v = r[k] as number;
          let b = Math.floor((v - c.min) / w);
          if (b < 0) b = 0;
          if (b >= bins) b = bins - 1;
          h[b]++;
        }
        return h.map((x) => (t.rows.length === 0 ? 0 : x / t.rows.length));
      };
      const label = (v: number): string => String(Number(v.toPrecision(4)));
      const labels = Array.from({ length: bins }, (_, i) => `${label(edges[i])}–${label(edges[i + 1])}`);
      return { name: c.name, kind: 'numeric', edges, labels, real: hist(real), synthetic: hist(synth) };
    }
    const idx = new Map(c.categories.map((v, i) => [v, i]));
    const hist = (t: Table): number[] => {
      const h = new Array<number>(c.categories.length).fill(0);
      for (const r of t.rows) {
        const q = idx.get(r[k] as string);
        if (q !== undefined) h[q]++;
      }
      return h.map((x) => (t.rows.length === 0 ? 0 : x / t.rows.length));
    };
    return { name: c.name, kind: 'categorical', categories: [...c.categories], labels: [...c.categories], real: hist(real), synthetic: hist(synth) };
  });
}

// ---------------------------------------------------------------------------------------------
// ROC AUC

/** Binary ROC AUC by the rank (Mann–Whitney U) formula with average ranks for ties.
 *  `labels`: truthy / 1 = positive. NaN when one class is absent. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number | boolean>): number {
  const n = scores.length;
  if (labels.length !== n) throw new FedtwinError('DATA_BAD_ARGUMENT', `rocAuc: ${n} scores but ${labels.length} labels`);
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) throw new FedtwinError('DATA_BAD_VALUE', `rocAuc: score ${i} is ${scores[i]}`);
    order[i] = i;
  }
  order.sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let q = i; q <= j; q++) {
      if (labels[order[q]]) {
        nPos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface MulticlassAuc {
  /** Binary: AUC of the class-1 score; multi-class: one-vs-rest macro mean over classes present. */
  auc: number;
  /** One-vs-rest AUC per class (null when the class is absent from the labels, or is all of them). */
  perClass: Array<number | null>;
}

/** AUC from class probabilities (rows × K, row-major) and class indices. */
export function multiclassAuc(probs: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): MulticlassAuc {
  const n = labels.length;
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new FedtwinError('DATA_BAD_ARGUMENT', `numClasses must be ≥ 2, got ${numClasses}`);
  if (probs.length !== n * numClasses) throw new FedtwinError('DATA_BAD_ARGUMENT', `multiclassAuc: ${probs.length} probabilities for ${n} rows × ${numClasses} classes`);
  const perClass: Array<number | null> = [];
  const s = new Float64Array(n);
  const y = new Uint8Array(n);
  for (let c = 0; c < numClasses; c++) {
    for (let i = 0; i < n; i++) {
      s[i] = probs[i * numClasses + c];
      y[i] = labels[i] === c ? 1 : 0;
    }
    const a = rocAuc(s, y);
    perClass.push(Number.isNaN(a) ? null : a);
  }
  let auc: number;
  if (numClasses === 2) auc = perClass[1] ?? Number.NaN;
  else {
    const present = perClass.filter((a): a is number => a !== null);
    auc = present.length === 0 ? Number.NaN : present.reduce((p, q) => p + q, 0) / present.length;
  }
  return { auc, perClass };
}

// ---------------------------------------------------------------------------------------------
// Logistic regression (multinomial; binary is K = 2)

export interface Features {
  /** rows × width, row-major. */
  x: Float32Array;
  rows: number;
  width: number;
}

export interface LogisticRegressionOptions {
  /** Adam steps. Default 300. */
  steps?: number;
  /** Adam learning rate. Default 0.05. */
  learningRate?: number;
  /** L2 penalty on the weights (not the bias). Default 1e-3. */
  l2?: number;
  /** Rows per step; default: all rows (full batch) up to 4096, else 1024. */
  batchSize?: number;
  /** Seed for minibatch order. Default 0. */
  seed?: number;
}

export interface LogisticRegressionModel {
  numClasses: number;
  width: number;
  /** Standardization fitted on the training rows. */
  mean: Float32Array;
  std: Float32Array;
  /** width × numClasses, row-major (on standardized features). */
  weights: Float32Array;
  bias: Float32Array;
  /** Class probabilities, rows × numClasses. */
  predictProba(x: Features): Float32Array;
}

function assertBackend(): void {
  if (Object.keys(tf.engine().registryFactory).length === 0) {
    throw new FedtwinError('DATA_NO_BACKEND', 'no TensorFlow.js backend is registered', {
      hint: "Import a backend first, e.g. import '@tensorflow/tfjs-backend-cpu'",
    });
  }
}

/** Softmax regression trained with Adam on standardized features (statistics of the training rows only). */
export function trainLogisticRegression(data: Features, y: ArrayLike<number>, numClasses: number, opts: LogisticRegressionOptions = {}): LogisticRegressionModel {
  const { rows: n, width: w } = data;
  if (n === 0) throw new FedtwinError('DATA_EMPTY', 'trainLogisticRegression: no rows');
  if (data.x.length !== n * w) throw new FedtwinError('DATA_BAD_ARGUMENT', `trainLogisticRegression: x has ${data.x.length} values for ${n}×${w}`);
  if (y.length !== n) throw new FedtwinError('DATA_BAD_ARGUMENT', `trainLogisticRegression: ${y.length} labels for ${n} rows`);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new FedtwinError('DATA_BAD_ARGUMENT', `numClasses must be ≥ 2, got ${numClasses}`);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = y[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new FedtwinError('DATA_BAD_ARGUMENT', `label ${i} is ${l}, not in [0, ${numClasses})`);
    labels[i] = l;
  }
  const steps = opts.steps ?? 300;
  const lr = opts.learningRate ?? 0.05;
  const l2 = opts.l2 ?? 1e-3;
  const batch = Math.min(n, opts.batchSize ?? (n <= 4096 ? n : 1024));
  if (!Number.isInteger(steps) || steps < 1) throw new FedtwinError('DATA_BAD_ARGUMENT', `steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(batch) || batch < 1) throw new FedtwinError('DATA_BAD_ARGUMENT', `batchSize must be a positive integer`);
  if (!(lr > 0) || !(l2 >= 0)) throw new FedtwinError('DATA_BAD_ARGUMENT', 'learningRate must be > 0 and l2 ≥ 0');
  assertBackend();

  const mean = new Float32Array(w);
  const std = new Float32Array(w);
  {
    const m = new Float64Array(w);
    const s = new Float64Array(w);
    for (let i = 0; i < n; i++) for (let j = 0; j < w; j++) m[j] += data.x[i * w + j];
    for (let j = 0; j < w; j++) m[j] /= n;
    for (let i = 0; i < n; i++) for (let j = 0; j < w; j++) s[j] += (data.x[i * w + j] - m[j]) ** 2;
    for (let j = 0; j < w; j++) {
      mean[j] = m[j];
      const sd = Math.sqrt(s[j] / n);
      std[j] = sd > 1e-8 ? sd : 1; // constant column: leave centred at 0
    }
  }
  const z = standardize(data, mean, std);

  const xs = tf.tensor2d(z, [n, w]);
  const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32'));
  const xsT = batch === n ? tf.transpose(xs) : undefined; // explicit transpose: transposed matMul is slow on wasm
  // tf.variable keeps its initial tensor alive as a separate handle: dispose that handle here.
  const w0 = tf.zeros([w, numClasses]);
  const b0 = tf.zeros([numClasses]);
  const W = tf.variable(w0, true);
  const b = tf.variable(b0, true);
  w0.dispose();
  b0.dispose();
  const opt = tf.train.adam(lr);
  const rng = createPrng(opts.seed ?? 0);
  const order = Array.from({ length: n }, (_, i) => i);
  let cursor = n;
  try {
    for (let step = 0; step < steps; step++) {
      let idx: Int32Array | undefined;
      if (batch < n) {
        idx = new Int32Array(batch);
        for (let q = 0; q < batch; q++) {
          if (cursor >= n) {
            rng.shuffle(order);
            cursor = 0;
          }
          idx[q] = order[cursor++];
        }
      }
      tf.tidy(() => {
        let xb: tf.Tensor2D = xs;
        let xbT: tf.Tensor2D = xsT as tf.Tensor2D;
        let yb: tf.Tensor2D = ys as tf.Tensor2D;
        if (idx !== undefined) {
          const it = tf.tensor1d(idx, 'int32');
          xb = tf.gather(xs, it);
          xbT = tf.transpose(xb);
          yb = tf.gather(ys, it) as tf.Tensor2D;
        }
        // Analytic gradient of mean cross-entropy: Xᵀ(softmax(XW+b) − Y)/m (+ λW).
        const p = tf.softmax(tf.add(tf.matMul(xb, W), b));
        const d = tf.div(tf.sub(p, yb), xb.shape[0]);
        const gW = tf.add(tf.matMul(xbT, d), tf.mul(W, l2));
        const gb = tf.sum(d, 0);
        opt.applyGradients([
          { name: W.name, tensor: gW },
          { name: b.name, tensor: gb },
        ]);
      });
    }
    const weights = Float32Array.from(W.dataSync());
    const bias = Float32Array.from(b.dataSync());
    for (const v of weights) if (!Number.isFinite(v)) throw new FedtwinError('DATA_TRAINING_DIVERGED', 'logistic regression weights are not finite', { hint: 'Lower the learning rate' });
    return makeModel(numClasses, w, mean, std, weights, bias);
  } finally {
    opt.dispose();
    xs.dispose();
    ys.dispose();
    xsT?.dispose();
    W.dispose();
    b.dispose();
  }
}

function standardize(data: Features, mean: Float32Array, std: Float32Array): Float32Array {
  const { rows: n, width: w } = data;
  const z = new Float32Array(n * w);
  for (let i = 0; i < n; i++) for (let j = 0; j < w; j++) z[i * w + j] = (data.x[i * w + j] - mean[j]) / std[j];
  return z;
}

function makeModel(numClasses: number, width: number, mean: Float32Array, std: Float32Array, weights: Float32Array, bias: Float32Array): LogisticRegressionModel {
  return {
    numClasses,
    width,
    mean,
    std,
    weights,
    bias,
    predictProba(data: Features): Float32Array {
      if (data.width !== width || data.x.length !== data.rows * width) {
        throw new FedtwinError('DATA_BAD_ARGUMENT', `predictProba: expected width ${width}, got ${data.width}`);
      }
      // Plain JS: K·w multiply-adds per row is cheaper than a tfjs round trip at these sizes.
      const out = new Float32Array(data.rows * numClasses);
      const logits = new Float64Array(numClasses);
      for (let i = 0; i < data.rows; i++) {
        for (let c = 0; c < numClasses; c++) logits[c] = bias[c];
        for (let j = 0; j < width; j++) {
          const v = (data.x[i * width + j] - mean[j]) / std[j];
          if (v === 0) continue;
          for (let c = 0; c < numClasses; c++) logits[c] += v * weights[j * numClasses + c];
        }
        let mx = -Infinity;
        for (let c = 0; c < numClasses; c++) if (logits[c] > mx) mx = logits[c];
        let s = 0;
        for (let c = 0; c < numClasses; c++) s += logits[c] = Math.exp(logits[c] - mx);
        for (let c = 0; c < numClasses; c++) out[i * numClasses + c] = logits[c] / s;
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Utility: train on one table, test on another

export interface UtilityResult {
  /** ROC AUC on the test table (binary, or one-vs-rest macro); 0.5 when `degenerate`. */
  auc: number;
  perClass: Array<number | null>;
  /** True when AUC could not be measured meaningfully (see `reason`). */
  degenerate: boolean;
  reason?: string;
  /** Distinct classes in the training table. */
  trainClasses: number;
  trainRows: number;
  testRows: number;
}

function distinct(cond: Int32Array): number {
  return new Set(cond).size;
}

/** Train logistic regression on `train` (features → target), report AUC on `test`. */
export function utilityAuc(train: Table, test: Table, opts: LogisticRegressionOptions = {}): UtilityResult {
  assertSameSchema(train.schema, test.schema);
  nonEmpty(train, 'training');
  nonEmpty(test, 'test');
  targetIndex(train.schema);
  const tr: EncodedTable = encodeTable(train);
  const te: EncodedTable = encodeTable(test);
  const k = tr.classes.length;
  const base = { trainClasses: distinct(tr.cond), trainRows: tr.rows, testRows: te.rows };
  if (base.trainClasses < 2) {
    // Typical of a collapsed generator: report chance level instead of failing the whole run.
    return { ...base, auc: 0.5, perClass: new Array(k).fill(null), degenerate: true, reason: 'training data has a single class' };
  }
  if (distinct(te.cond) < 2) {
    return { ...base, auc: 0.5, perClass: new Array(k).fill(null), degenerate: true, reason: 'test data has a single class' };
  }
  const model = trainLogisticRegression(tr, tr.cond, k, opts);
  const { auc, perClass } = multiclassAuc(model.predictProba(te), te.cond, k);
  return { ...base, auc, perClass, degenerate: false };
}

/** Train on synthetic, test on real (TSTR). */
export function tstrAuc(synthTrain: Table, realTest: Table, opts: LogisticRegressionOptions = {}): UtilityResult {
  return utilityAuc(synthTrain, realTest, opts);
}

/** Train on real, test on real (TRTR): the reference TSTR is compared with. */
export function trtrAuc(realTrain: Table, realTest: Table, opts: LogisticRegressionOptions = {}): UtilityResult {
  return utilityAuc(realTrain, realTest, opts);
}
