// Marginal calibration: a generator's numeric columns mapped by rank onto released 1-way distributions. The
// rows keep their joint structure (each column's ranks, every categorical and missing cell); each column takes
// the shape of the release. Post-processing of two DP releases (the generator and the 1-way counts), so it costs
// no ε of its own. Measured use: the DP-SGD VAE's columns onto the 1-way counts the marginals machinery releases
// (docs/models.md, "Per-column transforms"; bench/vae-calibration.ts).
import { FedtwinError } from '@fedtwin/errors';
import type { Cell, Table } from '@fedtwin/models';
import { assertMatches, columnSize, isMissingCell, valueBins, type ColumnDomain, type Domain } from './domain.ts';
import { valueInBin } from './sample.ts';

function badArgument(message: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message);
}

/**
 * The value at quantile `u` ∈ [0, 1) of a numeric column's released distribution over its value bins: the bin
 * where the cumulative mass passes u, then piecewise uniform inside it (a per-value bin gives its value), as the
 * marginals release decodes a bin (valueInBin).
 */
function quantileOf(c: Extract<ColumnDomain, { kind: 'numeric' }>, cumulative: Float64Array, u: number): number {
  const bins = cumulative.length - 1;
  const total = cumulative[bins];
  const r = u * total;
  let lo = 0;
  let hi = bins - 1;
  // First bin whose upper cumulative mass exceeds r (binary search; empty bins are skipped by construction).
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid + 1] > r) hi = mid;
    else lo = mid + 1;
  }
  const mass = cumulative[lo + 1] - cumulative[lo];
  return valueInBin(c, c.edges, lo, mass > 0 ? (r - cumulative[lo]) / mass : 0.5);
}

/**
 * `table` with each numeric column k for which `oneWays[k]` is given mapped by rank onto that distribution: of the
 * column's m present cells, the one with the r-th smallest value (ties in row order) takes the value at quantile
 * (r + ½)/m of the release over the column's value bins (`domain`'s; a missing bin's mass is ignored, so the
 * table's own missingness stays). Missing cells, categorical columns and columns without a release are unchanged;
 * so is a column whose released value mass is not positive (nothing to calibrate to). Pure: no randomness.
 */
export function calibrateColumns(table: Table, domain: Domain, oneWays: ReadonlyArray<ArrayLike<number> | undefined>): Table {
  assertMatches(domain, table.schema);
  if (oneWays.length !== domain.columns.length) throw badArgument(`${oneWays.length} 1-way releases for ${domain.columns.length} columns`);
  const rows: Cell[][] = table.rows.map((r) => [...r]);
  domain.columns.forEach((c, k) => {
    const released = oneWays[k];
    if (released === undefined || c.kind !== 'numeric') return;
    if (released.length !== columnSize(c)) throw badArgument(`column "${c.name}": the release has ${released.length} bins, the domain ${columnSize(c)}`);
    const bins = valueBins(c);
    const cumulative = new Float64Array(bins + 1);
    for (let j = 0; j < bins; j++) {
      const m = released[j];
      if (!Number.isFinite(m)) throw badArgument(`column "${c.name}": released count ${j} is ${m}`);
      cumulative[j + 1] = cumulative[j] + Math.max(0, m);
    }
    if (!(cumulative[bins] > 0)) return;
    const present: number[] = [];
    for (let i = 0; i < rows.length; i++) if (!isMissingCell(rows[i][k])) present.push(i);
    const valueOf = (i: number): number => {
      const v = rows[i][k];
      if (typeof v !== 'number') throw badArgument(`column "${c.name}", row ${i + 1}: ${JSON.stringify(v)} is not a number`);
      return v;
    };
    present.sort((a, b) => valueOf(a) - valueOf(b) || a - b);
    const m = present.length;
    present.forEach((i, r) => { rows[i][k] = quantileOf(c, cumulative, (r + 0.5) / m); });
  });
  return { schema: table.schema, rows };
}

// --- the same calibration as a fitted map, for samples drawn later (a class on demand) --------------------

/** Reference quantiles per column: the map's resolution. */
export const CALIBRATION_KNOTS = 1024;

/**
 * A monotone map per numeric column from a generator's values to a released 1-way distribution, fitted once on a
 * reference sample drawn at the released class mix. Applied to any later sample — a chosen class included — it moves
 * each value to the release's quantile of that value's rank in the reference, so a class-conditioned sample keeps its
 * shift against the others (calibrateColumns would pull it onto the pooled distribution). Saved in model.json.
 */
export interface CalibrationMap {
  fineBins: number;
  columns: Array<{
    /** Schema index. */
    column: number;
    /** The reference sample's values at quantiles (j + ½)/K, j < K: non-decreasing. */
    knots: number[];
    /** The release's masses over the column's value bins (the missing bin left out). */
    release: number[];
  }>;
}

function cumulativeOf(release: ArrayLike<number>, what: string): Float64Array {
  const cumulative = new Float64Array(release.length + 1);
  for (let j = 0; j < release.length; j++) {
    const m = release[j];
    if (!Number.isFinite(m)) throw badArgument(`${what}: released count ${j} is ${m}`);
    cumulative[j + 1] = cumulative[j] + Math.max(0, m);
  }
  return cumulative;
}

