import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Table, TableSchema } from '../src/types.ts';
import {
  columnHistograms,
  columnScores,
  correlationDistance,
  fidelityReport,
  ksComplement,
  ksStatistic,
  multiclassAuc,
  pearsonMatrix,
  rocAuc,
  trainLogisticRegression,
  trtrAuc,
  tstrAuc,
  tvComplement,
  tvDistance,
} from '../src/evaluate.ts';
import { loadDatasetTable, subsetTable } from '../src/datasets.ts';
import { trainTestSplit } from '../src/split.ts';
import { targetIndex } from '../src/schema.ts';
import { createPrng } from '../src/random.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('KS and TV', () => {
  it('KS: identical → 0, disjoint → 1, hand-checked cases with ties', () => {
    expect(ksStatistic([1, 2, 3], [3, 2, 1])).toBe(0);
    expect(ksComplement([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(ksStatistic([1, 2], [3, 4, 5])).toBe(1);
    expect(ksComplement([1, 2], [3, 4, 5])).toBe(0);
    // F_a(2) = 0.5, F_b(2) = 0 is the largest gap.
    expect(ksStatistic([1, 2, 3, 4], [3, 4, 5, 6])).toBe(0.5);
    // Ties across samples: at x=1, F_a = 2/3 and F_b = 1/3; at x=2 both are 1.
    expect(ksStatistic([1, 1, 2], [1, 2, 2])).toBeCloseTo(1 / 3, 15);
    // Different sizes: a = {0, 10}, b = {1..9}: at x=0 gap 0.5, at 9: 0.5 vs 1 → 0.5.
    expect(ksStatistic([0, 10], [1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe(0.5);
    expect(() => ksStatistic([], [1])).toThrow();
  });

  it('KS matches a brute-force ECDF comparison (property)', () => {
    const small = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(small, small, (a, b) => {
        let d = 0;
        for (const x of [...a, ...b]) {
          const fa = a.filter((v) => v <= x).length / a.length;
          const fb = b.filter((v) => v <= x).length / b.length;
          d = Math.max(d, Math.abs(fa - fb));
        }
        expect(ksStatistic(a, b)).toBeCloseTo(d, 12);
      }),
    );
  });

  it('TV on known distributions', () => {
    expect(tvDistance(['x', 'x', 'y', 'y'], ['x', 'y', 'y', 'y'])).toBeCloseTo(0.25, 15);
    expect(tvDistance(['a', 'a'], ['b'])).toBe(1);
    expect(tvComplement(['a', 'b', 'c'], ['c', 'b', 'a'])).toBe(1);
    // p = (0.5, 0.5, 0), q = (0, 0.5, 0.5) → ½(0.5 + 0 + 0.5) = 0.5
    expect(tvDistance(['a', 'b'], ['b', 'c'])).toBe(0.5);
  });
});

describe('ROC AUC', () => {
  it('binary AUC on known rankings, with ties by average rank', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75); // scikit-learn's docstring example
    expect(rocAuc([1, 2, 3, 4], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([4, 3, 2, 1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([1, 2, 2, 3], [0, 0, 1, 1])).toBe(0.875); // one tied pair counts ½
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([1, 2], [true, false])).toBe(0);
    expect(rocAuc([1, 2], [0, 0])).toBeNaN();
    expect(() => rocAuc([1, Number.NaN], [0, 1])).toThrow(/score 1/);
  });

  it('equals the pairwise Mann–Whitney count (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()), { minLength: 2, maxLength: 40 }), (pairs) => {
        const pos = pairs.filter((p) => p[1]).map((p) => p[0]);
        const neg = pairs.filter((p) => !p[1]).map((p) => p[0]);
        fc.pre(pos.length > 0 && neg.length > 0);
        let u = 0;
        for (const p of pos) for (const q of neg) u += p > q ? 1 : p === q ? 0.5 : 0;
        expect(rocAuc(pairs.map((p) => p[0]), pairs.map((p) => p[1]))).toBeCloseTo(u / (pos.length * neg.length), 12);
      }),
    );
  });

  it('multi-class one-vs-rest macro AUC, skipping absent classes', () => {
    // 3 classes, perfect probabilities
    const probs = [0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8, 0.7, 0.2, 0.1];
    expect(multiclassAuc(probs, [0, 1, 2, 0], 3)).toEqual({ auc: 1, perClass: [1, 1, 1] });
    // class 2 absent from labels → null, macro over the other two
    const r = multiclassAuc(probs, [0, 1, 1, 0], 3);
    expect(r.perClass[2]).toBeNull();
    expect(r.auc).toBeCloseTo(((r.perClass[0] as number) + (r.perClass[1] as number)) / 2, 15);
    // binary: the class-1 column
    expect(multiclassAuc([0.9, 0.1, 0.4, 0.6, 0.2, 0.8], [0, 1, 0], 2).auc).toBe(0.5);
  });
});

