// The sufficient statistics: count vectors of marginals. A record adds 1 to exactly one cell of each
// marginal, so counts are sums over records: a site's counts plus another site's counts are the counts
// of the pooled rows, which is what lets them travel through secure aggregation unchanged, and why the
// L2 sensitivity of one marginal is 1 for adding or removing one record.
import { FedtwinError } from '@fedtwin/errors';
import type { Table } from '@fedtwin/models';
import { binTable, columnSize } from './domain.ts';
import type { Domain } from './domain.ts';

/** Column indices of a marginal, strictly increasing (e.g. [3] or [0, 7]). */
export type Marginal = readonly number[];

/** Where the normal draws for DP noise come from: `next(n)` returns n fresh N(0, 1) values.
 *  @fedtwin/models' NoiseSource (osNoise, secureNoise, seededNoise) has this shape. */
export interface GaussianSource {
  next(n: number): ArrayLike<number>;
}

function badArgument(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });
}

/** Throws unless `m` is a strictly increasing list of column indices of the domain. */
export function checkMarginal(domain: Domain, m: Marginal): void {
  if (!Array.isArray(m) || m.length === 0) throw badArgument(`a marginal is a non-empty list of column indices, got ${JSON.stringify(m)}`);
  for (let i = 0; i < m.length; i++) {
    const c = m[i];
    if (!Number.isInteger(c) || c < 0 || c >= domain.columns.length) throw badArgument(`marginal ${JSON.stringify(m)}: ${c} is not a column index in [0, ${domain.columns.length})`);
    if (i > 0 && !(c > m[i - 1])) throw badArgument(`marginal ${JSON.stringify(m)}: column indices must be strictly increasing`);
  }
}

/** Number of cells of a marginal: the product of its columns' sizes (missing bins included). */
export function marginalSize(domain: Domain, m: Marginal): number {
  checkMarginal(domain, m);
  let s = 1;
  for (const c of m) s *= columnSize(domain.columns[c]);
  return s;
}

/** Cells per unit step of each column of a marginal (row-major: the last column varies fastest). */
export function strides(domain: Domain, m: Marginal): number[] {
  const s = new Array<number>(m.length);
  let acc = 1;
  for (let i = m.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= columnSize(domain.columns[m[i]]);
  }
  return s;
}

/** Counts of each marginal from already binned columns (see binTable). */
export function countsFromBins(domain: Domain, bins: readonly Int32Array[], marginals: readonly Marginal[]): Int32Array[] {
  if (bins.length !== domain.columns.length) throw badArgument(`${bins.length} binned columns for a domain of ${domain.columns.length}`);
  const n = bins[0]?.length ?? 0;
  return marginals.map((m) => {
    const out = new Int32Array(marginalSize(domain, m));
    const st = strides(domain, m);
    if (m.length === 1) {
      const b = bins[m[0]];
      for (let i = 0; i < n; i++) out[b[i]]++;
    } else if (m.length === 2) {
      const a = bins[m[0]];
      const b = bins[m[1]];
      const sa = st[0];
      for (let i = 0; i < n; i++) out[a[i] * sa + b[i]]++;
    } else {
      for (let i = 0; i < n; i++) {
        let cell = 0;
        for (let j = 0; j < m.length; j++) cell += bins[m[j]][i] * st[j];
        out[cell]++;
      }
    }
    return out;
  });
}

/**
 * A site's local counts of the requested marginals over the (public) domain: what a member sends,
 * encrypted, each measurement round. Exact integers; Int32 is enough for any table that fits in memory.
 */
export function localCounts(domain: Domain, table: Table, marginals: readonly Marginal[]): Int32Array[] {
  return countsFromBins(domain, binTable(domain, table), marginals);
}

/** Cell-wise sum of several sites' counts (same marginals, same order): the counts of the pooled rows. */
export function sumCounts(parts: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>): Float64Array[] {
  if (parts.length === 0) throw badArgument('sumCounts needs at least one site');
  const first = parts[0];
  const out = first.map((c) => new Float64Array(c.length));
  parts.forEach((p, s) => {
    if (p.length !== first.length) {
      throw new FedtwinError('MARGINALS_SHAPE_MISMATCH', `site ${s} sent ${p.length} marginals, site 0 sent ${first.length}`, { hint: 'Every site must count the same requested marginals' });
    }
    p.forEach((c, k) => {
      const o = out[k];
      if (c.length !== o.length) throw new FedtwinError('MARGINALS_SHAPE_MISMATCH', `site ${s}, marginal ${k}: ${c.length} cells, expected ${o.length}`);
      for (let i = 0; i < o.length; i++) o[i] += c[i];
    });
  });
  return out;
}

function checkSigma(sigma: number): void {
  if (typeof sigma !== 'number' || !(sigma >= 0) || !Number.isFinite(sigma)) throw badArgument(`sigma must be a finite number ≥ 0, got ${sigma}`);
}

/** Each cell plus scale·N(0, 1), drawn from `source` in one call per marginal. */
function withNoise(counts: ReadonlyArray<ArrayLike<number>>, scale: number, source: GaussianSource): Float64Array[] {
  return counts.map((c) => {
    const out = Float64Array.from(c);
    if (scale === 0) return out;
    const z = source.next(out.length);
    if (z.length < out.length) throw badArgument(`the noise source returned ${z.length} draws for ${out.length}`);
    for (let i = 0; i < out.length; i++) out[i] += scale * z[i];
    return out;
  });
}

/**
 * The Gaussian mechanism applied once to summed counts: every cell gets N(0, σ²). σ = 0 returns a copy
 * (DP off). Accounted by the caller (see privacy.ts): one marginal = one Gaussian with z = σ / sensitivity.
 */
export function addNoise(sums: ReadonlyArray<ArrayLike<number>>, sigma: number, source: GaussianSource): Float64Array[] {
  checkSigma(sigma);
  return withNoise(sums, sigma, source);
}

/**
 * Distributed noise, a member's half: local counts plus N(0, σ²/minParticipants) per cell, so the sum
 * of at least `minParticipants` members' shares carries at least N(0, σ²) and no one adds it centrally
 * (the same contract as @fedtwin/dp privatizeSiteUpdate). Fewer participants than promised means less
 * noise than accounted: the round must then be refused, as for DP-FedAvg.
 */
export function noiseShare(local: ReadonlyArray<ArrayLike<number>>, sigma: number, minParticipants: number, source: GaussianSource): Float64Array[] {
  checkSigma(sigma);
  if (!Number.isInteger(minParticipants) || minParticipants < 1) throw badArgument(`minParticipants must be an integer ≥ 1, got ${minParticipants}`);
  return withNoise(local, sigma / Math.sqrt(minParticipants), source);
}
