import { describe, expect, it } from 'vitest';
import { auditOneRun, countCorrect, defaultGuessCounts, guessFromScores, twoMeansSplit, maxAttainableEpsilon, oneRunEpsilonLower } from '@fedtwin/audit';

describe('guesses from membership scores', () => {
  it('guesses in for the k+ highest, out for the k− lowest, abstains in between; ties by index', () => {
    expect(Array.from(guessFromScores([0.1, 5, 3, -2, 3, 0], { kPlus: 2, kMinus: 1 }))).toEqual([0, 1, 1, -1, 0, 0]);
    expect(Array.from(guessFromScores([1, 1, 1, 1], { kPlus: 1, kMinus: 1 }))).toEqual([1, 0, 0, -1]);
    expect(Array.from(guessFromScores([2, 1], { kPlus: 0, kMinus: 0 }))).toEqual([0, 0]);
    expect(() => guessFromScores([1, 2], { kPlus: 2, kMinus: 1 })).toThrow(expect.objectContaining({ code: 'AUDIT_BAD_ARGUMENT' }));
    expect(() => guessFromScores([1, Number.NaN], { kPlus: 1, kMinus: 0 })).toThrow(expect.objectContaining({ code: 'AUDIT_BAD_ARGUMENT' }));
  });

  it('counts a guess right when +1 meets an included canary or −1 an excluded one', () => {
    expect(countCorrect(Int8Array.from([1, 1, -1, -1, 0]), [true, false, false, true, true])).toEqual({ guesses: 4, correct: 2 });
  });

  it('default candidates: about m/10, m/4, m/2 guesses split evenly, and all m split into two groups by score', () => {
    // 34 high scores (every third index), 66 low ones: the two-means split calls exactly those 34 "in".
    const scores = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? 100 : 0) + i / 1000);
    expect(defaultGuessCounts(scores)).toEqual([{ kPlus: 5, kMinus: 5 }, { kPlus: 13, kMinus: 12 }, { kPlus: 25, kMinus: 25 }, { kPlus: 34, kMinus: 66 }]);
    // Tiny m: duplicates dropped.
    expect(defaultGuessCounts([3, 2, 1])).toEqual([{ kPlus: 1, kMinus: 0 }, { kPlus: 1, kMinus: 1 }, { kPlus: 1, kMinus: 2 }]);
  });

  it('twoMeansSplit: Otsu\'s split of the sorted scores, looked for between m/4 and 3m/4', () => {
    // Two groups with a wide spread inside the low one: the widest gap (−500 to −900, k = 6) is not the split.
    expect(twoMeansSplit([-10, -12, -15, -20, -400, -500, -900, -950])).toBe(4);
    // Reference by brute force over k of k(m−k)(μ_high − μ_low)², computed in the test.
    const xs = [5, 3.2, 3.1, 2, 1.9, 1.5, 0.2, -1, -1.1, -4, -4.2, -7];
    const score = (k: number) => { const a = xs.slice(0, k), b = xs.slice(k); const mu = (v: number[]) => v.reduce((p, q) => p + q, 0) / v.length; return k * (xs.length - k) * (mu(a) - mu(b)) ** 2; };
    const ks = [3, 4, 5, 6, 7, 8, 9];
    expect(twoMeansSplit(xs)).toBe(ks.reduce((p, k) => (score(k) > score(p) ? k : p)));
    // Outside m/4 … 3m/4 = 2 … 6 no split is taken, however clear.
    expect(twoMeansSplit([100, 1, 1, 1, 1, 1, 1, 1])).toBe(2);
    // A large common offset changes nothing.
    expect(twoMeansSplit([-10, -12, -15, -20, -400, -500, -900, -950].map((x) => x + 1e9))).toBe(4);
    expect(() => twoMeansSplit([1, Number.NaN])).toThrow(expect.objectContaining({ code: 'AUDIT_BAD_ARGUMENT' }));
  });
});

describe('auditOneRun', () => {
  const m = 200;
  // Coins fixed by a rule that has nothing to do with the scores below.
  const included = Array.from({ length: m }, (_, i) => ((i * 7919) % 13) % 2 === 0);

  it('a perfect score (members score higher) gets every guess right and reaches the ceiling for m canaries', () => {
    const scores = included.map((x, i) => (x ? 10 : 0) + i * 1e-6);
    const a = auditOneRun({ scores, included, delta: 1e-5 });
    const nIn = included.filter(Boolean).length;
    expect(nIn).not.toBe(m / 2); // so an even split of all m would err; the gap split does not
    expect(a).toMatchObject({ canaries: m, confidence: 0.95, delta: 1e-5, kPlus: nIn, kMinus: m - nIn, guesses: m, correct: m });
    expect(a.candidates.map((c) => c.correct)).toEqual([20, 50, 100, m]);
    expect(a.epsilonLower).toBeCloseTo(oneRunEpsilonLower({ m, r: m, v: m, delta: 1e-5, alpha: 0.05 / 4 }), 12);
    expect(a.maxAttainable).toBe(a.epsilonLower);
    expect(a.method).toMatch(/Steinke/);
  });

  it('scores independent of membership give ε_lower = 0 on most draws (a 95 % bound: at most ~5 % may exceed 0)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let positive = 0;
    for (let t = 0; t < 40; t++) {
      const inc = Array.from({ length: m }, () => rand() < 0.5);
      const scores = Array.from({ length: m }, () => rand());
      if (auditOneRun({ scores, included: inc, delta: 1e-5 }).epsilonLower > 0) positive++;
    }
    expect(positive).toBeLessThanOrEqual(6);
  });

  it('reversed scores (members lower) show nothing', () => {
    const scores = included.map((x) => (x ? 0 : 10));
    expect(auditOneRun({ scores, included, delta: 1e-5 }).epsilonLower).toBe(0);
  });

  it('maxAttainableEpsilon: the one-run method needs many canaries for a large bound', () => {
    const at = (n: number) => maxAttainableEpsilon(n, { delta: 1e-5 });
    expect(at(50)).toBeLessThan(at(200));
    expect(at(200)).toBeLessThan(at(1000));
    // All 1000 right at α = 0.05/4 and δ = 0: q = 0.0125^(1/1000), ε = log(q/(1−q)) ≈ 5.43; the δ term of
    // Theorem 3 (2mδ·α) can only lower the bound.
    const q = 0.0125 ** (1 / 1000);
    expect(maxAttainableEpsilon(1000, { delta: 0 })).toBeCloseTo(Math.log(q / (1 - q)), 8);
    expect(at(1000)).toBeLessThan(maxAttainableEpsilon(1000, { delta: 0 }));
  });
});
