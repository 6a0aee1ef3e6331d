import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privacyPolicyOf } from '@fedtwin/consortium';
import { RdpAccountant } from '@fedtwin/dp';
import { inferSchema, initBackend, loadDataset, toCsv } from '@fedtwin/models';
import { contributionEntries, runInProcessFederation } from './helpers/in-process-federation.ts';

// Issue 13 item 3, the record count N, end to end: a real aggregator and two real members (in-process, plaintext
// aggregation, record-level DP at a calibrated z) whose record counts differ by one (100 and 101). The attack reads
// what every party sees of a member — its signed contribution entries in the ledger and the privacy spend in its
// update header — and inverts q: before the DP count, B/q was N exactly (q = B/N), so the two sites were told apart
// with certainty. Now B/q is the member's signed DP count Ñ, released once and charged in its ε total; N is in no
// entry and no header.
const ROUNDS = 2;
const BATCH = 8;
const ROWS = [100, 101];
type Spend = { mode: string; sampleRate: number; steps: number; noiseMultiplier: number; epsilonTotal: number; delta: number };

let dir = '';
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-count-release-'));
});
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

describe('the record count under record-level DP, end to end', () => {
  it('two members with N = 100 and 101: q in every signed entry and header is B/Ñ, Ñ is signed and charged, N is nowhere', async () => {
    const ds = await loadDataset('breast_cancer_wdbc');
    const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
    await writeFile(join(dir, 'site-0.csv'), toCsv(ds.header, ds.rows.slice(0, ROWS[0])));
    await writeFile(join(dir, 'site-1.csv'), toCsv(ds.header, ds.rows.slice(200, 200 + ROWS[1]!)));

    const { ids, manifest, events, ledgerDir } = await runInProcessFederation({
      dir, consortium: 'count', schema, members: 2, rounds: ROUNDS, batchSize: BATCH, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
    });
    const sigma = privacyPolicyOf(manifest).record!.countNoise;
    // What every party holds: the signed contribution entries (the ledger every member replicates).
    const contributions = await contributionEntries(ledgerDir);
    expect(contributions).toHaveLength(2 * ROUNDS);

    // The attack, first: invert each entry's q. Before the DP count it returned N exactly (B/q = 100 and 101, the
    // two sites told apart with certainty) and the entry named nothing else; now it returns the Ñ the entry signs.
    for (const c of contributions) {
      const q = c.mechanism!.sampleRate;
      const recovered = q < 1 ? Math.round(BATCH / q) : undefined;
      if (recovered !== undefined) expect(recovered, `B/q of ${c.node.slice(-6)} in round ${c.round} is the DP count it signed, not its record count`).toBe(c.countEstimate);
      expect(c.countEstimate, 'every entry names the DP count its q derives from').toBeDefined();
    }
    expect(sigma).toBe(20);

    for (const [i, n] of ROWS.entries()) {
      const ev = events[i]!;
      expect(ev.find((e) => e.event === 'data-loaded'), `site ${i}`).toMatchObject({ rows: n });
      expect(ev.some((e) => e.event === 'federation-finished'), `site ${i}`).toBe(true);
      const released = ev.filter((e) => e.event === 'count-released');
      expect(released, 'the count is drawn once').toHaveLength(1);
      const nTilde = released[0]!.estimate as number;
      const own = contributions.filter((c) => c.node === ids[i]);
      const headers = ev.filter((e) => e.event === 'contributed').map((e) => (e.privacy as Spend[])[0]!);
      expect(own).toHaveLength(ROUNDS);
      expect(headers).toHaveLength(ROUNDS);
      for (const [r, c] of own.entries()) {
        // The attacker's inversion of q, from the entry and from the header alike: it gives the signed Ñ, not N.
        const q = c.mechanism!.sampleRate;
        expect(headers[r]!.sampleRate).toBe(q);
        const fromQ = q < 1 ? BATCH / q : undefined;
        expect(c.countEstimate, `site ${i} round ${r + 1}: the entry names the count q derives from`).toBe(nTilde);
        expect(c.countNoise).toBe(sigma);
        if (fromQ !== undefined) expect(Math.round(fromQ)).toBe(nTilde);
        expect(q).toBe(Math.min(1, BATCH / nTilde));
        expect(c.mechanism!.steps).toBe(Math.max(1, Math.round(1 / q)));
        expect(c.sampleCount).toBeUndefined();
        expect(JSON.stringify(c)).not.toContain(`"sampleCount"`);
      }
      // Ñ is charged: the first signed total covers the count release composed with that round.
      const first = own[0]!;
      const charged = new RdpAccountant({ mechanisms: [{ sampleRate: 1, noiseMultiplier: sigma!, steps: 1 }, { sampleRate: first.mechanism!.sampleRate, noiseMultiplier: first.mechanism!.noiseMultiplier, steps: first.mechanism!.steps }] })
        .getEpsilon(first.delta).epsilon;
      expect(first.epsilonTotal).toBeCloseTo(charged, 9);
      expect(own.at(-1)!.epsilonTotal).toBeLessThanOrEqual(8);
    }
  }, 300_000);
});
