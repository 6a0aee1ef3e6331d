// MST as three federated rounds (docs/marginals.md, "Integration"): what every member counts in a round,
// where it goes in the one flat vector the consortium sums, and the model fitted from the released sums.
// Everything here is a pure function of the schema, the options pinned in the consortium manifest and
// the counts released so far (noisy sums: public), so every member and the aggregator derive the same
// requests and a member can check what it is asked to count. fitMst (mst.ts) is the same protocol run
// over in-memory sites; a test checks the two agree when there is no noise.
//
// The vector has a fixed length (`values`), known before round 1, so the round machinery that sums model
// updates of a fixed size sums it as it is: round r fills its own segment, the others are zero.
// Rounds 2 and 3 depend on released counts (the coarse bins, the tree), so their segments are sized for
// the largest request they can make and the counts are packed at the segment's start.
import { FedtwinError } from '@fedtwin/errors';
import type { SampledGaussian } from '@fedtwin/dp';
import type { Table, TableSchema } from '@fedtwin/models';
import { assertMatches, coarsenDomain, columnSize, domainFromSchema, valueBins, DEFAULT_FINE_BINS } from './domain.ts';
import type { ColumnDomain, Domain } from './domain.ts';
import { localCounts, marginalSize } from './counts.ts';
import type { Marginal } from './counts.ts';
import { calibrateMst } from './privacy.ts';
import type { CountNoise, MstPlan } from './privacy.ts';
import { allPairs, independenceL2Squared, maximumSpanningTree } from './select.ts';
import type { Edge } from './select.ts';
import { fitTree } from './fit.ts';
import type { Measurement, TreeModel } from './fit.ts';
import { DEFAULT_BRANCHING, estimateColumns, hierarchyOf, levelCounts, rangeCover, splitLevels } from './hierarchy.ts';
import type { Hierarchy } from './hierarchy.ts';
import { autoBins } from './mst.ts';

/** Measurement rounds of a federated MST run. */
export const MST_ROUNDS = 3;
/** Largest count vector a schedule may ask for (values per round): keeps a schema from sizing a huge round. */
export const MAX_SCHEDULE_VALUES = 16 * 1024 * 1024;

/** What the consortium manifest pins for the marginals generator (every field has a default). */
export interface ScheduleOptions {
  /** Target ε of the whole run; Infinity: DP off (no noise). */
  epsilon: number;
  delta: number;
  fineBins?: number;
  branching?: number;
  /** Upper limit of the auto coarse bins of the tree tables. Default 16. */
  maxBins?: number;
  /** Coarse bins per numeric column for the selection round. Default 4. */
  selectionBins?: number;
  /** Count sensitivity (1: record-level DP). */
  sensitivity?: number;
  missing?: readonly string[];
  /** The noise on the sums (calibrateMst): scheduleFor, what the federation runs, uses 'skellam'. Default 'gaussian'. */
  noise?: CountNoise;
}

/** Where one round's counts go in the summed vector. */
export interface Segment {
  round: 1 | 2 | 3;
  offset: number;
  size: number;
}

/** The public plan of a run: derived from the manifest alone, identical on every member and the aggregator. */
export interface MstSchedule {
  schema: TableSchema;
  fine: Domain;
  hierarchies: Hierarchy[];
  plan: MstPlan;
  maxBins: number;
  selectionBins: number;
  segments: [Segment, Segment, Segment];
  /** Length of the summed vector (the "model values" of a marginals consortium). */
  values: number;
}

/** One round's request: the domain and marginals a member counts, their noise, where they go. */
export interface RoundRequest {
  round: 1 | 2 | 3;
  domain: Domain;
  marginals: Marginal[];
  /** Std-dev of the noise on the sum, per cell (0: DP off). */
  sigma: number;
  /** The mechanism a member accounts for taking part (undefined: DP off). */
  mechanism: SampledGaussian | undefined;
  segment: Segment;
  /** Values actually used at the segment's start (≤ segment.size). */
  used: number;
}

function bad(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });
}

