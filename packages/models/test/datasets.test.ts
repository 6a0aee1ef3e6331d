import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_DATASETS, defaultDataDir, loadDataset, loadDatasetTable, subsetTable } from '../src/datasets.ts';
import { tableToCsv } from '../src/schema.ts';
import { encodeTable, decodeRows } from '../src/encode.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fedtwin-data-'));
  dirs.push(d);
  return d;
}

describe('built-in data sets', () => {
  it('ship in data/ with the recorded sha256 and shapes', async () => {
    for (const d of BUILTIN_DATASETS) {
      const bytes = await readFile(join(defaultDataDir(), d.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(d.sha256);
      const ds = await loadDataset(d.name);
      expect(ds.builtin).toBe(true);
      expect(ds.rows).toHaveLength(d.rows);
      expect(ds.header).toHaveLength(d.columns);
      expect(ds.defaultTarget).toBe(d.defaultTarget);
      if (d.defaultTarget !== undefined) expect(ds.header).toContain(d.defaultTarget);
    }
  });

  it('bins diabetes progression into declared tertiles (and not with raw: true)', async () => {
    const ds = await loadDataset('diabetes_efron');
    const j = ds.header.indexOf('progression_class');
    expect(j).toBe(10);
    const counts: Record<string, number> = {};
    for (const r of ds.rows) counts[r[j]] = (counts[r[j]] ?? 0) + 1;
    expect(counts).toEqual({ q1: 147, q2: 147, q3: 148 });
    const raw = await loadDataset('diabetes_efron', { raw: true });
    expect(raw.header[10]).toBe('progression');
    expect(raw.defaultTarget).toBeUndefined();
    expect(raw.rows[0][10]).toBe('151');
  });

  it('loads labelled built-ins as tables whose CSV round-trips through encode/decode', async () => {
    for (const name of ['breast_cancer_wdbc', 'pima_diabetes', 'baby_ecg_hr', 'diabetes_efron']) {
      const t = await loadDatasetTable(name);
      expect(t.report.clampedTotal).toBe(0);
      const e = encodeTable(t);
      const back = { schema: t.schema, rows: decodeRows(t.schema, e.x, e.cond) };
      expect(tableToCsv(back)).toBe(tableToCsv(t));
    }
    const w = await loadDatasetTable('breast_cancer_wdbc');
    expect(w.schema.columns.at(-1)).toEqual({ name: 'diagnosis', kind: 'categorical', categories: ['0', '1'] });
    // The written form equals the shipped file for WDBC (same column order and number formats).
    expect(tableToCsv(w)).toBe(await readFile(join(defaultDataDir(), 'breast_cancer_wdbc.csv'), 'utf8'));
    expect(subsetTable(w, [0, 2]).rows).toEqual([w.rows[0], w.rows[2]]);
    expect(() => subsetTable(w, [569])).toThrow(/out of range/);
  });

  it('asks for a target on the unlabelled ECG signal', async () => {
    await expect(loadDatasetTable('ecg_mitbih208_360hz')).rejects.toMatchObject({ code: 'DATA_NO_TARGET' });
  });

  it('detects a corrupted or missing built-in file', async () => {
    const dir = await tempDir();
    await copyFile(join(defaultDataDir(), 'pima_diabetes.csv'), join(dir, 'pima_diabetes.csv'));
    expect((await loadDataset('pima_diabetes', { dataDir: dir })).rows).toHaveLength(768);
    const text = await readFile(join(dir, 'pima_diabetes.csv'), 'utf8');
    await writeFile(join(dir, 'pima_diabetes.csv'), text.replace('148', '149'));
    await expect(loadDataset('pima_diabetes', { dataDir: dir })).rejects.toMatchObject({ code: 'DATA_CHECKSUM_MISMATCH' });
    await expect(loadDataset('baby_ecg_hr', { dataDir: dir })).rejects.toMatchObject({ code: 'DATA_NOT_FOUND' });
  });
});

describe('data sets by path', () => {
  it('loads any CSV file and explains unknown names', async () => {
    const dir = await tempDir();
    const p = join(dir, 'mine.csv');
    await writeFile(p, 'x,label\n1,a\n2,b\n3,a\n');
    const ds = await loadDataset(p);
    expect(ds).toMatchObject({ builtin: false, header: ['x', 'label'], defaultTarget: undefined });
    const t = await loadDatasetTable(p, { target: 'label' });
    expect(t.rows).toEqual([[1, 'a'], [2, 'b'], [3, 'a']]);
    await expect(loadDataset('no_such_dataset')).rejects.toMatchObject({ code: 'DATA_NOT_FOUND', hint: expect.stringContaining('breast_cancer_wdbc') });
    await expect(loadDataset(p, { limits: { maxBytes: 8 } })).rejects.toMatchObject({ code: 'DATA_TOO_LARGE' });
  });
});
