import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPrng, prngFromState } from '../src/random.ts';
import { dirichletSplit, dirichletSplitDetailed, iidSplit, trainTestSplit } from '../src/split.ts';

describe('random (xoshiro128** seeded by SplitMix64)', () => {
  it('matches the reference C implementation', () => {
    // Vectors from Vigna's xoshiro128starstar.c / splitmix64.c compiled locally.
    const r = prngFromState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => r.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
    const s = createPrng(42); // state = first two SplitMix64(42) outputs, low word first
    expect(Array.from({ length: 6 }, () => s.nextUint32())).toEqual([1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222]);
  });

  it('is reproducible per seed, distinct across seeds, uniform in [0,1)', () => {
    const a = createPrng('run-1');
    const b = createPrng('run-1');
    const c = createPrng('run-2');
    const va = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(va);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(va);
    const r = createPrng(1);
    let sum = 0;
    let inRange = true;
    for (let i = 0; i < 20000; i++) {
      const u = r.next();
      inRange &&= u >= 0 && u < 1;
      sum += u;
    }
    expect(inRange).toBe(true);
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
    expect(() => createPrng(-1)).toThrow(/seed/);
    expect(() => createPrng(1.5)).toThrow(/seed/);
  });

  it('draws Gamma variates with the right mean and variance (Marsaglia–Tsang)', () => {
    const r = createPrng(3);
    for (const shape of [0.3, 1, 2.5, 9]) {
      const n = 20000;
      let s = 0;
      let s2 = 0;
      let min = Infinity;
      for (let i = 0; i < n; i++) {
        const g = r.gamma(shape);
        if (g < min) min = g;
        s += g;
        s2 += g * g;
      }
      const mean = s / n;
      const v = s2 / n - mean * mean;
      expect(min).toBeGreaterThanOrEqual(0);
      expect(Math.abs(mean - shape)).toBeLessThan(5 * Math.sqrt(shape / n) + 1e-3);
      expect(Math.abs(v / shape - 1)).toBeLessThan(0.12);
    }
  });

  it('draws Dirichlet vectors that sum to 1, even for tiny alpha', () => {
    const r = createPrng(5);
    for (const a of [1e-4, 0.1, 1, 50]) {
      const p = r.dirichlet([a, a, a, a, a]);
      expect(p.every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
      expect(p.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    }
    expect(Number.isFinite(r.logGamma(1e-6))).toBe(true);
  });
});

function labelsOf(classes: number, perClass: number): number[] {
  return Array.from({ length: classes * perClass }, (_, i) => i % classes);
}

function expectPartition(parts: number[][], n: number): void {
  const seen = new Uint8Array(n);
  for (const p of parts) {
    for (let i = 1; i < p.length; i++) expect(p[i]).toBeGreaterThan(p[i - 1]);
    for (const r of p) seen[r]++;
  }
  expect(Array.from(seen).every((c) => c === 1)).toBe(true);
}

function meanLabelEntropy(parts: number[][], labels: number[], classes: number): number {
  let total = 0;
  for (const p of parts) {
    const c = new Array<number>(classes).fill(0);
    for (const r of p) c[labels[r]]++;
    let h = 0;
    for (const x of c) if (x > 0) h -= (x / p.length) * Math.log2(x / p.length);
    total += h;
  }
  return total / parts.length;
}

describe('dirichletSplit', () => {
  const labels = labelsOf(4, 250);

  it('partitions the rows (every row exactly once) and is reproducible per seed', () => {
    const a = dirichletSplit(labels, 7, 0.5, 11);
    expectPartition(a, labels.length);
    expect(dirichletSplit(labels, 7, 0.5, 11)).toEqual(a);
    expect(dirichletSplit(Int32Array.from(labels), 7, 0.5, 11)).toEqual(a);
    expect(dirichletSplit(labels, 7, 0.5, 12)).not.toEqual(a);
  });

  it('gives small alpha more label skew than large alpha', () => {
    let skewed = 0;
    let iid = 0;
    for (let seed = 0; seed < 5; seed++) {
      skewed += meanLabelEntropy(dirichletSplit(labels, 10, 0.1, seed), labels, 4);
      iid += meanLabelEntropy(dirichletSplit(labels, 10, 100, seed), labels, 4);
    }
    expect(iid / 5).toBeGreaterThan(1.9); // max is log2(4) = 2
    expect(skewed / 5).toBeLessThan(1.2);
  });

  it('guarantees minPerNode, by redrawing or finally by moving rows', () => {
    const small = labelsOf(2, 50);
    const r = dirichletSplitDetailed(small, 10, 0.05, 1, { minPerNode: 8, maxAttempts: 1 });
    expect(r.moved).toBeGreaterThan(0);
    expect(r.parts.every((p) => p.length >= 8)).toBe(true);
    expectPartition(r.parts, small.length);
    const d = dirichletSplitDetailed(labels, 5, 1, 2);
    expect(d.parts.every((p) => p.length >= 10)).toBe(true);
  });

  it('holds the partition and minimum for any input (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.nat(),
        (ls, nodes, alpha, seed) => {
          fc.pre(ls.length >= nodes);
          const parts = dirichletSplit(ls, nodes, alpha, seed);
          expect(parts).toHaveLength(nodes);
          expectPartition(parts, ls.length);
          const min = Math.min(10, Math.floor(ls.length / nodes));
          expect(parts.every((p) => p.length >= min)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rejects impossible requests', () => {
    expect(() => dirichletSplit([0, 1], 3, 1, 0)).toThrow(/cannot split/);
    expect(() => dirichletSplit(labels, 10, 1, 0, { minPerNode: 200 })).toThrow(/cannot give/);
    expect(() => dirichletSplit(labels, 10, 0, 0)).toThrow(/alpha/);
    expect(() => dirichletSplit(labels, 0, 1, 0)).toThrow(/nodes/);
  });
});

describe('iidSplit / trainTestSplit', () => {
  it('iidSplit deals rows evenly', () => {
    const parts = iidSplit(103, 5, 9);
    expectPartition(parts, 103);
    expect(parts.map((p) => p.length).sort()).toEqual([20, 20, 21, 21, 21]);
  });

  it('trainTestSplit partitions, is reproducible, and stratifies', () => {
    const labels = [...labelsOf(2, 30), ...new Array(40).fill(1)]; // 30 of class 0, 70 of class 1
    const { train, test } = trainTestSplit(100, 0.2, 4, labels);
    expectPartition([train, test], 100);
    expect(trainTestSplit(100, 0.2, 4, labels)).toEqual({ train, test });
    expect(test.length).toBe(20);
    expect(test.filter((i) => labels[i] === 0).length).toBe(6);
    const plain = trainTestSplit(100, 0.25, 4);
    expect(plain.test.length).toBe(25);
    expect(trainTestSplit(100, 0, 4).test).toEqual([]);
  });

  it('keeps both sides non-empty on tiny inputs', () => {
    const s = trainTestSplit(2, 0.1, 1);
    expect(s.train.length).toBe(1);
    expect(s.test.length).toBe(1);
    expect(() => trainTestSplit(10, 1, 1)).toThrow(/testFraction/);
    expect(() => trainTestSplit(10, 0.2, 1, [0, 1])).toThrow(/stratifyBy/);
  });
});
