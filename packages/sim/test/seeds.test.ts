// Issue 14 item 4, `fedtwin sim --seeds K`: mean ± 95 % CI for every figure, checked by hand.
import { describe, expect, it } from 'vitest';
import { at, meanInterval, summarise } from '../src/seeds.ts';

describe('meanInterval', () => {
  it('Student t interval of the mean, by hand', () => {
    // [1, 2, 3]: mean 2, sd 1, half-width t(0.975, 2) · 1/√3 = 4.303 / 1.732 = 2.4843
    const iv = meanInterval([1, 2, 3]);
    expect(iv.mean).toBe(2);
    expect(iv.sd).toBeCloseTo(1, 12);
    expect(iv.hi - iv.mean).toBeCloseTo(4.303 / Math.sqrt(3), 10);
    expect(iv.mean - iv.lo).toBeCloseTo(4.303 / Math.sqrt(3), 10);
    // 5 equal values: a zero-width interval
    expect(meanInterval([0.9, 0.9, 0.9, 0.9, 0.9])).toMatchObject({ mean: 0.9, lo: 0.9, hi: 0.9, sd: 0, n: 5 });
    // beyond 31 runs the normal quantile
    const many = Array.from({ length: 40 }, (_, i) => i % 2);
    expect(meanInterval(many).hi - 0.5).toBeCloseTo(1.96 * meanInterval(many).sd / Math.sqrt(40), 12);
  });

  it('leaves out non-finite values; one value has no interval', () => {
    expect(meanInterval([1, Number.NaN, 3])).toMatchObject({ mean: 2, n: 2 });
    const one = meanInterval([0.7]);
    expect(one.mean).toBe(0.7);
    expect(Number.isNaN(one.lo)).toBe(true);
    expect(meanInterval([]).n).toBe(0);
  });
});

describe('summarise', () => {
  it('means every number of a report tree, mirrors it with intervals, keeps strings from the first run', () => {
    const runs = [
      { dataset: 'wdbc', utility: { tstrAuc: { federated: 0.9, perNode: [0.5, 0.7] } }, privacy: { epsilon: null, mode: 'record' }, rows: [1, 2] },
      { dataset: 'wdbc', utility: { tstrAuc: { federated: 0.8, perNode: [0.7, 0.9] } }, privacy: { epsilon: null, mode: 'record' }, rows: [1, 2, 3] },
    ];
    const { mean, ci95 } = summarise(runs);
    expect(at(mean, 'utility.tstrAuc.federated')).toBeCloseTo(0.85, 12);
    expect(at(mean, 'utility.tstrAuc.perNode')).toEqual([0.6, 0.8].map((x) => expect.closeTo(x, 12)));
    expect(at(mean, 'dataset')).toBe('wdbc');
    expect(at(mean, 'privacy.epsilon')).toBeNull();
    expect(at(mean, 'rows')).toEqual([1, 2]); // lengths differ: the first run's, no interval
    expect(at(ci95, 'rows')).toBeNull();
    const iv = at(ci95, 'utility.tstrAuc.federated') as { mean: number; lo: number; hi: number; n: number };
    expect(iv.n).toBe(2);
    expect(iv.hi - iv.mean).toBeCloseTo(12.706 * (Math.SQRT2 * 0.05) / Math.SQRT2, 10);
  });
});
