// MST (McKenna, Miklau & Sheldon 2021) over sites' tables, with every sum the federation would do
// securely done here in the clear: the reference run of the protocol and what the benchmark measures.
// Each round is: a public request (domain + marginals) → every site's localCounts → sumCounts →
// Gaussian noise once on the sum (addNoise; in production, members' noiseShare under secure
// aggregation) → the noisy counts are released. Rounds:
//   1. every column's 1-way marginal on the fine domain (declared bounds)          σ₁
//      → N̂, the coarse domain (noisy quantiles of the released counts: public)
//   2. selection of columns − 1 tree edges:
//      'exponential': exponential mechanism on L1 scores of the pooled, unnoised pair counts (MST);
//      'measured': every pair measured with σₛ on a coarser grid, tree = max spanning tree of the
//                  unbiased dependence scores (needs no unnoised sum anywhere)
//   3. the tree's 2-way marginals on the coarse domain                            σ₃
// then fit (fit.ts) and sample (sample.ts), both post-processing.
import { FedtwinError } from '@fedtwin/errors';
import { osNoise } from '@fedtwin/models';
import type { Table } from '@fedtwin/models';
import type { SampledGaussian } from '@fedtwin/dp';
import { assertMatches, coarsenDomain, columnSize, domainFromSchema, valueBins, DEFAULT_FINE_BINS } from './domain.ts';
import type { CoarsenMode, Domain } from './domain.ts';
import { addNoise, localCounts, sumCounts } from './counts.ts';
import type { GaussianSource, Marginal } from './counts.ts';
import { accountMechanisms, calibrateMst } from './privacy.ts';
import type { BudgetSplit, MstPlan, Selection } from './privacy.ts';
import { allPairs, cryptoUniform, independenceL1, independenceL2Squared, maximumSpanningTree, selectTreeExponential } from './select.ts';
import type { Edge } from './select.ts';
import { fitTree } from './fit.ts';
import { DEFAULT_BRANCHING, estimateLeaves, hierarchyOf, levelCounts, rangeCover } from './hierarchy.ts';
import type { LeafSmoothing } from './hierarchy.ts';
import type { Measurement, TreeModel } from './fit.ts';

export interface MstOptions {
  /** Target ε for the whole run; Infinity turns DP off (no noise, argmax selection). */
  epsilon: number;
  delta: number;
  /** Cap on the fine bins of a numeric column in round 1 (see DomainOptions.bins). Default DEFAULT_FINE_BINS. */
  fineBins?: number;
  /** Branching factor of the round-1 hierarchies of numeric columns. Default DEFAULT_BRANCHING. */
  branching?: number;
  /** How round-1 node masses are split over their children (see estimateLeaves). Default 'james-stein'. */
  smoothing?: LeafSmoothing;
  /** Coarse bins per numeric column for the 2-way tables, or 'auto' (default, see autoBins). */
  bins?: number | 'auto';
  /** Upper limit of 'auto' bins. Default 16. */
  maxBins?: number;
  coarsen?: CoarsenMode;
  /** Default 'measured' (no unnoised sum anywhere); 'exponential' is MST's own selection. */
  selection?: Selection;
  /** Coarse bins per numeric column for the 'measured' selection round. Default 4. */
  selectionBins?: number;
  split?: Partial<BudgetSplit>;
  /** Count sensitivity: 1 for record-level DP (default); k for patient-level with ≤ k rows per patient. */
  sensitivity?: number;
  /** Columns with a missing-value bin (the hook for the missing-values slice). */
  missing?: readonly string[];
  /** Normal draws for the DP noise. Default: the OS CSPRNG (@fedtwin/models osNoise). */
  noise?: GaussianSource;
  /** Uniforms in (0, 1) for the exponential mechanism. Default: the OS CSPRNG (cryptoUniform). */
  uniform?: () => number;
}

/** One measurement round as the federation would run it. */
export interface MstRound {
  name: 'one-way' | 'select' | 'edges';
  marginals: number;
  cells: number;
  /** Noise per cell (0 for the exponential selection's unnoised sums and for DP off). */
  sigma: number;
}

