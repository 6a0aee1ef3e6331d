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
