// Issue 14 item 4: TSTR with a tree ensemble beside logistic regression, and minority-class recall.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import { createPrng } from '../src/random.ts';
import { forestUtility, minorityRecall } from '../src/forest.ts';
import { utilityAuc } from '../src/evaluate.ts';
import type { Table, TableSchema } from '../src/types.ts';

const schema: TableSchema = {
  target: 't',
  columns: [
    { name: 'a', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 3 },
    { name: 'b', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 3 },
    { name: 't', kind: 'categorical', categories: ['no', 'yes'] },
  ],
};

/** XOR of two thresholds: no linear boundary separates it, a tree does. `yesShare` thins out the "yes" class. */
function xor(n: number, seed: number, yesShare = 1): Table {
  const rng = createPrng(seed);
  const rows: Table['rows'] = [];
  while (rows.length < n) {
    const a = rng.next();
    const b = rng.next();
    const yes = (a > 0.5) !== (b > 0.5);
    if (yes && rng.next() > yesShare) continue;
    rows.push([a, b, yes ? 'yes' : 'no']);
  }
  return { schema, rows };
}

describe('minorityRecall', () => {
  it('recall of the rarest test class under argmax, by hand', () => {
    // labels: three of class 0, two of class 1 (the minority); the model gets one of the two.
    const probs = [0.9, 0.1, 0.8, 0.2, 0.6, 0.4, 0.3, 0.7, 0.55, 0.45];
    expect(minorityRecall(probs, [0, 0, 0, 1, 1], 2)).toEqual({ cls: 1, recall: 0.5 });
    expect(minorityRecall(probs, [1, 1, 1, 0, 0], 2)).toEqual({ cls: 0, recall: 0.5 });
    expect(minorityRecall([], [], 2)).toBeNull();
  });
});

describe('forestUtility', () => {
  beforeAll(async () => { await initBackend('cpu'); }); // logistic regression, for the comparison
  it('learns an interaction logistic regression cannot (XOR): forest AUC near 1, LR near chance', () => {
    const train = xor(400, 1);
    const test = xor(200, 2);
    const forest = forestUtility(train, test, { trees: 50, seed: 3 });
    const lr = utilityAuc(train, test);
    expect(forest.degenerate).toBe(false);
    expect(forest.auc).toBeGreaterThan(0.95);
    expect(lr.auc).toBeLessThan(0.7);
    expect(forest.minorityRecall).toBeGreaterThan(0.85);
  });

  it('reports the minority class by name and its recall when classes are unbalanced', () => {
    const train = xor(400, 4, 0.25);
    const test = xor(300, 5, 0.25);
    const r = forestUtility(train, test, { trees: 50, seed: 6 });
    expect(r.minorityClass).toBe('yes');
    expect(r.minorityRecall).toBeGreaterThan(0.6);
    expect(r.testRows).toBe(300);
  });

  it('a one-class training set is degenerate (chance AUC, no recall), not an exception', () => {
    const one: Table = { schema, rows: xor(100, 7).rows.filter((r) => r[2] === 'no') };
    const r = forestUtility(one, xor(50, 8));
    expect(r).toMatchObject({ degenerate: true, auc: 0.5, minorityRecall: null, reason: 'training data has a single class' });
  });
});
