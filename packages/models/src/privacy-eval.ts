// Distance-based privacy checks of a synthetic release (issue 14 item 4), as evaluators of synthetic data
// run them: does the release sit closer to the records it was trained on than to records it never saw?
// - DCR (distance to closest record): each synthetic row's distance to its nearest training row and to its
//   nearest held-out test row, with the training rows subsampled to the test set's size so neither side
//   wins by sheer number. A ratio of medians near 1 and a "closer to train" share near 0.5 mean no copying.
// - Membership inference by distance: an attacker who holds the release scores a candidate record by how
//   close its nearest synthetic row is; AUC of telling training members from test non-members (0.5 = chance).
// Rows are compared in the model's encoding: numeric columns scaled to [0, 1] by the schema's declared bounds,
// each categorical column (the target included) one-hot scaled by 1/√2, so a category mismatch weighs like a
// full-range numeric difference.
import { FedtwinError } from '@fedtwin/errors';
import { subsetTable } from './datasets.ts';
import { encodeTable } from './encode.ts';
import { assertSameSchema, rocAuc } from './evaluate.ts';
import type { Prng } from './random.ts';
import type { Table } from './types.ts';

/** Rows of `table` as points for distances: rows × dim, row-major. */
export function distancePoints(table: Table): { points: Float64Array; rows: number; dim: number } {
  const enc = encodeTable(table);
  const classes = Math.max(1, enc.classes.length);
  const dim = enc.width + classes;
  const points = new Float64Array(enc.rows * dim);
  const isCategorical = new Uint8Array(enc.width);
  for (const s of enc.segments) if (s.kind === 'categorical') isCategorical.fill(1, s.offset, s.offset + s.width);
  for (let i = 0; i < enc.rows; i++) {
    for (let j = 0; j < enc.width; j++) points[i * dim + j] = isCategorical[j] ? enc.x[i * enc.width + j]! * Math.SQRT1_2 : enc.x[i * enc.width + j]!;
    points[i * dim + enc.width + enc.cond[i]!] = Math.SQRT1_2;
  }
  return { points, rows: enc.rows, dim };
}

/** For each query row, the Euclidean distance to its nearest reference row (brute force: exact, O(q·r·d)). */
export function nearestDistances(query: Float64Array, queryRows: number, reference: Float64Array, referenceRows: number, dim: number): Float64Array {
  if (referenceRows === 0) throw new FedtwinError('DATA_EMPTY', 'nearest distances need at least one reference row');
  const out = new Float64Array(queryRows);
  for (let i = 0; i < queryRows; i++) {
    let best = Infinity;
    const qi = i * dim;
    for (let r = 0; r < referenceRows; r++) {
      let d = 0;
      const ri = r * dim;
      for (let k = 0; k < dim && d < best; k++) {
        const diff = query[qi + k]! - reference[ri + k]!;
        d += diff * diff;
      }
      if (d < best) best = d;
    }
    out[i] = Math.sqrt(best);
  }
  return out;
}

export interface DcrReport {
  /** Median distance from a synthetic row to its closest (size-matched) training row. */
  medianToTrain: number;
  /** Median distance from a synthetic row to its closest test row. */
  medianToTest: number;
  /** medianToTrain / medianToTest: ≈ 1 is healthy, well below 1 means the release hugs its training rows. */
  ratio: number;
  /** Share of synthetic rows strictly closer to a training row than to any test row (ties count ½); ≈ 0.5 is healthy. */
  closerToTrainShare: number;
  /** Training and test rows compared (equal: the training side is a random subsample of the test set's size). */
  matchedRows: number;
}

export interface MiaReport {
  /** ROC AUC of "member" scores (−distance to the nearest synthetic row): 0.5 is chance, 1 is full disclosure. */
  auc: number;
  /** Members and non-members scored (equal numbers). */
  candidates: number;
}

/** k distinct row indices of [0, n), uniformly (partial Fisher–Yates). */
function sampleRows(n: number, k: number, rng: Prng): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k);
}

function median(xs: Float64Array): number {
  const s = Float64Array.from(xs).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function checkInputs(synthetic: Table, train: Table, test: Table): number {
  assertSameSchema(synthetic.schema, train.schema);
  assertSameSchema(synthetic.schema, test.schema);
  for (const [t, what] of [[synthetic, 'synthetic'], [train, 'training'], [test, 'test']] as const) {
    if (t.rows.length === 0) throw new FedtwinError('DATA_EMPTY', `the ${what} table has no rows`);
  }
  return Math.min(train.rows.length, test.rows.length);
}

/** DCR of `synthetic` against size-matched `train` and `test` rows (training rows subsampled with `rng`). */
export function dcrReport(synthetic: Table, train: Table, test: Table, rng: Prng): DcrReport {
  const m = checkInputs(synthetic, train, test);
  const trainM = subsetTable(train, sampleRows(train.rows.length, m, rng));
  const testM = subsetTable(test, sampleRows(test.rows.length, m, rng));
  const s = distancePoints(synthetic);
  const tr = distancePoints(trainM);
  const te = distancePoints(testM);
  const toTrain = nearestDistances(s.points, s.rows, tr.points, tr.rows, s.dim);
  const toTest = nearestDistances(s.points, s.rows, te.points, te.rows, s.dim);
  let closer = 0;
  for (let i = 0; i < s.rows; i++) closer += toTrain[i]! < toTest[i]! ? 1 : toTrain[i] === toTest[i] ? 0.5 : 0;
  const medianToTrain = median(toTrain);
  const medianToTest = median(toTest);
  return {
    medianToTrain, medianToTest,
    ratio: medianToTest > 0 ? medianToTrain / medianToTest : medianToTrain > 0 ? Infinity : 1,
    closerToTrainShare: closer / s.rows, matchedRows: m,
  };
}

/** Distance-based membership inference on the release: members are training rows, non-members test rows (equal numbers). */
export function membershipInferenceAuc(synthetic: Table, train: Table, test: Table, rng: Prng): MiaReport {
  const m = checkInputs(synthetic, train, test);
  const members = distancePoints(subsetTable(train, sampleRows(train.rows.length, m, rng)));
  const outsiders = distancePoints(subsetTable(test, sampleRows(test.rows.length, m, rng)));
  const s = distancePoints(synthetic);
  const dIn = nearestDistances(members.points, members.rows, s.points, s.rows, s.dim);
  const dOut = nearestDistances(outsiders.points, outsiders.rows, s.points, s.rows, s.dim);
  const scores = new Float64Array(2 * m);
  const labels = new Uint8Array(2 * m);
  for (let i = 0; i < m; i++) {
    scores[i] = -dIn[i]!;
    labels[i] = 1;
    scores[m + i] = -dOut[i]!;
  }
  return { auc: rocAuc(scores, labels), candidates: 2 * m };
}
