// Hierarchical 1-way histograms (Hay, Rastogi, Miklau & Suciu 2010; Qardaji, Yang & Li 2013).
// A column's fine bins (leaves) are grouped into a b-ary tree; every level is one count vector, so
// measuring all h levels costs h Gaussian measurements of sensitivity 1. Any range of leaves (any value
// of the empirical CDF, which is what a KS score looks at) is then the sum of at most (b−1)·h nodes
// instead of up to `leaves` leaves, and least-squares consistency halves the error again. This is what
// lets the first round use value-resolution leaves (atoms such as "0 = not measured" keep their mass
// on one value) without the noise of hundreds of flat bins.
import { FedtwinError } from '@fedtwin/errors';
import { projectSimplex } from './fit.ts';

export interface Hierarchy {
  leaves: number;
  branching: number;
  /** Leaves per node, coarsest level first; the last level is the leaves themselves (span 1). */
  spans: number[];
  /** Nodes per level, coarsest first. */
  sizes: number[];
}

export const DEFAULT_BRANCHING = 8;

function badArgument(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message);
}

/** The b-ary tree over `leaves` leaves: h = ⌈log_b leaves⌉ levels (1 when leaves ≤ b: a flat histogram). */
export function hierarchyOf(leaves: number, branching: number = DEFAULT_BRANCHING): Hierarchy {
  if (!Number.isInteger(leaves) || leaves < 1) throw badArgument(`leaves must be an integer ≥ 1, got ${leaves}`);
  if (!Number.isInteger(branching) || branching < 2) throw badArgument(`branching must be an integer ≥ 2, got ${branching}`);
  const spans: number[] = [1];
  while (spans[0] * branching < leaves) spans.unshift(spans[0] * branching);
  return { leaves, branching, spans, sizes: spans.map((s) => Math.ceil(leaves / s)) };
}

/** Every level's counts from the leaf counts (linear: a site may apply it to its own counts). */
export function levelCounts(h: Hierarchy, leafCounts: ArrayLike<number>): Float64Array[] {
  if (leafCounts.length !== h.leaves) throw badArgument(`${leafCounts.length} leaf counts for a hierarchy of ${h.leaves} leaves`);
  return h.spans.map((span, l) => {
    const out = new Float64Array(h.sizes[l]);
    for (let i = 0; i < h.leaves; i++) out[Math.floor(i / span)] += leafCounts[i];
    return out;
  });
}

export type LeafSmoothing = 'james-stein' | 'none';

/**
 * Leaf estimates from noisy level counts (each cell N(0, σ²)). Bottom-up, each node's count becomes the
 * inverse-variance weighted mean of its own measurement and the sum of its children's estimates.
 * Top-down, each node's final mass is split over its children: 'none' projects the children onto
 * {≥ 0, sum = the node's mass} (without clipping exactly Hay et al.'s least-squares step); 'james-stein'
 * (default) first shrinks the children's deviations from an equal split by the positive-part
 * James–Stein factor max(0, 1 − (k−1)·v/Σ dev²), v their noise variance, then projects. Why: where a
 * node's children are all noise (a sparse region of a fine grid) the plain projection piles the node's
 * mass onto the few children with the largest noise, random spikes a KS score punishes; shrinking
 * spreads it evenly instead, and leaves real structure (Σ dev² ≫ (k−1)·v) nearly untouched. The top
 * level is split the same way from `total` when given (else from its own sum). σ = 0: counts are exact.
 */