export interface MstResult {
  model: TreeModel;
  plan: MstPlan;
  /** What the run spent, from the mechanisms it actually ran (≤ the target). */
  spent: { epsilon: number; delta: number; rho: number; order: number };
  mechanisms: SampledGaussian[];
  rounds: MstRound[];
  edges: Edge[];
  /** Coarse bins per column used for the tree's tables. */
  bins: number[];
  millis: number;
}

function badArgument(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });
}

/**
 * Coarse bins per numeric column so that the noise in a B×B table stays a fraction of its mass:
 * expected |noise| summed over cells is about 0.8·σ·B², kept at about half of N̂ (B = ⌊√(N̂/(1.6σ))⌋),
 * clamped to [2, maxBins]; DP off (σ = 0) gives maxBins. N̂ is the released (noisy) total: public.
 */
export function autoBins(total: number, sigma: number, maxBins: number): number {
  if (!(maxBins >= 2)) throw badArgument(`maxBins must be ≥ 2, got ${maxBins}`);
  if (sigma === 0) return maxBins;
  return Math.max(2, Math.min(maxBins, Math.floor(Math.sqrt(Math.max(0, total) / (1.6 * sigma)))));
}

function sumOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

function sumFine(fine: Float64Array, groups: Int32Array, size: number): Float64Array {
  const out = new Float64Array(size);
  for (let f = 0; f < fine.length; f++) out[groups[f]] += fine[f];
  return out;
}

/** One round: every site counts, the sums are added, noise once on the sum. */
function measureRound(domain: Domain, sites: readonly Table[], marginals: readonly Marginal[], sigma: number, noise: GaussianSource): Float64Array[] {
  const sums = sumCounts(sites.map((t) => localCounts(domain, t, marginals)));
  return addNoise(sums, sigma, noise);
}

