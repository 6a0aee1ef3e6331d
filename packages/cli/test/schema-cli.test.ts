// Issue 13, "`fedtwin schema` infers bounds from whatever CSV it is given": bounds and categories inferred from
// records disclose those records' extremes and rare values. `fedtwin schema infer` says so on stderr and marks
// the schema it writes ("boundsSource": "data"), a marker that stays in the schema (and its hash) until someone
// declares the bounds from public knowledge. Spawns the real entry point.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { validateSchema } from '@fedtwin/models';
import { TableSchemaMessage } from '@fedtwin/protocol';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const dir = mkdtempSync(join(tmpdir(), 'fedtwin-schema-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const csv = join(dir, 'records.csv');
writeFileSync(csv, 'age,sbp,label\n34,118,0\n97,141,1\n58,250,1\n45,99,0\n');

describe('fedtwin schema infer', () => {
  it('warns on stderr that the bounds come from the data and marks the written schema "boundsSource": "data"', () => {
    const out = join(dir, 'schema.json');
    const r = run(['schema', 'infer', '--csv', csv, '--target', 'label', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^warning: /);
    expect(r.stderr).toMatch(/bounds and categories were inferred from .*records\.csv/);
    expect(r.stderr).toMatch(/disclose/);
    expect(r.stderr).toMatch(/public knowledge/);
    const written = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(written.boundsSource).toBe('data');
    // Why: rounded outward to two significant digits of the range, these bounds are the records' exact extremes
    // (the youngest is 34, the oldest 97; the highest blood pressure 250).
    const cols = written.columns as Array<{ name: string; min?: number; max?: number }>;
    expect(cols[0]).toMatchObject({ name: 'age', min: 34, max: 97 });
    expect(cols[1]).toMatchObject({ name: 'sbp', max: 250 });
    // Still a schema every fedtwin reader takes (the daemons, validateSchema), marker included.
    expect(validateSchema(written)).toMatchObject({ boundsSource: 'data', target: 'label' });
    expect(TableSchemaMessage.parse(written)).toMatchObject({ boundsSource: 'data' });
  });

  it('to stdout: the schema (marked) on stdout, the warning on stderr only', () => {
    const r = run(['schema', 'infer', '--csv', csv, '--target', 'label']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ boundsSource: 'data', target: 'label' });
    expect(r.stderr).toMatch(/^warning: .*disclose/);
  });

  it('a declared schema says "boundsSource": "declared" (or nothing); anything else is refused', () => {
    const s = JSON.parse(run(['schema', 'infer', '--csv', csv, '--target', 'label']).stdout) as Record<string, unknown>;
    expect(validateSchema({ ...s, boundsSource: 'declared' }).boundsSource).toBe('declared');
    const { boundsSource: _, ...unmarked } = s;
    expect(validateSchema(unmarked).boundsSource).toBeUndefined();
    expect(() => validateSchema({ ...s, boundsSource: 'guessed' })).toThrowError(/boundsSource/);
  });

  it('leaves identifier columns out of the drafted schema and says so; --keep keeps one (issue 15 item 6)', () => {
    const ids = join(dir, 'with-ids.csv');
    const lines = ['patient_id,row,age,label'];
    for (let i = 0; i < 30; i++) lines.push(`P${String(1000 + i * 7)},${i + 1},${30 + (i % 9)},${i % 2}`);
    writeFileSync(ids, `${lines.join('\n')}\n`);
    const r = run(['schema', 'infer', '--csv', ids, '--target', 'label']);
    expect(r.code, r.stderr).toBe(0);
    const names = (JSON.parse(r.stdout) as { columns: Array<{ name: string }> }).columns.map((c) => c.name);
    expect(names).toEqual(['age', 'label']);
    expect(r.stderr).toMatch(/left out "patient_id"/);
    expect(r.stderr).toMatch(/left out "row": whole numbers, all 30 different and consecutive/);
    expect(r.stderr).toMatch(/--keep row/);
    const kept = run(['schema', 'infer', '--csv', ids, '--target', 'label', '--keep', 'row']);
    expect(kept.code, kept.stderr).toBe(0);
    expect((JSON.parse(kept.stdout) as { columns: Array<{ name: string }> }).columns.map((c) => c.name)).toEqual(['row', 'age', 'label']);
    expect(kept.stderr).not.toMatch(/left out "row"/);
    const bad = run(['schema', 'infer', '--csv', ids, '--target', 'label', '--keep', 'rows']);
    expect(bad.code).toBe(1); // like a --target not in the header (DATA_MISSING_COLUMN)
    expect(bad.stderr).toMatch(/--keep names "rows", not in the header/);
  });

  it('declares the missing values it finds (issue 14 item 2): N/A, ? and empty cells are not categories; --zero-missing, --missing', () => {
    const m = join(dir, 'missing.csv');
    writeFileSync(m, 'glucose,insulin,smoker,label\n148,0,yes,pos\nN/A,94,NA,neg\n183,0,?,pos\n,168,no,neg\n120,15,-,neg\n');
    const out = join(dir, 'missing.json');
    const r = run(['schema', 'infer', '--csv', m, '--target', 'label', '--max-categories', '3', '--zero-missing', 'insulin', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/missing values declared in glucose, insulin, smoker/);
    const s = JSON.parse(readFileSync(out, 'utf8'));
    expect(s.missingTokens).toEqual(['', 'NA', 'N/A', '?', 'NaN']);
    expect(s.columns[0]).toMatchObject({ name: 'glucose', kind: 'numeric', allowMissing: true });
    expect(s.columns[1]).toMatchObject({ name: 'insulin', kind: 'numeric', min: 10, max: 170, zeroIsMissing: true });
    expect(s.columns[2]).toEqual({ name: 'smoker', kind: 'categorical', categories: ['-', 'no', 'yes'], allowMissing: true });
    expect(validateSchema(s)).toBeTruthy();
    expect(TableSchemaMessage.safeParse(s).success).toBe(true);
    // Own tokens: "-" is missing too, "?" is not in the list any more, so it is a category.
    const r2 = run(['schema', 'infer', '--csv', m, '--target', 'label', '--missing', ',NA,N/A,-']);
    expect(r2.code, r2.stderr).toBe(0);
    const s2 = JSON.parse(r2.stdout);
    expect(s2.missingTokens).toEqual(['', 'NA', 'N/A', '-']);
    expect(s2.columns[2].categories).toEqual(['?', 'no', 'yes']);
  });
});
