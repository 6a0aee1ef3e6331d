import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrationRounds, loadManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { skellamEpsilon } from '@fedtwin/dp';
import { createTwinVae, encodeTable, type TableSchema } from '@fedtwin/models';
import { openLedger, parseEntry, verifyLedgerDir } from '@fedtwin/ledger';
import { rebuildSpending, savedEpsilon, type OwnLedgerEntry } from '../../node/src/privacy.ts';
import { siteSkellamOf, siteSkellamStep } from '../../node/src/site-noise.ts';
import { CLI_BIN } from '../src/index.ts';

// `fedtwin sim --generator vae --dp site`, end to end with real processes (an aggregator and 3 nodes, BFV, so
// minParticipants = 2 and each share is Sk(μ/2)): the members send integer updates with Skellam shares, sign the Skellam mechanism into the ledger, and `ledger verify`
// recomputes the same ε from it. Small model and 2 rounds of 1 epoch: the privacy path, not the twin, is tested.
describe('fedtwin sim --dp site (VAE): integer Skellam site noise', () => {
  let out = '';
  let report: Record<string, any>;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'fedtwin-site-skellam-'));
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--generator', 'vae', '--dp', 'site', '--nodes', '3', '--rounds', '2', '--epochs', '1', '--hidden', '16', '--latent', '4', '--seed', '7', '--out', out, '--progress', 'none', '--timeout', '150'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
  }, 180_000);
  afterAll(async () => { if (out) await rm(out, { recursive: true, force: true }); });

  it('every contribution signs the Skellam mechanism the manifest and model size give; ledger verify and the budget rebuild recompute the same ε, within the target', async () => {
    const { manifest } = await loadManifest(join(out, 'consortium.json'));
    const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8')) as TableSchema;
    if (manifest.model.kind !== 'vae') throw new Error('expected the vae generator');
    // The shared model's size, as every member derives it (the same probe as the daemons).
    const layout = encodeTable({ schema, rows: [] });
    const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: manifest.model.latentDim, hidden: manifest.model.hidden, seed: manifest.model.seed });
    const modelValues = probe.sharedSize;
    probe.dispose();
    const site = await siteSkellamOf(manifest, { modelValues, secureAggregation: secureAggregationOf(manifest) });
    if (!site) throw new Error('expected a site-level Skellam mechanism');
    // Calibrated on the Skellam accountant: the planned rounds spend at most the target, and a hair less noise would not.
    const planned = skellamEpsilon({ params: site.params, steps: calibrationRounds(manifest.rounds.total), delta: 1e-5 }).epsilon;
    expect(planned).toBeLessThanOrEqual(8);
    expect(planned).toBeGreaterThan(7.99);

    const ledger = await openLedger({ dir: join(out, 'ledger'), readOnly: true });
    const own = new Map<string, OwnLedgerEntry[]>();
    try {
      for (let i = 0; i < ledger.size; i++) {
        const p = parseEntry(await ledger.getEntryBytes(i)).payload;
        if (p.type !== 'contribution') continue;
        expect(p.mechanism).toEqual({ kind: 'skellam', sampleRate: 1, noiseMultiplier: site.noiseMultiplier, steps: 1, delta: 1e-5, mu: site.params.mu, l1: site.params.l1, l2: site.params.l2 });
        own.set(p.node, [...(own.get(p.node) ?? []), { index: i, leafHash: 'x'.repeat(64), type: 'contribution', round: p.round, epsilonTotal: p.epsilonTotal, delta: p.delta }]);
      }
    } finally {
      await ledger.close();
    }
    const v = await verifyLedgerDir(join(out, 'ledger'));
    if (!v.ok) throw new Error(`ledger verify failed: ${v.message}`);
    expect(manifest.rounds.minParticipants).toBe(2);
    expect(site.lambda.num / site.lambda.den).toBe(site.params.mu / 2);
    expect(own.size).toBe(3);
    const expected = skellamEpsilon({ params: site.params, steps: 2, delta: 1e-5 }).epsilon;
    for (const [node, entries] of own) {
      expect(entries).toHaveLength(2);
      expect(Math.abs(v.summary.epsilonPerNode[node]! - expected)).toBeLessThan(1e-9 * expected);
      const rebuilt = rebuildSpending(entries, { policy: privacyPolicyOf(manifest), rows: 100, training: manifest.training, totalRounds: 2, own: {}, siteStep: siteSkellamStep(site) });
      expect(rebuilt.privacy.site!.mechanisms).toEqual([{ ...siteSkellamStep(site), steps: 2 }]);
      expect(Math.abs(savedEpsilon(rebuilt.privacy, 'site', 1e-5) - expected)).toBeLessThan(1e-9 * expected);
    }
    // What the report prints is that ε, not the Gaussian one of the policy's z.
    expect(Math.abs(report.privacy.epsilon - expected)).toBeLessThan(1e-9 * expected);
    expect(report.ledger.verified).toEqual({ aggregator: true, replicas: [true, true, true] });
  });

  it('the members applied the Skellam sums: the federated model moved and every replica agrees', async () => {
    const logs = await Promise.all([0, 1, 2].map(async (i) => (await readFile(join(out, 'nodes', String(i), 'node.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>)));
    for (const events of logs) {
      expect(events.some((e) => e.event === 'site-noise' && e.kind === 'skellam')).toBe(true);
      expect(events.filter((e) => e.event === 'global-updated').map((e) => e.version)).toEqual([1, 2]);
    }
    const hashes = logs.map((events) => events.filter((e) => e.event === 'global-updated').map((e) => e.hash));
    expect(hashes[1]).toEqual(hashes[0]);
    expect(hashes[2]).toEqual(hashes[0]);
  });
});
