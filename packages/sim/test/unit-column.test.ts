import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFedtwinError } from '@fedtwin/errors';
import { verifyLedgerDir } from '@fedtwin/ledger';
import { loadDataset, parseCsv, toCsv } from '@fedtwin/models';
import { contributionEntries } from '../../node/test/helpers/in-process-federation.ts';
import { CLI_BIN, DEFAULT_SIM_OPTIONS, runSimulation, type SimOptions } from '../src/index.ts';

// `fedtwin sim --unit-column patient_id` (issue 13 item 6 in the simulation): a CSV with 1–4 visits per patient runs
// through real processes with patient-level DP; what each member accounts and signs is per patient (q = B/Ũ, Ũ its DP
// count of patients), the id column is in no released file, and the split keeps every patient's rows together.
const BATCH = 8;
const ROUNDS = 2;
let dir = '';
let csvPath = '';
let ids: string[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-sim-units-'));
  const ds = await loadDataset('breast_cancer_wdbc');
  const out: string[][] = [];
  for (let i = 0, p = 0; i < 240; p++) {
    for (let v = 0; v < 1 + (p % 4) && i < 240; v++, i++) out.push([`P${1000 + p}`, ...ds.rows[i]!]);
  }
  ids = out.map((r) => r[0]!);
  csvPath = join(dir, 'patients.csv');
  await writeFile(csvPath, toCsv(['patient_id', ...ds.header], out));
});
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

describe('fedtwin sim --unit-column: validation', () => {
  const base: SimOptions = { ...DEFAULT_SIM_OPTIONS, generator: 'vae', progress: 'none', nodes: 2, rounds: 1, epochs: 1 };
  const failure = async (o: Partial<SimOptions>) => {
    try {
      await runSimulation({ ...base, dataset: csvPath, target: 'diagnosis', out: join(dir, 'never'), ...o });
    } catch (err) {
      if (isFedtwinError(err)) return { code: err.code, message: err.message, hint: err.hint ?? '' };
      throw err;
    }
    throw new Error('expected a SIM_BAD_ARGUMENT');
  };

  it('an unknown column, the target, site-level or no DP, or --audit: SIM_BAD_ARGUMENT with a hint', async () => {
    const unknown = await failure({ unitColumn: 'patient' });
    expect(unknown).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/--unit-column patient is not a column/) });
    expect(unknown.hint).toContain('patient_id');
    expect(await failure({ unitColumn: 'diagnosis' })).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/is the --target column/) });
    expect(await failure({ unitColumn: 'patient_id', generator: 'marginals', dp: 'off' })).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/--dp record/) });
    expect(await failure({ unitColumn: 'patient_id', dp: 'site' })).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/--dp record or both/) });
    expect(await failure({ unitColumn: 'patient_id', epsilon: Infinity })).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/--epsilon inf/) });
    expect(await failure({ unitColumn: 'patient_id', audit: { canaries: 10 } })).toMatchObject({ code: 'SIM_BAD_ARGUMENT', message: expect.stringMatching(/--audit/) });
  });
});

