import { describe, expect, it, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN } from '@fedtwin/sim';
import { parseCsv, loadDataset } from '@fedtwin/models';

// The researcher's main job, end to end: `fedtwin sim` starts an aggregator and nodes as separate
// OS processes talking libp2p on 127.0.0.1, and writes synthetic data and a report.
describe('fedtwin sim (real processes)', () => {
  const dirs: string[] = [];
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

  it('runs a 3-node federation and writes synthetic.csv, report.json and report.html', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-sim-'));
    dirs.push(out);
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--generator', 'vae', '--nodes', '3', '--rounds', '2', '--epochs', '3', '--seed', '7', '--out', out, '--progress', 'lines', '--json'], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    // --rounds 2 training rounds after the column release (model.calibrate, the VAE's default under record-level DP).
    expect(report).toMatchObject({ dataset: 'breast_cancer_wdbc', nodes: 3, rounds: 3, nodeVersion: process.version });
    expect(report.calibration).toEqual({ round: 1, columns: 31, share: 0.3 }); // 30 numeric columns and the target
    expect(['node', 'wasm', 'cpu']).toContain(report.backend);
    for (const k of ['trtrAuc']) expect(report.utility[k]).toBeGreaterThan(0.9);
    for (const k of ['federated', 'localOnly', 'centralized']) {
      expect(report.utility.tstrAuc[k]).toBeGreaterThanOrEqual(0);
      expect(report.utility.tstrAuc[k]).toBeLessThanOrEqual(1);
    }
    expect(report.fidelity.columns).toHaveLength(31);
    expect(report.fidelity.mean).toBeGreaterThan(0.3);
    expect(report.fidelity.correlationDistance).toBeGreaterThanOrEqual(0);
    // Issue 14 item 4: trees beside the linear model, the rarest class's recall, and the release's privacy checks.
    expect(report.utility.forest.trees).toBe(30); // the default (--forest-trees)
    expect(report.utility.forest.trtrAuc).toBeGreaterThan(0.9);
    expect(report.utility.forest.tstrAuc).toBeGreaterThanOrEqual(0);
    expect(report.utility.forest.minorityClass).toBe('0'); // malignant: 212 of 569
    expect(report.utility.forest.minorityRecall.trtr).toBeGreaterThan(0.5);
    expect(report.release.dcr.matchedRows).toBe(report.split.testRows);
    expect(report.release.dcr.ratio).toBeGreaterThan(0);
    expect(report.release.membershipInferenceAuc).toBeGreaterThanOrEqual(0);
    expect(report.release.membershipInferenceAuc).toBeLessThanOrEqual(1);
    expect(report.bytes.nodes).toHaveLength(3);
    for (const b of report.bytes.nodes) { expect(b.sent).toBeGreaterThan(1000); expect(b.received).toBeGreaterThan(1000); }
    expect(report.bytes.aggregator.received).toBeGreaterThan(report.bytes.nodes[0].sent - 1);
    expect(report.wallSeconds).toBeGreaterThan(0);
    expect(report.lossPerRound.map((n: { rounds: Array<{ round: number }> }) => n.rounds.map((x) => x.round))).toEqual([[2, 3], [2, 3], [2, 3]]);
    // The report on stdout is the same document.
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).utility).toEqual(report.utility);

    // synthetic.csv: same columns, in order, and values of the same types as the input.
    const input = await loadDataset('breast_cancer_wdbc');
    const synth = parseCsv(await readFile(join(out, 'synthetic.csv'), 'utf8'));
    expect(synth.header).toEqual(input.header);
    expect(synth.rows.length).toBe(report.split.trainRows);
    const diag = synth.header.indexOf('diagnosis');
    expect(new Set(synth.rows.map((row) => row[diag]))).toEqual(new Set(['0', '1']));
    for (const row of synth.rows.slice(0, 50)) for (const v of row) expect(v).toMatch(/^-?\d+(\.\d+)?$/);

    // Privacy, secure aggregation and the ledger are on by default and reported.
    expect(report.privacy).toMatchObject({ mode: 'record', budget: 8, delta: 1e-5, clip: 1 });
    expect(report.privacy.epsilon).toBeGreaterThan(0);
    expect(report.privacy.epsilon).toBeLessThanOrEqual(8);
    expect(report.privacy.noiseMultiplier).toBeGreaterThan(0);
    // The column release is charged, and the member's total is the exact composition of what it spent (RDP accountant):
    // round 1 the release's Skellam steps (q = 1, one per hierarchy level), then DP-SGD at the DP count's q.
    for (let i = 0; i < 3; i++) {
      const result = JSON.parse(await readFile(join(out, 'nodes', String(i), 'result.json'), 'utf8'));
      const spends = result.contributionsDetail.map((c: { privacy: Array<Record<string, unknown>> }) => c.privacy[0]!);
      expect(spends[0]).toMatchObject({ mode: 'record', sampleRate: 1, skellam: { l1: 1, l2: 1 } });
      expect(spends[0].steps).toBe(91); // 30 numeric columns × 3 levels (256 fine bins, branching 8) + the target's 1
      for (const s of spends.slice(1)) expect(s.skellam).toBeUndefined();
      // DP-SGD was calibrated on what the release left: the total stays within the budget (ledger verify, below,
      // recomputes it from the recorded mechanisms and refuses an under-report).
      expect(spends[0].epsilonTotal).toBeGreaterThan(spends[0].epsilonRound);
      expect(spends.at(-1).epsilonTotal).toBeLessThanOrEqual(8);
      // model.json carries the map and the released class mix, so `fedtwin generate` calibrates as the node did.
      const model = JSON.parse(await readFile(join(out, 'nodes', String(i), 'model.json'), 'utf8'));
      expect(model.model.calibration.columns).toHaveLength(30);
      expect(model.model.classMix).toHaveLength(2);
    }
    // Secure aggregation by pairwise masking is the default (issue 16): 4 bytes per value up, no key anywhere.
    expect(report.secureAggregation.scheme).toMatch(/pairwise masking/);
    expect(report.secureAggregation.polyModulusDegree).toBe(null);
    expect(report.secureAggregation.keyId).toBe(null);
    expect(report.secureAggregation.ratioToFloat32).toBeCloseTo(1, 2);
    expect(report.ledger.verified).toEqual({ aggregator: true, replicas: [true, true, true] });
    expect(report.ledger.cosignatures).toBe(3);
    expect(report.ledger.checkpoint).toContain(`\n${report.ledger.size}\n`);

    // No secret key exists anywhere: no HE key file on any node or at the aggregator.
    for (const f of await listFiles(out)) expect(f.endsWith('he-secret.key'), f).toBe(false);
    // Each round's one recovery request is in the ledger (the reveals replayed by ledger verify, test/secagg-faults.test.ts).
    const events = (await readFile(join(out, 'aggregator', 'aggregator.log'), 'utf8')).split('\n').filter((l) => l.includes('"secagg-recovery"'));
    expect(events.length).toBe(report.rounds);

    // The split is recorded and reproducible from the seed; the HTML report has its plots.
    const split = JSON.parse(await readFile(join(out, 'split.json'), 'utf8'));
    expect(split.nodes.flat().length + split.test.length).toBe(569);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('TSTR federated');
    expect(html).toContain('Training loss per round');
    // The correlation heatmap pair: WDBC's 30 numeric columns, real and synthetic, 30 × 30 cells each.
    expect(html).toContain('Correlations: real vs synthetic');
    expect(html.match(/<td style="background:/g)?.length).toBe(2 * 30 * 30);
  }, 300_000);
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await listFiles(p));
    else out.push(p);
  }
  return out;
}
