// Issue 14 item 4: the release's privacy figures in every report — DCR (size-matched train vs test) and a
// distance-based membership-inference AUC — on small cases checked by hand and on the two extremes: a release
// that copies its training rows (DCR 0, AUC 1) and one drawn afresh from the same distribution (≈ 1, ≈ 0.5).
import { describe, expect, it } from 'vitest';
import { createPrng } from '../src/random.ts';
import { dcrReport, distancePoints, membershipInferenceAuc, nearestDistances } from '../src/privacy-eval.ts';
import type { Table, TableSchema } from '../src/types.ts';

const schema: TableSchema = {
  target: 't',
  columns: [
    { name: 'a', kind: 'numeric', min: 0, max: 10, integer: false, decimals: 3 },
    { name: 'b', kind: 'categorical', categories: ['x', 'y'] },
    { name: 't', kind: 'categorical', categories: ['0', '1'] },
  ],
};

/** n rows from one fixed distribution: a ~ N(5, 1.5²) clamped to the bounds, b and t correlated with a. */
function draw(n: number, seed: number): Table {
  const rng = createPrng(seed);
  const rows: Table['rows'] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.min(10, Math.max(0, 5 + 1.5 * rng.normal()));
    rows.push([a, rng.next() < a / 10 ? 'x' : 'y', rng.next() < 0.3 + 0.04 * a ? '1' : '0']);
  }
  return { schema, rows };
}

describe('distances between records', () => {
  it('nearest distances, by hand', () => {
    const q = Float64Array.from([0, 0, 6, 4]);
    const r = Float64Array.from([0, 1, 6, 8]);
    expect(Array.from(nearestDistances(q, 2, r, 2, 2))).toEqual([1, 4]); // (6,4): 4 to (6,8), √45 to (0,1)
  });

  it('numeric columns scaled by the declared bounds; a category mismatch (target included) weighs like a full-range difference', () => {
    const t: Table = { schema, rows: [[5, 'x', '0'], [5, 'y', '0'], [0, 'x', '1'], [10, 'x', '0']] };
    const p = distancePoints(t);
    expect(p.dim).toBe(5);
    expect(Array.from(p.points.slice(0, 5))).toEqual([0.5, Math.SQRT1_2, 0, Math.SQRT1_2, 0]);
    const d = (i: number, j: number) => Math.hypot(...Array.from({ length: p.dim }, (_, k) => p.points[i * p.dim + k]! - p.points[j * p.dim + k]!));
    expect(d(0, 1)).toBeCloseTo(1, 12); // b differs
    expect(d(0, 2)).toBeCloseTo(Math.sqrt(0.25 + 1), 12); // a by half the range, t differs
    expect(d(2, 3)).toBeCloseTo(Math.sqrt(1 + 1), 12); // a across the whole range, t differs
  });
});

describe('DCR and membership inference', () => {
  const train = draw(300, 1);
  const test = draw(200, 2);

  it('a release that copies its training rows: every synthetic row at distance 0 from training, MIA AUC 1', () => {
    const copy: Table = { schema, rows: train.rows.slice() };
    const dcr = dcrReport(copy, train, test, createPrng(7));
    expect(dcr.matchedRows).toBe(200);
    // Only the 200 matched training rows count, so 2/3 of the copies sit on one of them.
    expect(dcr.closerToTrainShare).toBeGreaterThan(0.6);
    const full = dcrReport({ schema, rows: train.rows.slice(0, 200) }, { schema, rows: train.rows.slice(0, 200) }, test, createPrng(7));
    expect(full.medianToTrain).toBe(0);
    expect(full.ratio).toBe(0);
    expect(full.closerToTrainShare).toBe(1);
    const mia = membershipInferenceAuc(copy, train, test, createPrng(8));
    expect(mia.candidates).toBe(400);
    expect(mia.auc).toBe(1);
  });

  it('a release drawn afresh from the same distribution: DCR ratio ≈ 1, share ≈ 0.5, MIA AUC ≈ 0.5', () => {
    const fresh = draw(300, 3);
    const dcr = dcrReport(fresh, train, test, createPrng(9));
    expect(dcr.ratio).toBeGreaterThan(0.8);
    expect(dcr.ratio).toBeLessThan(1.25);
    expect(dcr.closerToTrainShare).toBeGreaterThan(0.4);
    expect(dcr.closerToTrainShare).toBeLessThan(0.6);
    const mia = membershipInferenceAuc(fresh, train, test, createPrng(10));
    expect(mia.auc).toBeGreaterThan(0.42);
    expect(mia.auc).toBeLessThan(0.58);
  });

  it('refuses empty tables and other schemas', () => {
    expect(() => dcrReport({ schema, rows: [] }, train, test, createPrng(1))).toThrowError(/synthetic table has no rows/);
    const other: TableSchema = { ...schema, columns: schema.columns.map((c) => (c.name === 'a' ? { ...c, name: 'A' } : c)) };
    expect(() => membershipInferenceAuc(train, { schema: other, rows: train.rows }, test, createPrng(1))).toThrow();
  });
});
