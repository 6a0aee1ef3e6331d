import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { createAggregator } from '@fedtwin/aggregator';
import { RdpAccountant } from '@fedtwin/dp';
import { openLedger, type EntryPayload } from '@fedtwin/ledger';
import { createTwinVae, encodeTable, inferSchema, initBackend, loadDataset, toCsv } from '@fedtwin/models';
import { createWireHost, generateIdentity, peerIdOf } from '@fedtwin/wire';
import { createNode } from '../src/node.ts';

// Issue 13 item 3, the record count N, end to end: a real aggregator and two real members (in-process, plaintext
// aggregation, record-level DP at a calibrated z) whose record counts differ by one (100 and 101). The attack reads
// what every party sees of a member — its signed contribution entries in the ledger and the privacy spend in its
// update header — and inverts q: before the DP count, B/q was N exactly (q = B/N), so the two sites were told apart
// with certainty. Now B/q is the member's signed DP count Ñ, released once and charged in its ε total; N is in no
// entry and no header.
const ROUNDS = 2;
const BATCH = 8;
const ROWS = [100, 101];
type Event = Record<string, unknown>;
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

    const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1 };
    const layout = encodeTable({ schema, rows: [] });
    const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: 2, hidden: 8, seed: 1 });
    const modelValues = probe.sharedSize;
    probe.dispose();
    const keys = [await generateIdentity(), await generateIdentity()];
    const ids = keys.map((k) => peerIdOf(k));
    const aggKey = await generateIdentity();
    const aggHost = await createWireHost({ privateKey: aggKey, allow: ids });
    const manifest = parseManifest({
      consortium: 'count', aggregator: aggHost.peerId, members: ids.map((peerId) => ({ peerId })), model,
      training: { epochs: 1, batchSize: BATCH, learningRate: 0.003 },
      rounds: { total: ROUNDS, quorum: 2, minParticipants: 2, deadlineSeconds: 600 },
      secureAggregation: { scheme: 'plaintext' },
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
    });
    const sigma = privacyPolicyOf(manifest).record!.countNoise;
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const agg = await createAggregator({
      host: aggHost, dataDir: join(dir, 'agg-state'), consortium: manifest.consortium, members: ids, schema, model, modelValues, strategy: 'fedavg',
      training: manifest.training, rounds: { totalRounds: ROUNDS, quorum: 2, minParticipants: 2, deadlineSeconds: 600 },
      privacy: privacyPolicyOf(manifest), secureAggregation: secureAggregationOf(manifest), manifest: { manifest, hash: manifestHash(manifest) },
      ledger: { dir: join(dir, 'agg-ledger'), identity: aggKey }, logger: quiet,
    });
    const events: Event[][] = [[], []];
    try {
      await Promise.all(keys.map(async (key, i) => {
        const h = await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] });
        const record = (e: Event) => { events[i]!.push(e); };
        const node = await createNode({
          host: h, aggregator: aggHost.addrs()[0]!, dataDir: join(dir, `site-${i}`, 'state'), csvPath: join(dir, `site-${i}.csv`), backend: 'cpu',
          logger: { info: record, warn: record, error: record }, consortium: { manifest, hash: manifestHash(manifest) }, identity: key,
          ledgerDir: join(dir, `site-${i}`, 'ledger'), heKeyFile: join(dir, `site-${i}`, 'he-secret.key'), seed: 1 + i, unreachableGiveUpSeconds: 30,
        });
        try {
          await node.run();
        } finally {
          await node.stop().catch(() => undefined);
          await h.stop().catch(() => undefined);
        }
      }));
    } finally {
      await agg.stop().catch(() => undefined);
      await aggHost.stop().catch(() => undefined);
    }

    // What every party holds: the signed contribution entries (the ledger every member replicates).
    const ledger = await openLedger({ dir: join(dir, 'agg-ledger'), readOnly: true });
    const contributions: Array<Extract<EntryPayload, { type: 'contribution' }>> = [];
    try {
      for (let k = 0; k < ledger.size; k++) {
        const p = (await ledger.getEntry(k)).payload;
        if (p.type === 'contribution') contributions.push(p);
      }
    } finally {
      await ledger.close();
    }
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
