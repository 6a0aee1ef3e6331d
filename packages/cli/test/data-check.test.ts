// Issue 15 item 6: "a site cannot check its CSV against the schema before joining". `fedtwin data check --config
// node.yaml` reads the node config, its manifest and the consortium's schema, and reports what the node would
// refuse (exit 2) or clamp and drop (exit 0) — counts only. Spawns the real entry point on a consortium on disk.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv, tableFromCsv, toCsv, type TableSchema } from '@fedtwin/models';
import { createConsortium, runCli, type Consortium } from '../../../test/helpers/consortium.ts';
import { checkCsvAgainstSchema } from '../src/data-check.ts';

let c: Consortium;
let header: string[];
let rows: string[][];
let schema: TableSchema;
beforeAll(async () => {
  c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 30 });
  // Offline: no aggregator runs; the node config names where it would be.
  await c.writeNodeConfig(0, { aggregator: { address: '/ip4/127.0.0.1/tcp/9400' } });
  const csv = parseCsv(await readFile(join(c.dir, 'node0.csv')));
  header = csv.header;
  rows = csv.rows.map((r) => [...r]);
  schema = JSON.parse(await readFile(join(c.dir, 'schema.json'), 'utf8')) as TableSchema;
}, 120_000);
afterAll(async () => { await c?.cleanup(); });

const check = (args: string[] = []) => runCli(['data', 'check', '--config', c.nodeConfig(0), ...args]);
const numeric = () => schema.columns.find((s) => s.kind === 'numeric' && s.name !== schema.target) as Extract<TableSchema['columns'][number], { kind: 'numeric' }>;

describe('fedtwin data check', () => {
  it('the site\'s CSV as exported: exit 0, rows and columns reported', async () => {
    const r = await check();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^data OK: .*node0\.csv\n/);
    expect(r.stdout).toMatch(new RegExp(`rows\\s+${rows.length} \\(${rows.length} kept by the node\\)`));
    expect(r.stdout).toMatch(new RegExp(`columns\\s+${header.length} in the CSV; ${schema.columns.length} declared found, 0 missing, 0 undeclared`));
  });

  it('values outside the bounds: counted per column as a warning (the node clamps them), still exit 0 — as the node\'s loader does', async () => {
    const col = numeric();
    const j = header.indexOf(col.name);
    const edited = rows.map((r) => [...r]);
    edited[0]![j] = String(col.max + 1000);
    edited[1]![j] = String(col.min - 1000);
    edited[2]![j] = String(col.max * 10 + 7);
    await writeFile(join(c.dir, 'node0.csv'), toCsv(header, edited));
    const r = await check(['--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { ok: boolean; perColumn: Array<{ column: string; belowMin: number; aboveMax: number }>; warnings: string[] };
    expect(rep.ok).toBe(true);
    expect(rep.perColumn.find((p) => p.column === col.name)).toMatchObject({ belowMin: 1, aboveMax: 2 });
    expect(rep.warnings.join('\n')).toMatch(new RegExp(`column "${col.name}": 1 value\\(s\\) below .* and 2 above .*; the node clamps them`));
    // The same counts the node logs (data-clamped) when it loads this file.
    const loaded = tableFromCsv(header, edited, schema, { clampOutOfRange: true, dropUnknownCategories: true });
    expect(loaded.report.clamped[col.name]).toBe(3);
    expect(r.stdout).not.toContain(String(col.max * 10 + 7)); // counts, never a value
  });

  it('what stops a node: an undeclared identifier column, an empty cell, a non-number — exit 2, each named with counts, no value printed', async () => {
    const col = numeric();
    const j = header.indexOf(col.name);
    const edited = rows.map((r, i) => [`P${String(i).padStart(6, '0')}`, ...r]);
    edited[3]![j + 1] = '';
    edited[4]![j + 1] = 'n/a-xyz';
    const h = ['patient_id', ...header];
    await writeFile(join(c.dir, 'node0.csv'), toCsv(h, edited));
    const r = await check();
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^data NOT usable: /);
    expect(r.stdout).toMatch(/problem: 1 column\(s\) not declared in the schema: "patient_id"/);
    expect(r.stdout).toMatch(new RegExp(`problem: column "${col.name}": 1 empty value`));
    expect(r.stdout).toMatch(new RegExp(`problem: column "${col.name}": 1 value\\(s\\) that are not numbers`));
    expect(r.stdout).toMatch(/warning: column "patient_id" looks like an identifier \(unique-text\)/);
    expect(r.stderr).toMatch(/error \[DATA_CHECK_FAILED\]: .*3 problem\(s\) would stop the node/);
    expect(r.stdout).not.toMatch(/n\/a-xyz|P000004/);
    // The node's own loader refuses the file too.
    expect(() => tableFromCsv(h, edited, schema, { clampOutOfRange: true, dropUnknownCategories: true })).toThrow();
  });

  it('a schema file that is not the consortium\'s (another hash than the manifest pins): exit 3', async () => {
    await writeFile(join(c.dir, 'node0.csv'), toCsv(header, rows));
    const other = { ...schema, columns: schema.columns.map((s) => (s.kind === 'numeric' ? { ...s, max: s.max + 1 } : s)) };
    await writeFile(join(c.dir, 'other-schema.json'), JSON.stringify(other));
    const r = await check(['--schema', join(c.dir, 'other-schema.json')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/error \[CONSORTIUM_MISMATCH\]: .*other-schema\.json is not the consortium's schema/);
  });
});

describe('checkCsvAgainstSchema', () => {
  it('a unit column (privacy.unitColumn) is taken out first, counted in units, and must not be declared', () => {
    const h = ['patient', ...header];
    const r = rows.map((row, i) => [`p${i >> 1}`, ...row]);
    const rep = checkCsvAgainstSchema({ header: h, rows: r }, schema, { unitColumn: 'patient' });
    expect(rep.ok).toBe(true);
    expect(rep.unitColumn).toEqual({ name: 'patient', present: true, units: Math.ceil(rows.length / 2), emptyIds: 0 });
    expect(rep.unknownColumns).toEqual([]);
    const missing = checkCsvAgainstSchema({ header, rows }, schema, { unitColumn: 'patient' });
    expect(missing.ok).toBe(false);
    expect(missing.problems[0]).toMatch(/unit column "patient" .* is missing/);
  });

  it('undeclared categories: rows counted as dropped; all dropped is a problem', () => {
    const t = schema.target;
    const j = header.indexOf(t);
    const some = rows.map((r, i) => (i < 2 ? r.map((v, k) => (k === j ? 'unheard-of' : v)) : r));
    const rep = checkCsvAgainstSchema({ header, rows: some }, schema);
    expect(rep).toMatchObject({ ok: true, rowsKept: rows.length - 2 });
    expect(rep.warnings.join('\n')).toMatch(new RegExp(`column "${t}": 2 row\\(s\\) with a category the schema does not declare; the node drops those rows`));
    const all = checkCsvAgainstSchema({ header, rows: rows.map((r) => r.map((v, k) => (k === j ? 'unheard-of' : v))) }, schema);
    expect(all.ok).toBe(false);
    expect(all.problems.join('\n')).toMatch(/no row would be left/);
  });
});