function hierarchyFor(c: ColumnDomain, branching: number): Hierarchy {
  return c.kind === 'numeric' ? hierarchyOf(columnSize(c), branching) : hierarchyOf(columnSize(c), Math.max(2, columnSize(c)));
}

/** Largest number of bins column `c` can have after coarsening to `bins` (categorical columns keep theirs). */
function maxCoarse(c: ColumnDomain, bins: number): number {
  return c.kind === 'categorical' ? columnSize(c) : Math.min(bins, valueBins(c)) + (c.missing ? 1 : 0);
}

/** The run's schedule: fine domain, hierarchies, privacy plan and the vector's layout. */
export function mstSchedule(schema: TableSchema, opts: ScheduleOptions): MstSchedule {
  const branching = opts.branching ?? DEFAULT_BRANCHING;
  const maxBins = opts.maxBins ?? 16;
  const selectionBins = opts.selectionBins ?? 4;
  if (!Number.isInteger(maxBins) || maxBins < 2 || maxBins > 256) throw bad(`maxBins must be an integer in [2, 256], got ${maxBins}`);
  if (!Number.isInteger(selectionBins) || selectionBins < 2 || selectionBins > 64) throw bad(`selectionBins must be an integer in [2, 64], got ${selectionBins}`);
  const fine = domainFromSchema(schema, { bins: opts.fineBins ?? DEFAULT_FINE_BINS, missing: opts.missing });
  const d = fine.columns.length;
  if (d < 2) throw bad(`the marginals generator needs at least 2 columns, the schema has ${d}`);
  const hierarchies = fine.columns.map((c) => hierarchyFor(c, branching));
  const levels = hierarchies.reduce((s, h) => s + h.spans.length, 0);
  const plan = calibrateMst({ epsilon: opts.epsilon, delta: opts.delta, columns: d, selection: 'measured', sensitivity: opts.sensitivity, oneWayCount: levels, ...(opts.noise ? { noise: opts.noise } : {}) });
  const size1 = hierarchies.reduce((s, h) => s + h.sizes.reduce((a, n) => a + n, 0), 0);
  const pairs = allPairs(d);
  const sel = fine.columns.map((c) => maxCoarse(c, selectionBins));
  const size2 = pairs.reduce((s, [a, b]) => s + sel[a] * sel[b], 0);
  const tree = fine.columns.map((c) => maxCoarse(c, maxBins));
  const pairTree = pairs.map(([a, b]) => tree[a] * tree[b]).sort((x, y) => y - x);
  const size3 = pairTree.slice(0, d - 1).reduce((s, n) => s + n, 0);
  const segments: [Segment, Segment, Segment] = [
    { round: 1, offset: 0, size: size1 },
    { round: 2, offset: size1, size: size2 },
    { round: 3, offset: size1 + size2, size: size3 },
  ];
  const values = size1 + size2 + size3;
  for (const s of segments) {
    if (s.size > MAX_SCHEDULE_VALUES) {
      throw new FedtwinError('MARGINALS_TOO_LARGE', `round ${s.round} of the marginals generator would sum ${s.size} counts, more than ${MAX_SCHEDULE_VALUES}`, { hint: 'declare fewer categories, or lower marginals.fineBins / maxBins in the manifest' });
    }
  }
  return { schema, fine, hierarchies, plan, maxBins, selectionBins, segments, values };
}

function mechanismOf(s: MstSchedule, round: 1 | 2 | 3): SampledGaussian | undefined {
  return s.plan.mechanisms[round - 1];
}

function sigmaOf(s: MstSchedule, round: 1 | 2 | 3): number {
  const p = s.plan;
  if (round === 1) return p.oneWay.sigma;
  if (round === 2) return p.select.kind === 'measured' ? p.select.sigma : 0;
  return p.edges.sigma;
}

function segmentOf(released: ArrayLike<number>, seg: Segment): Float64Array {
  const out = new Float64Array(seg.size);
  for (let i = 0; i < seg.size; i++) out[i] = released[seg.offset + i];
  return out;
}

