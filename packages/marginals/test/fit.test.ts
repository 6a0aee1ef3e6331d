import { describe, expect, it } from 'vitest';
import { createRng, seededNoise } from '@fedtwin/models';
import type { TableSchema } from '@fedtwin/models';
import { addNoise, domainFromSchema, estimateLeaves, estimateOneWays, fitTree, hierarchyOf, ipf, levelCounts, projectSimplex, rangeCover } from '../src/index.ts';

/** Least squares by the normal equations (Gaussian elimination): independent of estimateLeaves. */
function leastSquares(a: number[][], y: number[]): number[] {
  const n = a[0].length;
  const m = Array.from({ length: n }, (_, i) => [...Array.from({ length: n }, (_, j) => a.reduce((s, r) => s + r[i] * r[j], 0)), a.reduce((s, r, k) => s + r[i] * y[k], 0)]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

describe('hierarchical 1-way estimates', () => {
  it('levels are sums of leaves; σ = 0 returns the leaves exactly', () => {
    const h = hierarchyOf(10, 3);
    expect(h.spans).toEqual([9, 3, 1]);
    expect(h.sizes).toEqual([2, 4, 10]);
    const leaves = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const lv = levelCounts(h, leaves);
    expect(lv.map((l) => Array.from(l))).toEqual([[45, 10], [6, 15, 24, 10], leaves]);
    expect(Array.from(estimateLeaves(h, lv, 0))).toEqual(leaves);
    expect(hierarchyOf(4, 8).spans).toEqual([1]); // few leaves: a flat histogram
  });

  it('without clipping or smoothing it is the least-squares estimate of Hay et al. (complete tree)', () => {
    const h = hierarchyOf(8, 2);
    const truth = [120, 80, 100, 95, 130, 70, 110, 90];
    const noisy = addNoise(levelCounts(h, truth), 4, seededNoise(createRng(9)));
    const est = estimateLeaves(h, noisy, 4, undefined, 'none');
    // Design matrix: one row per node (level by level), 1 where the leaf is under the node.
    const rows: number[][] = [];
    const y: number[] = [];
    h.spans.forEach((span, l) => {
      for (let i = 0; i < h.sizes[l]; i++) {
        rows.push(Array.from({ length: 8 }, (_, j) => (Math.floor(j / span) === i ? 1 : 0)));
        y.push(noisy[l][i]);
      }
    });
    const ls = leastSquares(rows, y);
    ls.forEach((v, j) => expect(est[j]).toBeCloseTo(v, 9));
  });

  it('James–Stein: children within the noise get an even split, clear structure is kept', () => {
    const flat = hierarchyOf(4, 4);
    expect(Array.from(estimateLeaves(flat, [Float64Array.of(10, 12, 8, 10)], 5, 40))).toEqual([10, 10, 10, 10]);
    expect(Array.from(estimateLeaves(flat, [Float64Array.of(10, 12, 8, 10)], 5, 40, 'none'))).toEqual([10, 12, 8, 10]);
    const spike = estimateLeaves(flat, [Float64Array.of(100, 0, 0, 0)], 1, 100);
    expect(spike[0]).toBeGreaterThan(99.9);
    expect(spike.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 9);
    // Non-negative and consistent with the total, whatever the noise.
    const h = hierarchyOf(1000, 8);
    const est = estimateLeaves(h, addNoise(levelCounts(h, new Float64Array(1000).fill(0.3)), 20, seededNoise(createRng(2))), 20, 300);
    expect(Math.min(...est)).toBeGreaterThanOrEqual(0);
    expect(est.reduce((a, b) => a + b, 0)).toBeCloseTo(300, 6);
  });

  it('rangeCover counts the nodes a range adds up', () => {
    const h = hierarchyOf(8, 2);
    expect(rangeCover(h, 0, 8)).toBe(2);
    expect(rangeCover(h, 0, 4)).toBe(1);
    expect(rangeCover(h, 1, 7)).toBe(4); // [1,2) [2,4) [4,6) [6,7)
    expect(() => rangeCover(h, 3, 2)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});

describe('fit', () => {
  it('projectSimplex: the Euclidean projection onto {x ≥ 0, Σx = total}', () => {
    expect(Array.from(projectSimplex([3, -1, 2, 0.5], 4))).toEqual([2.5, 0, 1.5, 0]);
    expect(Array.from(projectSimplex([3, -1, 2, 0.5], 10))).toEqual([4.375, 0.375, 3.375, 1.875]);
    expect(Array.from(projectSimplex([-5, 3], 0))).toEqual([0, 0]);
    expect(Array.from(projectSimplex([1, 2, 3], 6))).toEqual([1, 2, 3]);
  });

  it('ipf matches row and column sums and keeps the odds ratio; an emptied row still gets its mass', () => {
    const t = ipf([1, 2, 3, 4], [5, 5], [4, 6]);
    expect(t[0] + t[1]).toBeCloseTo(5, 8);
    expect(t[0] + t[2]).toBeCloseTo(4, 8);
    expect((t[0] * t[3]) / (t[1] * t[2])).toBeCloseTo((1 * 4) / (2 * 3), 5);
    const z = ipf([0, 0, 3, 1], [2, 4], [3, 3]);
    expect(z[0] + z[1]).toBeCloseTo(2, 8);
    expect(z[1] + z[3]).toBeCloseTo(3, 8);
    expect(() => ipf([1, 1, 1, 1], [1, 1], [1, 2])).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  const schema: TableSchema = {
    target: 'y',
    columns: [
      { name: 'y', kind: 'categorical', categories: ['a', 'b'] },
      { name: 'x', kind: 'numeric', min: 0, max: 2, integer: true, decimals: 0 },
      { name: 'z', kind: 'categorical', categories: ['u', 'v'] },
    ],
  };

  it('1-way estimates are the inverse-variance weighted evidence (own counts and 2-way margins)', () => {
    const domain = domainFromSchema(schema);
    // y measured twice: its own counts [10, 30] (variance 1) and the margin of a y×z table (variance
    // 2 per table cell, so 4 per margin cell): weights 0.8 / 0.2.
    const est = estimateOneWays(domain, [
      { marginal: [0], values: Float64Array.of(10, 30), variance: 1 },
      { marginal: [0, 2], values: Float64Array.of(10, 10, 5, 15), variance: 2 },
      { marginal: [1], values: Float64Array.of(10, 10, 20), variance: 1 },
    ], 40);
    expect(est[0][0]).toBeCloseTo(0.8 * 10 + 0.2 * 20, 12);
    expect(est[0][1]).toBeCloseTo(0.8 * 30 + 0.2 * 20, 12);
    expect(Array.from(est[2])).toEqual([15, 25]);
  });

  it('exact measurements of a tree-shaped table give back its marginals and conditionals', () => {
    const domain = domainFromSchema(schema);
    // counts of (y, x): y=a: x 0,1,2 = 10, 20, 10; y=b: 30, 5, 5. (x, z): x=0: 25, 15; x=1: 5, 20; x=2: 5, 10.
    const yx = Float64Array.of(10, 20, 10, 30, 5, 5);
    const xz = Float64Array.of(25, 15, 5, 20, 5, 10);
    const m = fitTree(schema, domain, [
      { marginal: [0, 1], values: yx, variance: 0 },
      { marginal: [1, 2], values: xz, variance: 0 },
    ], [[0, 1], [1, 2]]);
    expect(m.total).toBe(80);
    expect(m.order).toEqual([0, 1, 2]); // rooted at the target
    expect(m.parent).toEqual([-1, 0, 1]);
    expect(m.oneWay[0]).toEqual([0.5, 0.5]);
    const cx = m.conditional[1] as number[];
    [10 / 40, 20 / 40, 10 / 40, 30 / 40, 5 / 40, 5 / 40].forEach((p, i) => expect(cx[i]).toBeCloseTo(p, 5));
    const cz = m.conditional[2] as number[];
    [25 / 40, 15 / 40, 5 / 25, 20 / 25, 5 / 15, 10 / 15].forEach((p, i) => expect(cz[i]).toBeCloseTo(p, 5));
    expect(() => fitTree(schema, domain, [{ marginal: [0, 1], values: yx, variance: 0 }], [[0, 1], [1, 2]])).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});
