// TSTR/TRTR with a tree ensemble (issue 14 item 4): logistic regression alone rewards a release that gets the
// linear structure right and misses interactions; a random forest (ml-random-forest, a maintained CART
// ensemble) sees those too. Class probabilities are the trees' vote shares — computed here from each tree's
// prediction, because the library's predictProbability drops the first tree's vote (its reduce has no initial
// value). Also the minority-class recall, the figure a clinician asks about a rare diagnosis.
import { RandomForestClassifier } from 'ml-random-forest';
import { encodeTable } from './encode.ts';
import { assertSameSchema, multiclassAuc, type UtilityResult } from './evaluate.ts';
import { targetIndex } from './schema.ts';
import type { EncodedTable, Table } from './types.ts';

export const DEFAULT_FOREST_TREES = 30;

export interface ForestOptions {
  /** Trees (default 30: ml-cart's split search costs ~0.1 s per tree on WDBC, and every sim report fits two forests). */
  trees?: number;
  /** Deepest split (default 12). */
  maxDepth?: number;
  /** Seed of the bootstrap samples and feature draws (default 1). */
  seed?: number;
}

export interface ClassifierUtility extends UtilityResult {
  /** The rarest class in the test set (ties: the first in schema order) and its recall (argmax prediction). */
  minorityClass: string | null;
  minorityRecall: number | null;
}

/** Recall of the test set's rarest class under argmax of `probs` (rows × k). */
export function minorityRecall(probs: ArrayLike<number>, labels: ArrayLike<number>, k: number): { cls: number; recall: number } | null {
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  let cls = -1;
  for (let c = 0; c < k; c++) if (counts[c]! > 0 && (cls < 0 || counts[c]! < counts[cls]!)) cls = c;
  if (cls < 0) return null;
  let hit = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== cls) continue;
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + best]!) best = c;
    if (best === cls) hit++;
  }
  return { cls, recall: hit / counts[cls]! };
}

const rowsOf = (e: EncodedTable): number[][] => Array.from({ length: e.rows }, (_, i) => Array.from(e.x.subarray(i * e.width, (i + 1) * e.width)));

/** Train a random forest on `train` (features → target) and score it on `test`: AUC (one-vs-rest macro for k > 2) and minority recall. */
export function forestUtility(train: Table, test: Table, opts: ForestOptions = {}): ClassifierUtility {
  assertSameSchema(train.schema, test.schema);
  targetIndex(train.schema);
  const tr = encodeTable(train);
  const te = encodeTable(test);
  const k = tr.classes.length;
  const trainClasses = new Set(tr.cond).size;
  const base = { trainClasses, trainRows: tr.rows, testRows: te.rows };
  const degenerate = (reason: string): ClassifierUtility => ({ ...base, auc: 0.5, perClass: new Array(k).fill(null), degenerate: true, reason, minorityClass: null, minorityRecall: null });
  if (tr.rows === 0 || te.rows === 0) return degenerate('empty training or test data');
  if (trainClasses < 2) return degenerate('training data has a single class');
  if (new Set(te.cond).size < 2) return degenerate('test data has a single class');
  const trees = opts.trees ?? DEFAULT_FOREST_TREES;
  const forest = new RandomForestClassifier({
    // ml-random-forest draws a feature subset once per tree, not per split as sklearn does: a tree limited to
    // √d features could never see an interaction across subsets, so every tree gets all features (the
    // ensemble's diversity comes from bagging the rows).
    nEstimators: trees, maxFeatures: tr.width, replacement: false,
        // ml-cart stops splitting below a Gini gain of 0.01 by default, so a tree facing an interaction (no single
    // split gains much) stays a stump predicting the majority class; sklearn-like trees split while any gain is left.
    useSampleBagging: true, noOOB: true, seed: opts.seed ?? 1, treeOptions: { maxDepth: opts.maxDepth ?? 12, gainThreshold: 0, minNumSamples: 2 },
  } as ConstructorParameters<typeof RandomForestClassifier>[0]);
  forest.train(rowsOf(tr), Array.from(tr.cond));
  // rows × trees matrix of each tree's predicted class
  const votes = (forest as unknown as { predictionValues(x: number[][]): { rows: number; getRow(i: number): number[] } }).predictionValues(rowsOf(te));
  const probs = new Float64Array(te.rows * k);
  for (let i = 0; i < te.rows; i++) {
    const row = votes.getRow(i);
    for (const v of row) probs[i * k + v]! += 1 / row.length;
  }
  const { auc, perClass } = multiclassAuc(probs, te.cond, k);
  const minority = minorityRecall(probs, te.cond, k);
  return { ...base, auc, perClass, degenerate: false, minorityClass: minority ? tr.classes[minority.cls]! : null, minorityRecall: minority?.recall ?? null };
}
