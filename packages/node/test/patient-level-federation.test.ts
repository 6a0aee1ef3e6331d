import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTable, inferSchema, initBackend, loadDataset, parseCsv, toCsv } from '@fedtwin/models';
import { contributionEntries, runInProcessFederation } from './helpers/in-process-federation.ts';

// Issue 13 item 6 end to end: a real aggregator and two real members (in-process, plaintext aggregation,
// record-level DP at a calibrated z) with privacy.unitColumn: patient_id, each site's CSV holding several
// visits per patient. The federation runs; every spend the members sign has q = B/Ũ (Ũ = the DP count of the site's
// patients, not of its rows: issue 13 item 3); the model is built without the id column; the synthetic CSVs have
// no patient_id column.
const ROUNDS = 2;
const BATCH = 8;

let dir = '';
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-patient-level-'));
});
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

/** `rows` records as visits of patients with 1..5 visits each (the id inserted as the second column); returns the patient count. */
function withPatients(header: string[], rows: string[][], prefix: string): { csv: string; patients: number } {
  const out: string[][] = [];
  let patients = 0;
  for (let i = 0; i < rows.length; patients++) {
    const visits = 1 + (patients % 5);
    for (let v = 0; v < visits && i < rows.length; v++, i++) out.push([rows[i]![0]!, `${prefix}-${1000 + patients}`, ...rows[i]!.slice(1)]);
  }
  return { csv: toCsv([header[0]!, 'patient_id', ...header.slice(1)], out), patients };
}

describe('patient-level DP in a federation', () => {
  it('two members with privacy.unitColumn: q = B/Ũ (DP count of units) in every signed spend, no id in the model or the synthetic records', async () => {
    const ds = await loadDataset('breast_cancer_wdbc');
    const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
    const sites = [withPatients(ds.header, ds.rows.slice(0, 120), 'A'), withPatients(ds.header, ds.rows.slice(120, 220), 'B')];
    for (const [i, s] of sites.entries()) await writeFile(join(dir, `site-${i}.csv`), s.csv);
    expect(sites.map((s) => s.patients)).toEqual([40, 34]);

    const { ids, events, ledgerDir } = await runInProcessFederation({
      dir, consortium: 'patients', schema, members: 2, rounds: ROUNDS, batchSize: BATCH,
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1, unitColumn: 'patient_id' },
      node: (i) => ({ synthetic: { rows: 50, out: join(dir, `site-${i}-synthetic.csv`) } }),
    });

    const countOf = new Map<string, number>();
    for (const [i, s] of sites.entries()) {
      const ev = events[i]!;
      expect(ev.find((e) => e.event === 'data-loaded'), `site ${i}`).toMatchObject({ rows: i === 0 ? 120 : 100, units: s.patients });
      expect(ev.some((e) => e.event === 'federation-finished'), `site ${i}`).toBe(true);
      // What the member charged and sent each round: q = min(1, B/Ũ), round(1/q) steps per epoch, Ũ its DP count of units.
      const released = ev.find((e) => e.event === 'count-released');
      const units = released!.estimate as number;
      countOf.set(ids[i]!, units);
      const spends = ev.filter((e) => e.event === 'contributed').map((e) => (e.privacy as Array<{ sampleRate: number; steps: number }>)[0]!);
      expect(spends).toHaveLength(ROUNDS);
      const q = Math.min(1, BATCH / units);
      for (const p of spends) expect(p).toMatchObject({ sampleRate: q, steps: Math.max(1, Math.round(1 / q)) });
      // The synthetic release: the schema's columns, no patient id.
      const synthetic = parseCsv(await readFile(join(dir, `site-${i}-synthetic.csv`), 'utf8'));
      expect(synthetic.header).toEqual(schema.columns.map((c) => c.name));
      expect(synthetic.header).not.toContain('patient_id');
      expect(synthetic.rows).toHaveLength(50);
    }

    // The signed ledger: each member's contribution entries record the mechanism at q = B/Ũ, and Ũ.
    const contributions = await contributionEntries(ledgerDir);
    expect(contributions).toHaveLength(2 * ROUNDS);
    for (const c of contributions) {
      const units = countOf.get(c.node)!;
      expect(c.countEstimate, c.node).toBe(units);
      expect(c.mechanism!.sampleRate, c.node).toBe(Math.min(1, BATCH / units));
      expect(c.epsilonTotal).toBeLessThanOrEqual(8);
    }
    // The model every party built has the schema's width: the id never became an input (a member that had
    // encoded it would have had another shared size and refused with NODE_MODEL_MISMATCH).
    expect(encodeTable({ schema, rows: [] }).segments.map((s) => s.column)).not.toContain('patient_id');
  }, 300_000);
});
