// The 1-way release a VAE consortium calibrates its columns to (docs/models.md §3): every numeric column's counts
// over the marginals generator's fine bins, and the target's class counts, as the levels of each column's hierarchy
// (what MST's round 1 measures), summed once under secure aggregation with integer Skellam shares before the
// DP-SGD rounds. Pure functions of the schema and the released sums, like federated.ts: every member and the
// aggregator derive the same layout, and every member the same estimates.
import { FedtwinError } from '@fedtwin/errors';
import { noiseMultiplierFor, skellamMechanism, type SampledGaussian } from '@fedtwin/dp';
import type { Table, TableSchema } from '@fedtwin/models';
import { assertMatches, columnSize, domainFromSchema, type Domain } from './domain.ts';
import { localCounts } from './counts.ts';
import { DEFAULT_BRANCHING, estimateColumns, hierarchyOf, levelCounts, splitLevels, type Hierarchy } from './hierarchy.ts';
import { muOnGrid } from './privacy.ts';
import { MAX_SCHEDULE_VALUES } from './federated.ts';

/**
 * The release's share of the zCDP ρ that the consortium's ε would buy on its own; DP-SGD is then calibrated on what is
 * left (the accountant composes both). 0.3 is what bench/vae-calibration.ts measured: fidelity .80 → .90 (WDBC) at ε = 8.
 */
export const COLUMN_RELEASE_SHARE = 0.3;
/**
 * Fine bins per numeric column: 256, not the marginals generator's 1024. The counts ride behind the model in every
 * round's vector (zeros after the release), so they cost upload in every round: WDBC's release is 7.8k values at 256
 * (0.5× the VAE's 14.5k) against 35k at 1024, and the calibrated fidelity is the same (.898 vs .897, 3 seeds,
 * `node bench/vae-calibration.ts --fine-bins 256`).
 */
export const COLUMN_RELEASE_FINE_BINS = 256;

export interface ColumnReleaseOptions {
  /** The consortium's target ε (Infinity: DP off, exact counts). */
  epsilon: number;
  delta: number;
  /** Share of ρ (0 < share < 1). Default COLUMN_RELEASE_SHARE. */
  share?: number;
  /** Fine bins per numeric column. Default COLUMN_RELEASE_FINE_BINS. */
  fineBins?: number;
}

/** The public layout and noise of the release: the same on every member and the aggregator. */
export interface ColumnRelease {
  schema: TableSchema;
  fine: Domain;
  fineBins: number;
  /** Schema indices of the released columns (numeric ones and the target), ascending. */
  columns: number[];
  /** One per released column. */
  hierarchies: Hierarchy[];
  /** Count vectors measured (Σ of the hierarchies' levels): one Skellam step each. */
  levels: number;
  /** Length of the packed level counts. */
  values: number;
  /** Skellam μ of the noise on every summed cell (0: DP off). */
  mu: number;
  /** Std-dev of that noise, √(2μ). */
  sigma: number;
  /** What a member's budget is charged (undefined with DP off): `levels` Skellam steps, l1 = l2 = 1. */
  mechanism: SampledGaussian | undefined;
}

function bad(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message);
}