const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'a', kind: 'numeric', min: 0, max: 10, integer: false, decimals: 2 },
    { name: 'b', kind: 'numeric', min: 0, max: 10, integer: false, decimals: 2 },
    { name: 'c', kind: 'categorical', categories: ['u', 'v'] },
    { name: 'y', kind: 'categorical', categories: ['0', '1'] },
  ],
};

function correlatedTable(seed: number, n: number): Table {
  const r = createPrng(seed);
  const rows = Array.from({ length: n }, () => {
    const a = Number((r.next() * 10).toFixed(2));
    const b = Number(Math.min(10, Math.max(0, a + r.normal())).toFixed(2));
    const y = a + r.normal() > 5 ? '1' : '0';
    return [a, b, a > 5 ? 'v' : 'u', y];
  });
  return { schema, rows };
}

describe('fidelity', () => {
  const real = correlatedTable(1, 400);

  it('scores a table against itself as perfect', () => {
    const f = fidelityReport(real, real);
    expect(f.columns.map((c) => c.score)).toEqual([1, 1, 1, 1]);
    expect(f.mean).toBe(1);
    expect(f.correlationDistance).toBe(0);
  });

  it('sees broken correlations that per-column scores cannot', () => {
    // Shuffling each column independently keeps every marginal but destroys the dependence.
    const r = createPrng(2);
    const cols = schema.columns.map((_, k) => r.shuffle(real.rows.map((row) => row[k])));
    const shuffled: Table = { schema, rows: real.rows.map((_, i) => cols.map((c) => c[i])) };
    const f = fidelityReport(real, shuffled);
    expect(f.mean).toBe(1);
    expect(f.correlationDistance).toBeGreaterThan(0.3);
    // A fresh sample from the same process stays close.
    expect(correlationDistance(real, correlatedTable(3, 400))).toBeLessThan(0.08);
  });

  it('handles constant columns without NaN and scores disjoint data as 0', () => {
    const constant: Table = { schema, rows: real.rows.map(() => [10, 10, 'v', '1']) };
    const f = fidelityReport(real, constant);
    expect(f.columns.map((c) => c.name)).toEqual(['a', 'b', 'c', 'y']);
    expect(f.columns.map((c) => c.metric)).toEqual(['KSComplement', 'KSComplement', 'TVComplement', 'TVComplement']);
    expect(f.columns[0].score).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(f.correlationDistance)).toBe(true);
    expect(columnScores({ schema, rows: [[0, 0, 'u', '0']] }, { schema, rows: [[9, 9, 'v', '1']] }).map((c) => c.score)).toEqual([0, 0, 0, 0]);
  });

  it('computes Pearson correlations with 0 for constant columns', () => {
    const m = pearsonMatrix([1, 2, 5, 2, 4, 5, 3, 6, 5], 3, 3);
    expect(Array.from(m)).toEqual([1, 1, 0, 1, 1, 0, 0, 0, 1]);
    const neg = pearsonMatrix([1, 3, 2, 2, 3, 1], 3, 2);
    expect(neg[1]).toBeCloseTo(-1, 15);
  });

  it('builds histograms over declared bounds and categories', () => {
    const h = columnHistograms(real, correlatedTable(5, 100), 5);
    expect(h).toHaveLength(4);
    const a = h[0];
    if (a.kind !== 'numeric') throw new Error('expected numeric');
    expect(a.edges).toEqual([0, 2, 4, 6, 8, 10]);
    expect(a.real.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(a.synthetic.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(a.labels).toEqual(['0–2', '2–4', '4–6', '6–8', '8–10']);
    const c = h[2];
    if (c.kind !== 'categorical') throw new Error('expected categorical');
    expect(c.categories).toEqual(['u', 'v']);
    expect(c.labels).toEqual(['u', 'v']);
    expect(c.real[0] + c.real[1]).toBeCloseTo(1, 12);
  });

  it('refuses tables with different schemas', () => {
    const other: TableSchema = { ...schema, columns: schema.columns.map((c) => (c.name === 'c' ? { ...c, categories: ['u', 'w'] } : c)) };
    expect(() => fidelityReport(real, { schema: other, rows: real.rows })).toThrow(/different categories/);
  });
});

describe('utility (logistic regression, TSTR/TRTR)', () => {
  it('learns a separable problem and leaks no tensors', () => {
    const r = createPrng(9);
    const n = 300;
    const x = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[2 * i] = 100 + (y[i] ? 5 : -5) + r.normal(); // large offset: standardization matters
      x[2 * i + 1] = r.normal();
    }
    const before = tf.memory().numTensors;
    const m = trainLogisticRegression({ x, rows: n, width: 2 }, y, 2, { steps: 100 });
    expect(tf.memory().numTensors).toBe(before);
    const p = m.predictProba({ x, rows: n, width: 2 });
    expect(multiclassAuc(p, y, 2).auc).toBeGreaterThan(0.99);
    expect(m.mean[0]).toBeCloseTo(100, 0);
    // minibatch path gives the same quality
    const mb = trainLogisticRegression({ x, rows: n, width: 2 }, y, 2, { steps: 100, batchSize: 32, seed: 1 });
    expect(multiclassAuc(mb.predictProba({ x, rows: n, width: 2 }), y, 2).auc).toBeGreaterThan(0.99);
    expect(() => trainLogisticRegression({ x, rows: n, width: 2 }, y, 2, { steps: 0 })).toThrow(/steps/);
    expect(() => trainLogisticRegression({ x, rows: n, width: 2 }, new Int32Array(n).fill(2), 2)).toThrow(/label 0 is 2/);
  });

  it('reaches AUC > 0.95 on breast_cancer_wdbc (train on real, test on real)', async () => {
    const t = await loadDatasetTable('breast_cancer_wdbc');
    const ti = targetIndex(t.schema);
    const { train, test } = trainTestSplit(t.rows.length, 0.3, 42, t.rows.map((r) => r[ti] as string));
    const u = trtrAuc(subsetTable(t, train), subsetTable(t, test));
    expect(u.degenerate).toBe(false);
    expect(u.auc).toBeGreaterThan(0.95);
    expect(u.trainRows + u.testRows).toBe(569);
  });

  it('handles multi-class targets (one-vs-rest macro AUC)', async () => {
    const t = await loadDatasetTable('diabetes_efron');
    const ti = targetIndex(t.schema);
    const { train, test } = trainTestSplit(t.rows.length, 0.3, 1, t.rows.map((r) => r[ti] as string));
    const u = trtrAuc(subsetTable(t, train), subsetTable(t, test));
    expect(u.perClass).toHaveLength(3);
    expect(u.perClass.every((a) => a !== null && a > 0.5)).toBe(true);
    expect(u.auc).toBeGreaterThan(0.65);
  });

  it('returns AUC 0.5 with a flag when synthetic data has a single class', () => {
    const real = correlatedTable(1, 200);
    const oneClass: Table = { schema, rows: real.rows.map((r) => [r[0], r[1], r[2], '1']) };
    const u = tstrAuc(oneClass, real);
    expect(u).toMatchObject({ auc: 0.5, degenerate: true, reason: 'training data has a single class', trainClasses: 1 });
    const ok = tstrAuc(correlatedTable(7, 200), real, { steps: 100 });
    expect(ok.degenerate).toBe(false);
    expect(ok.auc).toBeGreaterThan(0.8);
  });
});