function checkReleased(s: MstSchedule, released: ArrayLike<number>): void {
  if (released.length !== s.values) throw bad(`released counts have ${released.length} values, the schedule ${s.values}`);
}


/** What round 1's release implies (public): N̂, the fine estimates, the coarse and the selection domains. */
interface AfterOneWay {
  total: number;
  fineEst: Float64Array[];
  coarse: { domain: Domain; groups: Int32Array[] };
  selection: { domain: Domain; groups: Int32Array[] };
}

function afterOneWay(s: MstSchedule, released: ArrayLike<number>): AfterOneWay {
  // Round 1's released level counts, per column and level, then the leaves on a common N̂.
  const { total, leaves: fineEst } = estimateColumns(s.hierarchies, splitLevels(s.hierarchies, segmentOf(released, s.segments[0])), s.plan.oneWay.sigma);
  const bins = s.fine.columns.map(() => autoBins(total, s.plan.edges.sigma, s.maxBins));
  return { total, fineEst, coarse: coarsenDomain(s.fine, fineEst, bins), selection: coarsenDomain(s.fine, fineEst, s.selectionBins) };
}

function sumFine(fine: ArrayLike<number>, groups: Int32Array, size: number): Float64Array {
  const out = new Float64Array(size);
  for (let f = 0; f < fine.length; f++) out[groups[f]] += fine[f];
  return out;
}

/** Splits a segment packed with `marginals` over `domain` into one array per marginal. */
function unpack(domain: Domain, marginals: readonly Marginal[], seg: Float64Array): Float64Array[] {
  let off = 0;
  return marginals.map((m) => {
    const n = marginalSize(domain, m);
    const v = seg.slice(off, off + n);
    off += n;
    return v;
  });
}

/** Round 2's tree: max spanning tree of the unbiased dependence scores of the released pair counts. */
function selectedTree(s: MstSchedule, one: AfterOneWay, released: ArrayLike<number>): Edge[] {
  const pairs = allPairs(s.fine.columns.length);
  const ys = unpack(one.selection.domain, pairs, segmentOf(released, s.segments[1]));
  const selOneWay = one.selection.domain.columns.map((c, k) => sumFine(one.fineEst[k], one.selection.groups[k], columnSize(c)));
  const sigma = sigmaOf(s, 2);
  const scores = pairs.map(([a, b], i) => independenceL2Squared(ys[i], selOneWay[a], selOneWay[b], one.total, sigma));
  return maximumSpanningTree(s.fine.columns.length, pairs, scores);
}

/**
 * Round `round`'s request, from the counts released by the earlier rounds (`released`: the summed vector so
 * far, zeros where a round has not been summed yet).
 */
export function roundRequest(s: MstSchedule, round: number, released: ArrayLike<number>): RoundRequest {
  if (round !== 1 && round !== 2 && round !== 3) throw bad(`the marginals generator runs rounds 1 to ${MST_ROUNDS}, not ${round}`);
  checkReleased(s, released);
  const segment = s.segments[round - 1];
  const base = { round, sigma: sigmaOf(s, round), mechanism: mechanismOf(s, round), segment } as const;
  const d = s.fine.columns.length;
  if (round === 1) return { ...base, domain: s.fine, marginals: s.fine.columns.map((_, k) => [k]), used: segment.size };
  const one = afterOneWay(s, released);
  const marginals: Marginal[] = round === 2 ? allPairs(d) : selectedTree(s, one, released).map(([a, b]) => [a, b]);
  const domain = round === 2 ? one.selection.domain : one.coarse.domain;
  const used = marginals.reduce((t, m) => t + marginalSize(domain, m), 0);
  if (used > segment.size) throw new FedtwinError('MARGINALS_SHAPE_MISMATCH', `round ${round} needs ${used} values, its segment holds ${segment.size}`);
  return { ...base, domain, marginals, used };
}

