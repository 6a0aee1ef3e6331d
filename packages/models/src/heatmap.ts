// Pairwise Pearson correlations of a table's numeric columns, for the report's real/synthetic heatmap pair. A cell
// that is not a finite number (a missing value) is left out of the pairs it is in (pairwise-complete).
import type { Table } from './types.ts';

export interface CorrelationHeatmap {
  columns: string[];
  /** r[i][j] over the rows where both columns are numbers; NaN when fewer than 3 such rows or a constant column. */
  real: number[][];
  synthetic: number[][];
}

/** Pearson r of every pair of numeric columns, pairwise-complete. */
export function numericCorrelations(t: Table): { columns: string[]; r: number[][] } {
  const idx = t.schema.columns.map((c, i) => ({ c, i })).filter(({ c }) => c.kind === 'numeric');
  const cols = idx.map(({ i }) => t.rows.map((row) => (typeof row[i] === 'number' && Number.isFinite(row[i]) ? (row[i] as number) : NaN)));
  const r = idx.map((_, a) => idx.map((__, b) => (a === b ? 1 : NaN)));
  for (let a = 0; a < idx.length; a++) {
    for (let b = a + 1; b < idx.length; b++) {
      const x = cols[a]!, y = cols[b]!;
      let n = 0, sx = 0, sy = 0;
      for (let k = 0; k < x.length; k++) if (!Number.isNaN(x[k]!) && !Number.isNaN(y[k]!)) { n++; sx += x[k]!; sy += y[k]!; }
      if (n < 3) continue;
      const mx = sx / n, my = sy / n;
      let sxy = 0, sxx = 0, syy = 0;
      for (let k = 0; k < x.length; k++) {
        if (Number.isNaN(x[k]!) || Number.isNaN(y[k]!)) continue;
        sxy += (x[k]! - mx) * (y[k]! - my); sxx += (x[k]! - mx) ** 2; syy += (y[k]! - my) ** 2;
      }
      const v = sxx > 0 && syy > 0 ? Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy))) : NaN;
      r[a]![b] = v;
      r[b]![a] = v;
    }
  }
  return { columns: idx.map(({ c }) => c.name), r };
}

/** The real and synthetic correlation matrices over the same numeric columns (same schema). */
export function correlationHeatmap(real: Table, synthetic: Table): CorrelationHeatmap {
  const a = numericCorrelations(real);
  return { columns: a.columns, real: a.r, synthetic: numericCorrelations(synthetic).r };
}