export function estimateLeaves(h: Hierarchy, noisy: readonly ArrayLike<number>[], sigma: number, total?: number, smoothing: LeafSmoothing = 'james-stein'): Float64Array {
  if (noisy.length !== h.spans.length) throw badArgument(`${noisy.length} levels for a hierarchy of ${h.spans.length}`);
  noisy.forEach((y, l) => {
    if (y.length !== h.sizes[l]) throw badArgument(`level ${l} has ${y.length} counts, expected ${h.sizes[l]}`);
  });
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw badArgument(`sigma must be a finite number ≥ 0, got ${sigma}`);
  const levels = h.spans.length;
  const b = h.branching;
  const z = noisy.map((y) => Float64Array.from(y));
  const s2 = sigma * sigma;
  // Noise variance of each node's bottom-up estimate, per level.
  const variance = h.sizes.map((n) => new Float64Array(n).fill(s2));
  if (sigma > 0) {
    for (let l = levels - 2; l >= 0; l--) {
      for (let i = 0; i < h.sizes[l]; i++) {
        let sumZ = 0;
        let sumV = 0;
        for (let c = i * b; c < Math.min((i + 1) * b, h.sizes[l + 1]); c++) {
          sumZ += z[l + 1][c];
          sumV += variance[l + 1][c];
        }
        // Own measurement (variance σ²) and the children's sum (variance sumV), inverse-variance weighted.
        z[l][i] = (z[l][i] / s2 + sumZ / sumV) / (1 / s2 + 1 / sumV);
        variance[l][i] = 1 / (1 / s2 + 1 / sumV);
      }
    }
  }
  const split = (children: Float64Array, v: Float64Array, mass: number): Float64Array => {
    if (smoothing === 'james-stein' && sigma > 0 && children.length > 1) {
      const k = children.length;
      let mean = 0;
      let meanV = 0;
      for (let c = 0; c < k; c++) {
        mean += children[c] / k;
        meanV += v[c] / k;
      }
      let ss = 0;
      for (let c = 0; c < k; c++) ss += (children[c] - mean) ** 2;
      const shrink = ss > 0 ? Math.max(0, 1 - ((k - 1) * meanV) / ss) : 0;
      const out = new Float64Array(k);
      for (let c = 0; c < k; c++) out[c] = mass / k + shrink * (children[c] - mean);
      return projectSimplex(out, mass);
    }
    return projectSimplex(children, mass);
  };
  const top = z[0];
  let t = total;
  if (t === undefined) {
    t = 0;
    for (let i = 0; i < top.length; i++) t += top[i];
  }
  let est = split(top, variance[0], Math.max(0, t));
  for (let l = 1; l < levels; l++) {
    const next = new Float64Array(h.sizes[l]);
    for (let i = 0; i < h.sizes[l - 1]; i++) {
      const lo = i * b;
      const hi = Math.min((i + 1) * b, h.sizes[l]);
      next.set(split(z[l].subarray(lo, hi), variance[l].subarray(lo, hi), est[i]), lo);
    }
    est = next;
  }
  return est;
}

/** Nodes in the canonical cover of leaves [a, b) (how many noisy counts a range estimate adds up). */
export function rangeCover(h: Hierarchy, a: number, b: number): number {
  if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a <= b && b <= h.leaves)) throw badArgument(`bad leaf range [${a}, ${b})`);
  let nodes = 0;
  const walk = (level: number, node: number): void => {
    const span = h.spans[level];
    const lo = node * span;
    const hi = Math.min(lo + span, h.leaves);
    if (hi <= a || lo >= b) return;
    if (a <= lo && hi <= b) {
      nodes++;
      return;
    }
    for (let c = node * h.branching; c < Math.min((node + 1) * h.branching, h.sizes[level + 1]); c++) walk(level + 1, c);
  };
  for (let i = 0; i < h.sizes[0]; i++) walk(0, i);
  return nodes;
}

/**
 * Several columns' noisy level counts, packed column after column, coarsest level first (as a member sends them),
 * split back into one array per column and level (views of `packed`, from `offset`).
 */
export function splitLevels(hierarchies: readonly Hierarchy[], packed: Float64Array, offset = 0): Float64Array[][] {
  let off = offset;
  return hierarchies.map((h) => h.sizes.map((n) => {
    const v = packed.subarray(off, off + n);
    off += n;
    return v;
  }));
}

/**
 * The leaves of several columns measured over the same records: N̂ is the mean over the columns of their estimated
 * totals (each column counts every record once), then every column's leaves are split top-down from N̂
 * (estimateLeaves, James–Stein), so all columns agree on the number of records.
 */
export function estimateColumns(hierarchies: readonly Hierarchy[], levels: readonly (readonly ArrayLike<number>[])[], sigma: number): { total: number; leaves: Float64Array[] } {
  const sum = (a: ArrayLike<number>) => { let t = 0; for (let i = 0; i < a.length; i++) t += a[i]; return t; };
  const totals = levels.map((ls, k) => sum(estimateLeaves(hierarchies[k], ls, sigma, undefined, 'james-stein')));
  const total = Math.max(1, totals.reduce((a, b) => a + b, 0) / Math.max(1, totals.length));
  return { total, leaves: levels.map((ls, k) => estimateLeaves(hierarchies[k], ls, sigma, total, 'james-stein')) };
}
