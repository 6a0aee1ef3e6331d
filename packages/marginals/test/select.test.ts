import { describe, expect, it } from 'vitest';
import { createPrng } from '@fedtwin/models';
import { allPairs, cryptoUniform, exponentialMechanism, independenceL1, independenceL2Squared, maximumSpanningTree, selectTreeExponential } from '../src/index.ts';

describe('selection', () => {
  it('exponential mechanism: P(i) ∝ exp(ε·score_i/(2Δ)) (Gumbel-max), argmax at ε = ∞', () => {
    const scores = [0, 1, 3];
    const epsilon = 1.2;
    const w = scores.map((s) => Math.exp((epsilon * s) / 2));
    const p = w.map((x) => x / w.reduce((a, b) => a + b, 0));
    const prng = createPrng(11);
    const n = 200_000;
    const hits = [0, 0, 0];
    for (let i = 0; i < n; i++) hits[exponentialMechanism(scores, epsilon, 1, () => prng.next() || 0.5)]++;
    // 6 binomial standard deviations per outcome: cannot fail by chance (p < 1e-8), fails if P is wrong.
    p.forEach((pi, i) => expect(Math.abs(hits[i] / n - pi)).toBeLessThan(6 * Math.sqrt((pi * (1 - pi)) / n)));
    expect(exponentialMechanism([5, 9, 2], Infinity, 1, () => 0.5)).toBe(1);
    // Sensitivity 2 halves the exponent: the same as ε/2 with Δ = 1, checked through the uniforms.
    const u = [0.3, 0.8, 0.6];
    let k = 0;
    let j = 0;
    expect(exponentialMechanism(scores, 2, 2, () => u[k++ % 3])).toBe(exponentialMechanism(scores, 1, 1, () => u[j++ % 3]));
    const cu = cryptoUniform();
    for (let i = 0; i < 1000; i++) {
      const x = cu();
      expect(x > 0 && x < 1).toBe(true);
    }
    expect(() => exponentialMechanism([], 1, 1, cu)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  it('scores: L1 and unbiased squared-L2 distance to the independence table, by hand', () => {
    // 2×2 counts [[4, 0], [0, 4]]; margins (4, 4) each; total 8: independence [[2, 2], [2, 2]].
    expect(independenceL1([4, 0, 0, 4], [4, 4], [4, 4], 8)).toBe(8);
    expect(independenceL1([2, 2, 2, 2], [1, 1], [3, 3], 8)).toBe(0); // margins of any scale
    expect(independenceL2Squared([4, 0, 0, 4], [4, 4], [4, 4], 8, 1)).toBe(16 - 4);
  });

  it('spanning trees: Kruskal on weights; EM picks at ε = ∞ give the same tree', () => {
    // A chain 0 – 1 – 2 – 3 is the heaviest spanning tree.
    const cand = allPairs(4);
    const weight = new Map([['0,1', 10], ['1,2', 9], ['2,3', 8], ['0,2', 5], ['0,3', 1], ['1,3', 2]]);
    const w = cand.map(([a, b]) => weight.get(`${a},${b}`) as number);
    expect(maximumSpanningTree(4, cand, w)).toEqual([[0, 1], [1, 2], [2, 3]]);
    expect(selectTreeExponential({ columns: 4, candidates: cand, scores: w, epsilon: Infinity, sensitivity: 1, uniform: () => 0.5 })).toEqual([[0, 1], [1, 2], [2, 3]]);
    // Whatever the noise, EM picks never close a cycle and always connect the columns.
    const prng = createPrng(3);
    for (let t = 0; t < 20; t++) {
      const tree = selectTreeExponential({ columns: 4, candidates: cand, scores: w, epsilon: 0.01, sensitivity: 1, uniform: () => prng.next() || 0.5 });
      expect(tree.length).toBe(3);
      const seen = new Set(tree.flat());
      expect(seen.size).toBe(4);
    }
  });
});
