import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivacyBudget, epsilonFor } from '@fedtwin/dp';
import { parseManifest, privacyPolicyOf } from '@fedtwin/consortium';
import { verifyLedgerDir } from '@fedtwin/ledger';
import { inferSchema, initBackend, loadDataset, toCsv } from '@fedtwin/models';
import { declaredPublicCount, rebuildSpending, recordRound, releasesCount, type OwnLedgerEntry } from '../src/privacy.ts';
import { contributionEntries, runInProcessFederation } from './helpers/in-process-federation.ts';

// Issue 13 item 3, "N public only where the manifest says so": members[].publicCount. A member whose count the
// manifest declares public samples at q = min(1, B/publicCount) — the declaration, whatever its CSV holds — releases
// no DP count and charges nothing for one; the other member of the same consortium still releases its DP count Ñ.
const ROUNDS = 2;
const BATCH = 16;
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEERS = ['12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU', '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7'];

let dir = '';
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-public-count-'));
});
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

describe('a public record count declared in the manifest', () => {
  it('is accepted only for record-level DP with the vae generator (CONSORTIUM_INVALID otherwise)', () => {
    const base = { consortium: 'c', aggregator: AGG, rounds: { total: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 60 } };
    const members = [{ peerId: PEERS[0], publicCount: 120 }, { peerId: PEERS[1] }];
    const ok = parseManifest({ ...base, members, privacy: { mode: 'record', epsilon: 8, clip: 1 } });
    expect(declaredPublicCount(ok, privacyPolicyOf(ok), PEERS[0]!)).toBe(120);
    expect(declaredPublicCount(ok, privacyPolicyOf(ok), PEERS[1]!)).toBeUndefined();
    expect(releasesCount(privacyPolicyOf(ok), 'vae', 120)).toBe(false);
    expect(releasesCount(privacyPolicyOf(ok), 'vae', undefined)).toBe(true);
    for (const privacy of [{ mode: 'off' }, { mode: 'site', epsilon: 8, clip: 1 }]) {
      expect(() => parseManifest({ ...base, members, privacy, secureAggregation: { scheme: 'bfv' } })).toThrowError(expect.objectContaining({ code: 'CONSORTIUM_INVALID', message: expect.stringMatching(/members\.0\.publicCount/) }));
    }
    expect(() => parseManifest({ ...base, rounds: { ...base.rounds, total: 3 }, members, model: { kind: 'marginals' }, privacy: { mode: 'record', epsilon: 8 } })).toThrowError(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
    expect(() => parseManifest({ ...base, members: [{ peerId: PEERS[0], publicCount: 0 }], privacy: { mode: 'record', epsilon: 8, clip: 1 } })).toThrowError(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
  });

  it('in a federation: member 0 (declared 150, its CSV holds 140) samples at B/150 and releases no count; member 1 releases its DP count; ledger verify and a rebuilt budget agree', async () => {
    const ds = await loadDataset('breast_cancer_wdbc');
    const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
    await writeFile(join(dir, 'site-0.csv'), toCsv(ds.header, ds.rows.slice(0, 140)));
    await writeFile(join(dir, 'site-1.csv'), toCsv(ds.header, ds.rows.slice(140, 260)));
    const DECLARED = 150;
    const { ids, events, ledgerDir, manifest } = await runInProcessFederation({
      dir, consortium: 'public-count', schema, members: 2, rounds: ROUNDS, batchSize: BATCH,
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
      member: (i) => (i === 0 ? { publicCount: DECLARED } : {}),
    });
    for (const ev of events) expect(ev.some((e) => e.event === 'federation-finished')).toBe(true);
    // Member 0: no count released, the declaration logged (with its own count, locally only), q from the declaration.
    expect(events[0]!.some((e) => e.event === 'count-released')).toBe(false);
    expect(events[0]!.find((e) => e.event === 'public-count')).toMatchObject({ publicCount: DECLARED, own: 140 });
    expect(events[1]!.some((e) => e.event === 'count-released')).toBe(true);
    const q0 = Math.min(1, BATCH / DECLARED);
    const spends0 = events[0]!.filter((e) => e.event === 'contributed').map((e) => (e.privacy as Array<{ sampleRate: number; steps: number; noiseMultiplier: number; epsilonTotal: number }>)[0]!);
    expect(spends0).toHaveLength(ROUNDS);
    for (const p of spends0) expect(p).toMatchObject({ sampleRate: q0, steps: recordRound(DECLARED, { batchSize: BATCH, epochs: 1 }).steps });
    // Its ε is DP-SGD's alone: the composition of its rounds, no count release.
    const z0 = spends0[0]!.noiseMultiplier;
    const alone = epsilonFor({ sampleRate: q0, noiseMultiplier: z0, steps: ROUNDS * spends0[0]!.steps, delta: 1e-5 }).epsilon;
    expect(Math.abs(spends0.at(-1)!.epsilonTotal - alone)).toBeLessThan(1e-9 * alone);

    const entries = await contributionEntries(ledgerDir);
    expect(entries).toHaveLength(2 * ROUNDS);
    const own: OwnLedgerEntry[] = [];
    entries.forEach((e, index) => {
      if (e.node === ids[0]) {
        expect(e).toMatchObject({ countEstimate: DECLARED, mechanism: { sampleRate: q0 } });
        expect(e.countNoise).toBeUndefined();
        own.push({ index, leafHash: 'x'.repeat(64), type: 'contribution', round: e.round, epsilonTotal: e.epsilonTotal, delta: e.delta, countEstimate: e.countEstimate! });
      } else {
        expect(e.countNoise).toBe(20);
      }
    });
    const v = await verifyLedgerDir(ledgerDir);
    if (!v.ok) throw new Error(`ledger verify failed: ${v.message}`);
    expect(Math.abs(v.summary.epsilonPerNode[ids[0]!]! - alone)).toBeLessThan(1e-9 * alone);
    // A member that lost its state replays at the declared count and charges no release.
    const rebuilt = rebuildSpending(own, { policy: privacyPolicyOf(manifest), rows: 140, training: { batchSize: BATCH, epochs: 1 }, totalRounds: ROUNDS, own: {}, publicCount: DECLARED });
    expect(rebuilt.privacy.count).toBeUndefined();
    expect(rebuilt.privacy.record!.mechanisms).toEqual([{ sampleRate: q0, noiseMultiplier: z0, steps: ROUNDS * spends0[0]!.steps }]);
    expect(Math.abs(PrivacyBudget.fromJSON(rebuilt.privacy.record!).spent().epsilon - alone)).toBeLessThan(1e-9 * alone);
    // …and refuses entries naming another public count.
    expect(() => rebuildSpending(own, { policy: privacyPolicyOf(manifest), rows: 140, training: { batchSize: BATCH, epochs: 1 }, totalRounds: ROUNDS, own: {}, publicCount: DECLARED + 1 })).toThrowError(/cannot be rebuilt exactly/);
  }, 300_000);
});