describe('fedtwin sim --unit-column patient_id (real processes)', () => {
  let out = '';
  let report: Record<string, any>;
  beforeAll(async () => {
    out = join(dir, 'run');
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--dataset', csvPath, '--target', 'diagnosis', '--unit-column', 'patient_id', '--generator', 'vae', '--nodes', '2', '--rounds', String(ROUNDS), '--epochs', '1', '--hidden', '16', '--latent', '4', '--batch-size', String(BATCH), '--seed', '3', '--out', out, '--progress', 'none', '--timeout', '150'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/per patient \(unit column patient_id/);
    report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
  }, 180_000);

  it('each member accounts per patient: its units, its DP count Ũ, q = min(1, B/Ũ) in the report and in every signed entry; ledger verify agrees', async () => {
    const unit = report.privacy.unit;
    const nodeIds = await Promise.all([0, 1].map(async (i) => parseCsv(await readFile(join(out, 'nodes', String(i), 'data.csv'), 'utf8')).rows.map((r) => r[0]!)));
    expect(unit.column).toBe('patient_id');
    expect(unit.unitsPerNode).toEqual(nodeIds.map((x) => new Set(x).size));
    expect(unit.rowsPerNode).toEqual(nodeIds.map((x) => x.length));
    // Patients, not rows: fewer units than rows on each node (1–4 visits each).
    for (const [i, n] of unit.unitsPerNode.entries()) expect(n).toBeLessThan(unit.rowsPerNode[i]);
    const entries = await contributionEntries(join(out, 'ledger'));
    expect(entries).toHaveLength(2 * ROUNDS);
    for (const [i, spends] of report.privacy.perNode.entries()) {
      const est = unit.countEstimatePerNode[i];
      const q = Math.min(1, BATCH / est);
      expect(spends[0]).toMatchObject({ mode: 'record', sampleRate: q, steps: ROUNDS * Math.max(1, Math.round(1 / q)) });
    }
    for (const e of entries) {
      expect(unit.countEstimatePerNode).toContain(e.countEstimate);
      expect(e.mechanism!.sampleRate).toBe(Math.min(1, BATCH / e.countEstimate!));
      expect(e.sampleCount).toBeUndefined();
    }
    const v = await verifyLedgerDir(join(out, 'ledger'));
    expect(v.ok).toBe(true);
    if (v.ok) expect(Math.max(...Object.values(v.summary.epsilonPerNode))).toBeCloseTo(report.privacy.epsilon, 9);
  });

  it('the id column is in no released file, and each patient\'s rows are on one node or in the test set, never split', async () => {
    for (const f of ['synthetic.csv', 'test.csv', join('nodes', '0', 'synthetic.csv'), join('nodes', '1', 'synthetic.csv')]) {
      expect(parseCsv(await readFile(join(out, f), 'utf8')).header).not.toContain('patient_id');
    }
    const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8'));
    expect(schema.columns.map((c: { name: string }) => c.name)).not.toContain('patient_id');
    const split = JSON.parse(await readFile(join(out, 'split.json'), 'utf8')) as { test: number[]; nodes: number[][] };
    const where = new Map<string, string>();
    const place = (rows: number[], tag: string) => {
      for (const r of rows) {
        const prev = where.get(ids[r]!);
        expect(prev === undefined || prev === tag, `${ids[r]} in ${prev} and ${tag}`).toBe(true);
        where.set(ids[r]!, tag);
      }
    };
    place(split.test, 'test');
    split.nodes.forEach((rows, i) => place(rows, `node ${i}`));
    expect(where.size).toBe(new Set(ids).size);
  });
});

// The marginals generator with patient-level DP: each member counts at most one row per patient (model.maxRowsPerUnit's
// default), so every count vector moves by at most 1 when a patient is added or removed, and the schedule's noise is
// scaled to that (packages/marginals/test/units.test.ts has the attack on the counts themselves).
describe('fedtwin sim --generator marginals --unit-column patient_id (real processes)', () => {
  let out = '';
  let report: Record<string, any>;
  beforeAll(async () => {
    out = join(dir, 'run-marginals');
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--dataset', csvPath, '--target', 'diagnosis', '--unit-column', 'patient_id', '--generator', 'marginals', '--nodes', '2', '--seed', '3', '--out', out, '--progress', 'none', '--timeout', '150'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
  }, 180_000);

  it('every signed round is a Skellam count release of sensitivity 1 per patient; ε within the budget; ledger verify agrees; no id released', async () => {
    expect(report.generator).toBe('marginals');
    const unit = report.privacy.unit;
    expect(unit.column).toBe('patient_id');
    for (const [i, n] of unit.unitsPerNode.entries()) expect(n).toBeLessThan(unit.rowsPerNode[i]);
    const entries = await contributionEntries(join(out, 'ledger'));
    expect(entries).toHaveLength(2 * 3);
    for (const e of entries) expect(e.mechanism).toMatchObject({ kind: 'skellam', sampleRate: 1, l1: 1, l2: 1 });
    expect(report.privacy.epsilon).toBeGreaterThan(7);
    expect(report.privacy.epsilon).toBeLessThanOrEqual(8);
    const v = await verifyLedgerDir(join(out, 'ledger'));
    expect(v.ok).toBe(true);
    for (const f of ['synthetic.csv', join('nodes', '0', 'synthetic.csv'), join('nodes', '1', 'synthetic.csv')]) {
      expect(parseCsv(await readFile(join(out, f), 'utf8')).header).not.toContain('patient_id');
    }
    const manifest = JSON.parse(await readFile(join(out, 'consortium.json'), 'utf8'));
    expect(manifest.privacy.unitColumn).toBe('patient_id');
  });
});