/** The release of `schema` at the consortium's (ε, δ). */
export function columnRelease(schema: TableSchema, opts: ColumnReleaseOptions): ColumnRelease {
  const share = opts.share ?? COLUMN_RELEASE_SHARE;
  if (!(share > 0 && share < 1)) throw bad(`the release's share of ρ must be in (0, 1), got ${share}`);
  if (!(opts.epsilon > 0)) throw bad(`epsilon must be > 0 (Infinity: DP off), got ${opts.epsilon}`);
  if (!(opts.delta > 0 && opts.delta < 1)) throw bad(`delta must be in (0, 1), got ${opts.delta}`);
  const fineBins = opts.fineBins ?? COLUMN_RELEASE_FINE_BINS;
  const fine = domainFromSchema(schema, { bins: fineBins });
  const columns = fine.columns.map((c, k) => (c.kind === 'numeric' || c.name === schema.target ? k : -1)).filter((k) => k >= 0);
  const hierarchies = columns.map((k) => {
    const c = fine.columns[k]!;
    return c.kind === 'numeric' ? hierarchyOf(columnSize(c), DEFAULT_BRANCHING) : hierarchyOf(columnSize(c), Math.max(2, columnSize(c)));
  });
  const levels = hierarchies.reduce((s, h) => s + h.spans.length, 0);
  const values = hierarchies.reduce((s, h) => s + h.sizes.reduce((a, n) => a + n, 0), 0);
  if (values > MAX_SCHEDULE_VALUES) throw new FedtwinError('MARGINALS_TOO_LARGE', `the VAE's column release would sum ${values} counts, more than ${MAX_SCHEDULE_VALUES}`, { hint: 'declare fewer numeric columns' });
  if (opts.epsilon === Infinity) return { schema, fine, fineBins, columns, hierarchies, levels, values, mu: 0, sigma: 0, mechanism: undefined };
  // ρ of a single q = 1 Gaussian meeting (ε, δ); this release takes `share` of it over `levels` count vectors of
  // sensitivity 1: levels/(2σ²) = share·ρ. μ = σ²/2 on the grid (rounded up: more noise, never less).
  const z = noiseMultiplierFor({ epsilon: opts.epsilon, delta: opts.delta, sampleRate: 1, steps: 1 }).noiseMultiplier;
  const rho = 1 / (2 * z * z);
  const gaussianSigma = Math.sqrt(levels / (2 * share * rho));
  const mu = muOnGrid((gaussianSigma * gaussianSigma) / 2);
  return { schema, fine, fineBins, columns, hierarchies, levels, values, mu, sigma: Math.sqrt(2 * mu), mechanism: skellamMechanism({ mu, l1: 1, l2: 1, steps: levels }) };
}

/** Length of the packed counts (does not depend on ε): what the consortium's vectors grow by. */
export function columnReleaseLength(schema: TableSchema, fineBins?: number): number {
  return columnRelease(schema, { epsilon: Infinity, delta: 1e-5, ...(fineBins !== undefined ? { fineBins } : {}) }).values;
}

/** A member's exact level counts, packed column after column, coarsest level first. Never leaves it without noise. */
export function columnReleaseCounts(r: ColumnRelease, table: Table): Float64Array {
  assertMatches(r.fine, table.schema);
  const counts = localCounts(r.fine, table, r.columns.map((k) => [k]));
  const out = new Float64Array(r.values);
  let off = 0;
  counts.forEach((c, i) => {
    for (const level of levelCounts(r.hierarchies[i]!, c)) {
      out.set(level, off);
      off += level.length;
    }
  });
  return out;
}

/** What the summed counts say (public): each released column's bin masses, and the target's class mix. */
export interface ReleasedColumns {
  /** Per schema column: the estimated counts over its fine bins (missing bin last), undefined if not released. */
  oneWays: Array<Float64Array | undefined>;
  /** The target's class probabilities (the released class counts, clipped at 0 and normalised; uniform if none is positive). */
  classMix: number[];
  /** Estimated number of records (the mean over the released columns of their totals). */
  total: number;
}

/** The leaves of every released column from the noisy level sums (James–Stein, as MST's round 1). */
export function releasedColumns(r: ColumnRelease, released: ArrayLike<number>): ReleasedColumns {
  if (released.length !== r.values) throw bad(`the released counts have ${released.length} values, the release ${r.values}`);
  const packed = Float64Array.from(released);
  if (!packed.every(Number.isFinite)) throw bad('a released count is not finite');
  const { total, leaves } = estimateColumns(r.hierarchies, splitLevels(r.hierarchies, packed), r.sigma);
  const oneWays: Array<Float64Array | undefined> = r.fine.columns.map(() => undefined);
  r.columns.forEach((k, i) => { oneWays[k] = leaves[i]; });
  const t = r.fine.columns.findIndex((c) => c.name === r.schema.target);
  const target = r.fine.columns[t]!;
  const classes = target.kind === 'categorical' ? target.categories.length : 0;
  const counts = Array.from(oneWays[t]?.subarray(0, classes) ?? [], (x) => Math.max(0, x));
  const sum = counts.reduce((a, b) => a + b, 0);
  const classMix = sum > 0 ? counts.map((x) => x / sum) : counts.map(() => 1 / Math.max(1, classes));
  return { oneWays, classMix, total };
}