/**
 * A member's exact counts for `req`, as the segment's values (zero-padded): round 1 as the levels of each
 * column's hierarchy (a linear map of the leaf counts, so it may be applied before summing), rounds 2 and 3
 * as the requested 2-way tables. Never leaves the member without noise and encryption.
 */
export function memberCounts(s: MstSchedule, req: RoundRequest, table: Table): Float64Array {
  assertMatches(s.fine, table.schema);
  const out = new Float64Array(req.segment.size);
  const counts = localCounts(req.domain, table, req.marginals);
  let off = 0;
  counts.forEach((c, k) => {
    const parts = req.round === 1 ? levelCounts(s.hierarchies[k], c) : [c];
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
  });
  return out;
}

/** The tree model fitted to the three rounds' released counts (post-processing: no ε). */
export function fitReleased(s: MstSchedule, released: ArrayLike<number>): TreeModel {
  checkReleased(s, released);
  const one = afterOneWay(s, released);
  const edges = selectedTree(s, one, released);
  const marginals: Marginal[] = edges.map(([a, b]) => [a, b]);
  const coarse = one.coarse.domain;
  const y3 = unpack(coarse, marginals, segmentOf(released, s.segments[2]));
  const sigma1 = s.plan.oneWay.sigma;
  const sigma3 = s.plan.edges.sigma;
  const coarseOneWay: Measurement[] = coarse.columns.map((c, k) => {
    const size = columnSize(c);
    const variance = new Float64Array(size);
    const g = one.coarse.groups[k];
    for (let q = 0; q < size; q++) {
      let a = g.indexOf(q);
      let b = g.lastIndexOf(q) + 1;
      if (a < 0) a = b = 0;
      variance[q] = Math.max(1, rangeCover(s.hierarchies[k], a, b)) * sigma1 ** 2;
    }
    return { marginal: [k], values: sumFine(one.fineEst[k], g, size), variance };
  });
  const measurements: Measurement[] = [...coarseOneWay, ...marginals.map((m, i) => ({ marginal: m, values: y3[i], variance: sigma3 ** 2 }))];
  const within = s.fine.columns.map((c, k) => {
    if (c.kind !== 'numeric') return null;
    return { edges: [...c.edges], groups: Array.from(one.coarse.groups[k].subarray(0, valueBins(c))), weights: Array.from(one.fineEst[k].subarray(0, valueBins(c))) };
  });
  return fitTree(s.schema, coarse, measurements, edges, { within, total: one.total });
}

/** The generator options a consortium manifest pins (`model: { kind: 'marginals', … }`). */
export interface MarginalsConfig {
  fineBins?: number | undefined;
  maxBins?: number | undefined;
  selectionBins?: number | undefined;
}

/**
 * The schedule of a consortium: its schema, its pinned generator options and its privacy target (ε = ∞ with DP
 * off). The same on every member: a member whose own budget is stricter refuses rounds rather than adding less
 * noise than the others (the noise shares only add up to σ² if every member draws them at the same σ).
 */
export function scheduleFor(schema: TableSchema, config: MarginalsConfig, privacy: { epsilon: number; delta: number; sensitivity?: number | undefined }): MstSchedule {
  return mstSchedule(schema, {
    epsilon: privacy.epsilon, delta: privacy.delta,
    // patient-level DP: a unit adds at most maxRowsPerUnit to a cell (1: a record)
    ...(privacy.sensitivity !== undefined ? { sensitivity: privacy.sensitivity } : {}),
    ...(config.fineBins !== undefined ? { fineBins: config.fineBins } : {}),
    ...(config.maxBins !== undefined ? { maxBins: config.maxBins } : {}),
    ...(config.selectionBins !== undefined ? { selectionBins: config.selectionBins } : {}),
    // integer noise on the BFV path: members' Skellam shares sum to the accounted Sk(μ) exactly
    noise: 'skellam',
  });
}

/** Length of the summed count vector (the layout does not depend on ε): what every update must have. */
export function countVectorLength(schema: TableSchema, config: MarginalsConfig): number {
  return scheduleFor(schema, config, { epsilon: Infinity, delta: 1e-5 }).values;
}
