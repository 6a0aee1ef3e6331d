import { describe, expect, it } from 'vitest';
import { flipCoins, makeCanaryRows, recordsWithCanaries } from '@fedtwin/sim';
import { inferSchema, loadDataset, parseCsv, tableFromCsv, toCsv } from '@fedtwin/models';

describe('audit canaries', async () => {
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: ds.defaultTarget! });
  const names = schema.columns.map((c) => c.name);

  it('are valid records under the schema, every numeric feature at a declared bound, distinct, from the seed', () => {
    const rows = makeCanaryRows(schema, 200, 42);
    // Through the same CSV path a member reads its records by: accepted, nothing clamped or refused.
    const parsed = parseCsv(toCsv(names, rows));
    const table = tableFromCsv(parsed.header, parsed.rows, schema);
    expect(table.rows).toHaveLength(200);
    schema.columns.forEach((c, k) => {
      for (const r of table.rows) {
        if (c.kind === 'numeric') expect([c.min, c.max]).toContain(r[k]);
        else expect(c.categories).toContain(r[k]);
      }
    });
    expect(new Set(rows.map((r) => r.join(','))).size).toBe(200);
    // Far from the data: no real record sits at a corner of the feature box.
    const real = new Set(ds.rows.map((r) => r.map(Number).join(',')));
    expect(rows.some((r) => real.has(r.map(Number).join(',')))).toBe(false);
    expect(makeCanaryRows(schema, 200, 42)).toEqual(rows);
    expect(makeCanaryRows(schema, 200, 43)).not.toEqual(rows);
  });

  it('the member gets its records plus exactly the included canaries', () => {
    const canaries = { rows: makeCanaryRows(schema, 6, 1), included: [true, false, true, false, false, true] };
    const own = [['a'], ['b']] as Array<Array<number | string>>;
    const out = recordsWithCanaries(own, canaries, 1);
    expect(out).toHaveLength(5);
    expect(out).toEqual(expect.arrayContaining([own[0], own[1], canaries.rows[0], canaries.rows[2], canaries.rows[5]]));
    expect(out).not.toContainEqual(canaries.rows[1]);
  });

  it('coins are fair and not from the seed (two draws of 4000 differ; each within 5 σ of 2000)', () => {
    const a = flipCoins(4000), b = flipCoins(4000);
    expect(a).not.toEqual(b);
    for (const c of [a, b]) expect(Math.abs(c.filter(Boolean).length - 2000)).toBeLessThan(5 * Math.sqrt(1000));
  });
});
