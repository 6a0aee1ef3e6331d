// Patient-level DP for counts: a unit (patient) may own several rows, and every count vector must move by a public
// amount when one unit is added or removed. Counting at most k rows per unit makes that amount k (L1 and L2 of each
// count vector: k in one cell at worst). Which rows are kept depends on the unit's own rows alone (its first k in the
// table's order), so removing one unit leaves every other unit's kept rows as they were: neighbours stay neighbours.
import { FedtwinError } from '@fedtwin/errors';
import type { Table } from '@fedtwin/models';

/** `table` with at most `k` rows of each unit (`units[i]`: row i's unit), the first ones in row order. */
export function capRowsPerUnit(table: Table, units: ArrayLike<number>, k: number): Table {
  if (!Number.isInteger(k) || k < 1) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `rows per unit must be an integer ≥ 1, got ${k}`);
  if (units.length !== table.rows.length) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `${units.length} unit indices for ${table.rows.length} rows`);
  const seen = new Map<number, number>();
  const rows = table.rows.filter((_, i) => {
    const u = units[i]!;
    const n = seen.get(u) ?? 0;
    seen.set(u, n + 1);
    return n < k;
  });
  return { schema: table.schema, rows };
}
