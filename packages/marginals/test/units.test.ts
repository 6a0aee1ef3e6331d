import { describe, expect, it } from 'vitest';
import { loadDatasetTable, type Table } from '@fedtwin/models';
import { capRowsPerUnit, memberCounts, roundRequest, scheduleFor } from '../src/index.ts';

// Patient-level DP for the marginals generator: what one unit (patient) can change in a member's counts. The attack is a
// patient with many rows: counted as records, removing them moves a count by their number, which record-level noise
// does not cover. Capped at k rows per unit, every count vector moves by at most k (L1, hence L2) — the sensitivity the
// schedule's noise is scaled to.
describe('capRowsPerUnit', () => {
  it('keeps the first k rows of each unit in row order, whatever the other units hold', () => {
    const schema = { target: 'y', columns: [{ name: 'y', kind: 'categorical' as const, categories: ['a', 'b'] }, { name: 'x', kind: 'numeric' as const, min: 0, max: 9, integer: true, decimals: 0 }] };
    const t: Table = { schema, rows: [['a', 1], ['b', 2], ['a', 3], ['a', 4], ['b', 5]] };
    expect(capRowsPerUnit(t, [7, 7, 3, 7, 3], 2).rows).toEqual([['a', 1], ['b', 2], ['a', 3], ['b', 5]]);
    expect(capRowsPerUnit(t, [7, 7, 3, 7, 3], 1).rows).toEqual([['a', 1], ['a', 3]]);
    expect(() => capRowsPerUnit(t, [1, 2], 1)).toThrow(/2 unit indices for 5 rows/);
    expect(() => capRowsPerUnit(t, [1, 1, 1, 1, 1], 0)).toThrow(/≥ 1/);
  });

  it('removing a unit with many rows moves every round-1 count vector by at most k, where counting its rows moves it by their number', async () => {
    const wdbc = await loadDatasetTable('breast_cancer_wdbc');
    const table: Table = { schema: wdbc.schema, rows: wdbc.rows.slice(0, 120) };
    // Unit 0 owns 20 rows (a patient with many visits); the others one each.
    const units = table.rows.map((_, i) => (i < 20 ? 0 : i));
    const without: Table = { schema: table.schema, rows: table.rows.slice(20) };
    const unitsWithout = units.slice(20);
    const largestMove = (k: number | undefined) => {
      const s = scheduleFor(table.schema, {}, { epsilon: Infinity, delta: 1e-5, ...(k ? { sensitivity: k } : {}) });
      const req = roundRequest(s, 1, new Float32Array(s.values));
      const a = memberCounts(s, req, k ? capRowsPerUnit(table, units, k) : table);
      const b = memberCounts(s, req, k ? capRowsPerUnit(without, unitsWithout, k) : without);
      // Round 1's segment is one count vector per hierarchy level per column: the largest L1 change of one vector.
      let off = 0;
      let worst = 0;
      for (const h of s.hierarchies) for (const n of h.sizes) {
        let l1 = 0;
        for (let i = off; i < off + n; i++) l1 += Math.abs(a[i]! - b[i]!);
        worst = Math.max(worst, l1);
        off += n;
      }
      return worst;
    };
    expect(largestMove(undefined)).toBe(20); // as records: the patient's 20 rows
    expect(largestMove(1)).toBe(1);
    expect(largestMove(3)).toBe(3);
    expect(scheduleFor(table.schema, {}, { epsilon: 8, delta: 1e-5, sensitivity: 3 }).plan.mechanisms[0]!.skellam).toMatchObject({ l1: 3, l2: 3 });
  });
});
