// Splitting rows across simulated sites (non-IID, label-skewed via Dirichlet) and into train/test.
import { FedtwinError } from '@fedtwin/errors';
import { createPrng } from './random.ts';
import type { Prng } from './random.ts';

export interface DirichletSplitOptions {
  /** Minimum rows per node. Default min(10, ⌊n / nodes⌋). */
  minPerNode?: number;
  /** Whole redraws tried before rebalancing. Default 100. */
  maxAttempts?: number;
}

export interface DirichletSplitResult {
  /** Row indices per node, ascending. */
  parts: number[][];
  /** Draws made (1 = the first draw satisfied minPerNode). */
  attempts: number;
  /** Rows moved by the fallback rebalancing (0 if a draw satisfied minPerNode). */
  moved: number;
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `${name} must be an integer ≥ ${min}, got ${v}`);
  }
}

function labelGroups(labels: ArrayLike<number | string>): number[][] {
  const byLabel = new Map<number | string, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    let g = byLabel.get(l);
    if (g === undefined) byLabel.set(l, (g = []));
    g.push(i);
  }
  // Deterministic class order regardless of first appearance.
  const keys = [...byLabel.keys()].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
  return keys.map((k) => byLabel.get(k) as number[]);
}

/**
 * Label-skewed non-IID split (Hsu et al. 2019; NIID-Bench): for each class, proportions across
 * nodes are drawn from Dirichlet(α,…,α) and the class's shuffled rows are cut accordingly.
 * Small α → each node sees few classes; large α → close to IID. If a draw leaves a node with fewer
 * than `minPerNode` rows the whole draw is repeated (up to maxAttempts); after that, rows are moved
 * one by one from the largest node to the smallest (a random row each time) until all meet the
 * minimum. Same labels, nodes, α and seed → same split.
 */
export function dirichletSplitDetailed(
  labels: ArrayLike<number | string>,
  nodes: number,
  alpha: number,
  seed: number | string,
  opts: DirichletSplitOptions = {},
): DirichletSplitResult {
  const n = labels.length;
  checkInt('nodes', nodes, 1);
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new FedtwinError('DATA_BAD_ARGUMENT', `alpha must be a positive number, got ${alpha}`, { hint: 'Typical values: 0.1 (very skewed) … 100 (near IID)' });
  if (n < nodes) {
    throw new FedtwinError('DATA_SPLIT_IMPOSSIBLE', `cannot split ${n} rows across ${nodes} nodes`, { hint: 'Use fewer nodes or more data' });
  }
  const minPerNode = opts.minPerNode ?? Math.min(10, Math.floor(n / nodes));
  checkInt('minPerNode', minPerNode, 0);
  if (minPerNode * nodes > n) {
    throw new FedtwinError('DATA_SPLIT_IMPOSSIBLE', `cannot give each of ${nodes} nodes ${minPerNode} rows from ${n}`, { hint: `Use minPerNode ≤ ${Math.floor(n / nodes)} or fewer nodes` });
  }
  const maxAttempts = opts.maxAttempts ?? 100;
  checkInt('maxAttempts', maxAttempts, 1);
  const rng = createPrng(seed);
  const groups = labelGroups(labels);
  const alphas = new Array<number>(nodes).fill(alpha);

  let parts: number[][] = [];
  let attempts = 0;
  for (;;) {
    attempts++;
    parts = Array.from({ length: nodes }, () => []);
    for (const g of groups) {
      const idx = rng.shuffle(g.slice());
      const p = rng.dirichlet(alphas);
      // Cut points from cumulative proportions, as NIID-Bench does.
      let start = 0;
      let cum = 0;
      for (let j = 0; j < nodes; j++) {
        cum += p[j];
        const stop = j === nodes - 1 ? idx.length : Math.min(idx.length, Math.round(cum * idx.length));
        for (let q = start; q < stop; q++) parts[j].push(idx[q]);
        if (stop > start) start = stop;
      }
    }
    if (parts.every((p) => p.length >= minPerNode) || attempts >= maxAttempts) break;
  }
  const moved = rebalance(parts, minPerNode, rng);
  for (const p of parts) p.sort((a, b) => a - b);
  return { parts, attempts, moved };
}

function rebalance(parts: number[][], minPerNode: number, rng: Prng): number {
  let moved = 0;
  for (;;) {
    let lo = 0;
    let hi = 0;
    for (let j = 1; j < parts.length; j++) {
      if (parts[j].length < parts[lo].length) lo = j;
      if (parts[j].length > parts[hi].length) hi = j;
    }
    if (parts[lo].length >= minPerNode) return moved;
    const src = parts[hi];
    const q = rng.int(src.length);
    const row = src[q];
    src[q] = src[src.length - 1];
    src.pop();
    parts[lo].push(row);
    moved++;
  }
}

/** Row indices per node (ascending); see dirichletSplitDetailed. */
export function dirichletSplit(labels: ArrayLike<number | string>, nodes: number, alpha: number, seed: number | string, opts: DirichletSplitOptions = {}): number[][] {
  return dirichletSplitDetailed(labels, nodes, alpha, seed, opts).parts;
}

/** IID split: shuffle and deal rows round-robin (node sizes differ by at most one). */
export function iidSplit(n: number, nodes: number, seed: number | string): number[][] {
  checkInt('n', n, 1);
  checkInt('nodes', nodes, 1);
  if (n < nodes) throw new FedtwinError('DATA_SPLIT_IMPOSSIBLE', `cannot split ${n} rows across ${nodes} nodes`);
  const idx = createPrng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const parts: number[][] = Array.from({ length: nodes }, () => []);
  idx.forEach((r, i) => parts[i % nodes].push(r));
  for (const p of parts) p.sort((a, b) => a - b);
  return parts;
}

/**
 * Train/test indices (ascending). With `stratifyBy`, each class contributes round(count·testFraction)
 * rows to test. For n ≥ 2 and 0 < testFraction < 1, both sides get at least one row.
 */
export function trainTestSplit(
  n: number,
  testFraction: number,
  seed: number | string,
  stratifyBy?: ArrayLike<number | string>,
): { train: number[]; test: number[] } {
  checkInt('n', n, 1);
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `testFraction must be in [0, 1), got ${testFraction}`);
  }
  if (stratifyBy !== undefined && stratifyBy.length !== n) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `stratifyBy has ${stratifyBy.length} labels for ${n} rows`);
  }
  const rng = createPrng(seed);
  const groups = stratifyBy === undefined ? [Array.from({ length: n }, (_, i) => i)] : labelGroups(stratifyBy);
  const train: number[] = [];
  const test: number[] = [];
  for (const g of groups) {
    const idx = rng.shuffle(g.slice());
    const k = Math.round(idx.length * testFraction);
    for (let q = 0; q < idx.length; q++) (q < k ? test : train).push(idx[q]);
  }
  if (testFraction > 0 && n >= 2) {
    // Rounding per class can empty one side on tiny inputs; move one random row across.
    if (test.length === 0) test.push(train.splice(rng.int(train.length), 1)[0]);
    if (train.length === 0) train.push(test.splice(rng.int(test.length), 1)[0]);
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train, test };
}

/** Rows of an array picked by index (helper for applying a split). */
export function pick<T>(items: ReadonlyArray<T>, indices: ReadonlyArray<number>): T[] {
  return indices.map((i) => items[i]);
}
