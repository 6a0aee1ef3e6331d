// Issue 14 item 2, missing values end to end through real processes: `fedtwin sim` on a CSV with empty cells in six
// numeric columns (NCCTG lung, given by path, not by name) and in a categorical one (its `sex` written as text, "N/A"
// in every 6th record) infers a schema that declares them, the daemons read their shards, the marginals generator
// models the missing bins, the release writes missing cells empty, and the report scores the missingness rates
// against the held-out rows.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN } from '@fedtwin/sim';
import { defaultDataDir, parseCsv, tableFromCsv, validateSchema } from '@fedtwin/models';

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

const MISSING = ['inst', 'sex', 'ph_ecog', 'ph_karno', 'pat_karno', 'meal_cal', 'wt_loss'];

describe('fedtwin sim with missing values (real processes)', () => {
  it('lung_ncctg.csv with a categorical column missing too, 2 nodes, marginals at ε = 8: missing cells modelled, written empty, missingness scored', { timeout: 180_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-missing-'));
    dirs.push(out);
    const lung = parseCsv(await readFile(join(defaultDataDir(), 'lung_ncctg.csv'), 'utf8'));
    const sexAt = lung.header.indexOf('sex');
    const rowsWithText = lung.rows.map((row, i) => row.map((v, j) => (j !== sexAt ? v : i % 6 === 5 ? 'N/A' : v === '1' ? 'male' : 'female')));
    const inDir = await mkdtemp(join(tmpdir(), 'fedtwin-missing-in-'));
    dirs.push(inDir);
    const csv = join(inDir, 'lung_sex_as_text.csv');
    await writeFile(csv, [lung.header, ...rowsWithText].map((r) => r.join(',')).join('\n') + '\n');
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--dataset', csv, '--target', 'status', '--nodes', '2', '--seed', '3', '--out', out, '--progress', 'none'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/missing\s+\d\.\d{3} missingness-rate score .*meal_cal \d+\.\d\/\d+\.\d %/);
    const schema = validateSchema(JSON.parse(await readFile(join(out, 'schema.json'), 'utf8')));
    expect(schema.columns.filter((c) => c.allowMissing === true).map((c) => c.name)).toEqual(MISSING);
    expect(schema.columns.find((c) => c.name === 'sex')).toMatchObject({ kind: 'categorical', categories: ['female', 'male'] });
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(report.utility.forest.trees).toBe(5); // --forest-trees 5: the report says what scored it
    const m = report.fidelity.missingness;
    expect(m.columns.map((c: { name: string }) => c.name)).toEqual(MISSING);
    for (const c of m.columns) {
      for (const v of [c.real, c.synthetic, c.score]) expect(v).toBeGreaterThanOrEqual(0);
      expect(c.score).toBeCloseTo(1 - Math.abs(c.real - c.synthetic), 12);
    }
    // meal_cal is missing in 47 of 228 records (21 %): the release should miss it too, at a similar rate.
    const meal = m.columns.find((c: { name: string }) => c.name === 'meal_cal');
    expect(meal.synthetic).toBeGreaterThan(0.05);
    expect(m.mean).toBeGreaterThan(0.8);
    // The release: the input's columns, missing cells as empty fields, readable under the run's schema.
    const text = await readFile(join(out, 'synthetic.csv'), 'utf8');
    const { header, rows } = parseCsv(text);
    expect(header).toEqual(['inst', 'time', 'status', 'age', 'sex', 'ph_ecog', 'ph_karno', 'pat_karno', 'meal_cal', 'wt_loss']);
    expect(rows.some((row) => row[header.indexOf('meal_cal')] === '')).toBe(true);
    // The categorical column: 38 of 228 records (17 %) are "N/A"; the release has empty cells there at a similar
    // rate (written empty, as every missing cell) and only the declared categories otherwise.
    const sex = rows.map((row) => row[header.indexOf('sex')]);
    const sexMissing = sex.filter((v) => v === '').length / sex.length;
    expect(sexMissing).toBeGreaterThan(0.05);
    expect(sexMissing).toBeLessThan(0.35);
    expect(new Set(sex.filter((v) => v !== ''))).toEqual(new Set(['female', 'male']));
    expect(m.columns.find((c: { name: string }) => c.name === 'sex').score).toBeGreaterThan(0.8);
    expect(tableFromCsv(header, rows, schema).rows).toHaveLength(rows.length);
    const test = parseCsv(await readFile(join(out, 'test.csv'), 'utf8'));
    expect(tableFromCsv(test.header, test.rows, schema).rows).toHaveLength(report.split.testRows);
    expect(await readFile(join(out, 'report.html'), 'utf8')).toMatch(/<h2>Missing values<\/h2>[\s\S]*meal_cal/);
  });
});
