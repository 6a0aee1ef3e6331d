// Which 2-way marginals to measure: a spanning tree over the columns (MST, McKenna et al. 2021).
// Candidate pairs are scored by how badly the independence model built from the 1-way estimates
// explains them; the tree is grown Kruskal-style, each edge picked by the exponential mechanism
// ('exponential', MST's own selection) or, when no party may see unnoised pair counts, from noisy
// measurements of every pair ('measured': post-processing only).
import { randomFillSync } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import type { Domain } from './domain.ts';
import { columnSize } from './domain.ts';

export type Edge = readonly [number, number];

function badArgument(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message);
}

/** Every pair (a, b), a < b, in lexicographic order. */
export function allPairs(columns: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let a = 0; a < columns; a++) for (let b = a + 1; b < columns; b++) out.push([a, b]);
  return out;
}

/** Uniform doubles in (0, 1) from the OS CSPRNG (53 bits; never 0, so −log(−log u) is finite). */
export function cryptoUniform(): () => number {
  const pool = new Uint32Array(2048);
  let pos = pool.length;
  return () => {
    if (pos + 2 > pool.length) {
      randomFillSync(pool);
      pos = 0;
    }
    const hi = pool[pos++] >>> 5; // 27 bits
    const lo = pool[pos++] >>> 6; // 26 bits
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  };
}

/**
 * Exponential mechanism: index i with probability ∝ exp(ε·score_i/(2Δ)), drawn as the Gumbel-max
 * argmax_i(ε·score_i/(2Δ) + G_i) (exactly the same distribution, no normalising sums to overflow).
 * ε = ∞ is the plain argmax (DP off). `uniform` must give values in (0, 1); use cryptoUniform for DP.
 */
export function exponentialMechanism(scores: ArrayLike<number>, epsilon: number, sensitivity: number, uniform: () => number): number {
  if (scores.length === 0) throw badArgument('exponentialMechanism needs at least one candidate');
  if (!(epsilon > 0)) throw badArgument(`epsilon must be > 0, got ${epsilon}`);
  if (!(sensitivity > 0) || !Number.isFinite(sensitivity)) throw badArgument(`sensitivity must be a finite number > 0, got ${sensitivity}`);
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (!Number.isFinite(s)) throw badArgument(`score ${i} is ${s}`);
    let v: number;
    if (epsilon === Infinity) v = s;
    else {
      const u = uniform();
      if (!(u > 0 && u < 1)) throw badArgument(`uniform() must return values in (0, 1), got ${u}`);
      v = (epsilon * s) / (2 * sensitivity) - Math.log(-Math.log(u));
    }
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Union–find over column indices. */
class DisjointSet {
  readonly #parent: Int32Array;
  constructor(n: number) {
    this.#parent = Int32Array.from({ length: n }, (_, i) => i);
  }
  find(x: number): number {
    const p = this.#parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }
  union(a: number, b: number): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    this.#parent[rb] = ra;
    return true;
  }
}

/**
 * L1 distance between a pair's counts and the independence estimate total·p_a⊗p_b built from the
 * 1-way estimates (`oneWay[c]`: non-negative, any scale). With the counts unnoised, adding or removing
 * one record moves the score by at most 1 per unit of count sensitivity (the estimate is public).
 */
export function independenceL1(counts: ArrayLike<number>, pa: ArrayLike<number>, pb: ArrayLike<number>, total: number): number {
  if (counts.length !== pa.length * pb.length) throw badArgument(`a ${pa.length}×${pb.length} pair has ${counts.length} counts`);
  const sa = sum(pa);
  const sb = sum(pb);
  let s = 0;
  for (let i = 0; i < pa.length; i++) {
    const ea = sa > 0 ? (total * pa[i]) / sa : total / pa.length;
    for (let j = 0; j < pb.length; j++) {
      const e = ea * (sb > 0 ? pb[j] / sb : 1 / pb.length);
      s += Math.abs(counts[i * pb.length + j] - e);
    }
  }
  return s;
}

/**
 * Unbiased estimate of the squared L2 distance between a pair's true counts and the independence
 * estimate, from counts carrying N(0, σ²) per cell: ‖y − e‖² − cells·σ². The 'measured' score.
 */
export function independenceL2Squared(noisy: ArrayLike<number>, pa: ArrayLike<number>, pb: ArrayLike<number>, total: number, sigma: number): number {
  if (noisy.length !== pa.length * pb.length) throw badArgument(`a ${pa.length}×${pb.length} pair has ${noisy.length} counts`);
  const sa = sum(pa);
  const sb = sum(pb);
  let s = 0;
  for (let i = 0; i < pa.length; i++) {
    const ea = sa > 0 ? (total * pa[i]) / sa : total / pa.length;
    for (let j = 0; j < pb.length; j++) {
      const e = ea * (sb > 0 ? pb[j] / sb : 1 / pb.length);
      s += (noisy[i * pb.length + j] - e) ** 2;
    }
  }
  return s - noisy.length * sigma * sigma;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/**
 * MST's private tree: repeatedly pick, among candidate pairs joining two different components, one by
 * the exponential mechanism on its score, until the columns are connected (columns − 1 picks for all
 * pairs as candidates). Each pick costs ε (see privacy.ts).
 */
export function selectTreeExponential(init: {
  columns: number;
  candidates: readonly Edge[];
  scores: ArrayLike<number>;
  epsilon: number;
  sensitivity: number;
  uniform: () => number;
}): Edge[] {
  const { columns, candidates, scores } = init;
  if (scores.length !== candidates.length) throw badArgument(`${scores.length} scores for ${candidates.length} candidates`);
  const ds = new DisjointSet(columns);
  const tree: Edge[] = [];
  for (let step = 0; step < columns - 1; step++) {
    const open: number[] = [];
    for (let i = 0; i < candidates.length; i++) if (ds.find(candidates[i][0]) !== ds.find(candidates[i][1])) open.push(i);
    if (open.length === 0) break; // the candidates do not connect every column: a forest
    const pick = open[exponentialMechanism(open.map((i) => scores[i]), init.epsilon, init.sensitivity, init.uniform)];
    const e = candidates[pick];
    ds.union(e[0], e[1]);
    tree.push(e);
  }
  return tree;
}

/** Maximum-weight spanning tree (Kruskal; ties keep candidate order). Deterministic post-processing. */
export function maximumSpanningTree(columns: number, candidates: readonly Edge[], weights: ArrayLike<number>): Edge[] {
  if (weights.length !== candidates.length) throw badArgument(`${weights.length} weights for ${candidates.length} candidates`);
  const order = Array.from({ length: candidates.length }, (_, i) => i).sort((i, j) => weights[j] - weights[i] || i - j);
  const ds = new DisjointSet(columns);
  const tree: Edge[] = [];
  for (const i of order) {
    if (ds.union(candidates[i][0], candidates[i][1])) tree.push(candidates[i]);
    if (tree.length === columns - 1) break;
  }
  return tree;
}

/** Cells of the pair (a, b) over a domain (for sizing the selection). */
export function pairSize(domain: Domain, e: Edge): number {
  return columnSize(domain.columns[e[0]]) * columnSize(domain.columns[e[1]]);
}