/** The map from `reference` (a generator's sample) onto `oneWays` (per schema column; see calibrateColumns). */
export function fitCalibration(reference: Table, domain: Domain, oneWays: ReadonlyArray<ArrayLike<number> | undefined>, fineBins: number, knots = CALIBRATION_KNOTS): CalibrationMap {
  assertMatches(domain, reference.schema);
  if (oneWays.length !== domain.columns.length) throw badArgument(`${oneWays.length} 1-way releases for ${domain.columns.length} columns`);
  if (!Number.isInteger(knots) || knots < 2) throw badArgument(`knots must be an integer ≥ 2, got ${knots}`);
  const columns: CalibrationMap['columns'] = [];
  domain.columns.forEach((c, k) => {
    const released = oneWays[k];
    if (released === undefined || c.kind !== 'numeric') return;
    if (released.length !== columnSize(c)) throw badArgument(`column "${c.name}": the release has ${released.length} bins, the domain ${columnSize(c)}`);
    const release = Array.from({ length: valueBins(c) }, (_, j) => Math.max(0, released[j]));
    if (!(cumulativeOf(release, c.name)[release.length] > 0)) return;
    const values = reference.rows.map((r) => r[k]).filter((v): v is number => !isMissingCell(v) && typeof v === 'number').sort((a, b) => a - b);
    if (values.length === 0) return;
    columns.push({ column: k, knots: Array.from({ length: knots }, (_, j) => values[Math.min(values.length - 1, Math.floor(((j + 0.5) / knots) * values.length))]), release });
  });
  return { fineBins: fineBinsOf(fineBins), columns };
}

function fineBinsOf(b: number): number {
  if (!Number.isInteger(b) || b < 1) throw badArgument(`fineBins must be an integer ≥ 1, got ${b}`);
  return b;
}

/** First index in sorted `a` whose value is ≥ x (strict: > x). */
function bound(a: readonly number[], x: number, strict: boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (strict ? a[mid] > x : a[mid] >= x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The value's quantile in the reference: between knots by linear interpolation; on a run of equal knots (a value the
 * generator repeats, e.g. an integer) uniform over the run's quantile range, so a repeated value is spread over the
 * release's mass there instead of all landing on one value; beyond the end knots uniform over the end half-knot.
 */
function referenceQuantile(knots: readonly number[], x: number, uniform: () => number): number {
  const K = knots.length;
  const lo = bound(knots, x, false);
  const hi = bound(knots, x, true);
  if (hi > lo) return (lo + uniform() * (hi - lo)) / K;
  if (lo === 0) return (uniform() * 0.5) / K;
  if (lo === K) return (K - 0.5 + uniform() * 0.5) / K;
  const a = knots[lo - 1];
  const b = knots[lo];
  return (lo - 0.5 + (x - a) / (b - a)) / K;
}

/**
 * MARGINALS_BAD_ARGUMENT unless `map` is a calibration map of `domain` (a saved model.json is input like any file):
 * each mapped column a numeric column of it, its knots finite and sorted, its release one finite mass per value bin.
 */
export function checkCalibrationMap(map: CalibrationMap, domain: Domain): void {
  if (typeof map !== 'object' || map === null || !Array.isArray(map.columns)) throw badArgument('the calibration is not a calibration map (no columns)');
  for (const m of map.columns) {
    const c = Number.isInteger(m?.column) ? domain.columns[m.column] : undefined;
    if (!c || c.kind !== 'numeric') throw badArgument(`the calibration maps column ${m?.column}, which is not a numeric column of the schema`);
    if (!Array.isArray(m.knots) || !Array.isArray(m.release)) throw badArgument(`column "${c.name}": the calibration has no knots or release`);
    if (m.release.length !== valueBins(c)) throw badArgument(`column "${c.name}": the calibration's release has ${m.release.length} bins, the domain ${valueBins(c)}`);
    if (!m.knots.every(Number.isFinite) || !m.release.every(Number.isFinite)) throw badArgument(`column "${c.name}": the calibration holds a value that is not a finite number`);
    for (let j = 1; j < m.knots.length; j++) if (!(m.knots[j] >= m.knots[j - 1])) throw badArgument(`column "${c.name}": the calibration's knots are not sorted`);
  }
}

/** `table` with every mapped column moved onto its release (missing cells and other columns unchanged). */
export function applyCalibration(table: Table, domain: Domain, map: CalibrationMap, uniform: () => number): Table {
  assertMatches(domain, table.schema);
  checkCalibrationMap(map, domain);
  const rows: Cell[][] = table.rows.map((r) => [...r]);
  for (const m of map.columns) {
    const c = domain.columns[m.column] as Extract<ColumnDomain, { kind: 'numeric' }>;
    const cumulative = cumulativeOf(m.release, c.name);
    if (!(cumulative[m.release.length] > 0)) continue;
    for (const row of rows) {
      const v = row[m.column];
      if (isMissingCell(v)) continue;
      if (typeof v !== 'number') throw badArgument(`column "${c.name}": ${JSON.stringify(v)} is not a number`);
      const u = Math.min(1 - 1e-12, Math.max(0, referenceQuantile(m.knots, v, uniform)));
      row[m.column] = quantileOf(c, cumulative, u);
    }
  }
  return { schema: table.schema, rows };
}