/** Run MST over the sites' tables (one Table per site, same schema) and fit the tree model. */
export function fitMst(sites: readonly Table[], opts: MstOptions): MstResult {
  const t0 = performance.now();
  if (sites.length === 0) throw badArgument('fitMst needs at least one site');
  const schema = sites[0].schema;
  const d = schema.columns.length;
  const branching = opts.branching ?? DEFAULT_BRANCHING;
  const noise = opts.noise ?? osNoise();
  const uniform = opts.uniform ?? cryptoUniform();
  const fine = domainFromSchema(schema, { bins: opts.fineBins ?? DEFAULT_FINE_BINS, missing: opts.missing });
  for (const s of sites) assertMatches(fine, s.schema);
  const rounds: MstRound[] = [];

  // Round 1: every column's 1-way marginal at the fine resolution, as the levels of its hierarchy.
  const hierarchies = fine.columns.map((c) => (c.kind === 'numeric' ? hierarchyOf(columnSize(c), branching) : hierarchyOf(columnSize(c), Math.max(2, columnSize(c)))));
  const levels = hierarchies.reduce((s, h) => s + h.spans.length, 0);
  const plan = calibrateMst({ epsilon: opts.epsilon, delta: opts.delta, columns: d, selection: opts.selection, split: opts.split, sensitivity: opts.sensitivity, oneWayCount: levels });
  const oneWayMarginals: Marginal[] = schema.columns.map((_, k) => [k]);
  const leafSums = sumCounts(sites.map((t) => localCounts(fine, t, oneWayMarginals)));
  const y1 = leafSums.map((leaves, k) => addNoise(levelCounts(hierarchies[k], leaves), plan.oneWay.sigma, noise));
  rounds.push({ name: 'one-way', marginals: levels, cells: y1.reduce((s, ls) => s + ls.reduce((a, y) => a + y.length, 0), 0), sigma: plan.oneWay.sigma });
  const smoothing = opts.smoothing ?? 'james-stein';
  const total1 = Math.max(1, y1.reduce((s, ls, k) => s + sumOf(estimateLeaves(hierarchies[k], ls, plan.oneWay.sigma, undefined, smoothing)), 0) / d);
  const fineEst = y1.map((ls, k) => estimateLeaves(hierarchies[k], ls, plan.oneWay.sigma, total1, smoothing));

  // The coarse domain: public, from the released round-1 counts.
  let bins: number[];
  const maxBins = opts.maxBins ?? 16;
  if (opts.bins === undefined || opts.bins === 'auto') bins = fine.columns.map(() => autoBins(total1, plan.edges.sigma, maxBins));
  else {
    if (!Number.isInteger(opts.bins) || opts.bins < 1) throw badArgument(`bins must be a positive integer or 'auto', got ${opts.bins}`);
    bins = fine.columns.map(() => opts.bins as number);
  }
  const { domain: coarse, groups } = coarsenDomain(fine, fineEst, bins, opts.coarsen);
  // Coarse 1-way counts from the leaf estimates; a coarse bin's variance is taken as σ₁² per node of
  // the hierarchy its leaf range adds up (an upper bound: the consistent estimate is better).
  const coarseOneWay: Measurement[] = coarse.columns.map((c, k) => {
    const size = columnSize(c);
    const variance = new Float64Array(size);
    const g = groups[k];
    for (let q = 0; q < size; q++) {
      let a = g.indexOf(q);
      let b = g.lastIndexOf(q) + 1;
      if (a < 0) a = b = 0;
      variance[q] = Math.max(1, rangeCover(hierarchies[k], a, b)) * plan.oneWay.sigma ** 2;
    }
    return { marginal: [k], values: sumFine(fineEst[k], g, size), variance };
  });
  const oneWayCoarse = coarseOneWay.map((m) => m.values);

  // Round 2: selection.
  const candidates = allPairs(d);
  let edges: Edge[];
  if (plan.select.kind === 'exponential') {
    // The pooled pair counts unnoised (the L1 score is not a sum over sites, so it cannot be summed
    // instead): in a deployment only a trusted curator (or MPC) may see them.
    const exact = sumCounts(sites.map((t) => localCounts(coarse, t, candidates)));
    rounds.push({ name: 'select', marginals: candidates.length, cells: exact.reduce((s, y) => s + y.length, 0), sigma: 0 });
    const scores = candidates.map(([a, b], i) => independenceL1(exact[i], oneWayCoarse[a], oneWayCoarse[b], total1));
    edges = selectTreeExponential({ columns: d, candidates, scores, epsilon: plan.select.epsilon, sensitivity: plan.sensitivity, uniform });
  } else {
    const selBins = opts.selectionBins ?? 4;
    const sel = coarsenDomain(fine, fineEst, selBins, opts.coarsen);
    const ys = measureRound(sel.domain, sites, candidates, plan.select.sigma, noise);
    rounds.push({ name: 'select', marginals: candidates.length, cells: ys.reduce((s, y) => s + y.length, 0), sigma: plan.select.sigma });
    const selOneWay = sel.domain.columns.map((c, k) => sumFine(fineEst[k], sel.groups[k], columnSize(c)));
    const scores = candidates.map(([a, b], i) => independenceL2Squared(ys[i], selOneWay[a], selOneWay[b], total1, plan.select.kind === 'measured' ? plan.select.sigma : 0));
    edges = maximumSpanningTree(d, candidates, scores);
  }

  // Round 3: the tree's 2-way marginals on the coarse domain.
  const edgeMarginals: Marginal[] = edges.map(([a, b]) => [a, b]);
  const y3 = measureRound(coarse, sites, edgeMarginals, plan.edges.sigma, noise);
  rounds.push({ name: 'edges', marginals: edges.length, cells: y3.reduce((s, y) => s + y.length, 0), sigma: plan.edges.sigma });

  const measurements: Measurement[] = [...coarseOneWay, ...edgeMarginals.map((m, i) => ({ marginal: m, values: y3[i], variance: plan.edges.sigma ** 2 }))];
  const within = fine.columns.map((c, k) => {
    if (c.kind !== 'numeric') return null;
    return { edges: [...c.edges], groups: Array.from(groups[k].subarray(0, valueBins(c))), weights: Array.from(fineEst[k].subarray(0, valueBins(c))) };
  });
  const model = fitTree(schema, coarse, measurements, edges, { within, total: total1 });
  const mechanisms = plan.mechanisms;
  const spent = accountMechanisms(mechanisms, opts.delta);
  return {
    model, plan, mechanisms, rounds, edges,
    spent: { epsilon: plan.epsilon === Infinity ? Infinity : spent.epsilon, delta: opts.delta, rho: plan.epsilon === Infinity ? Infinity : spent.rho, order: spent.order },
    bins: coarse.columns.map((c) => valueBins(c)),
    millis: performance.now() - t0,
  };
}
