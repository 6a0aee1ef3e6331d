// Issue 11: appends to the audit log that a crash may repeat are idempotent (audit.ts), and reconciliation
// appends what a crash between state and ledger left out (reconcile.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, peerIdOf } from '@fedtwin/wire';
import { nextModelVersion } from '@fedtwin/protocol';
import { createEntry, createEntrySigner, sha256Hex, verifyLedgerDir, type EntryPayload } from '@fedtwin/ledger';
import { openAuditLog } from '../src/audit.ts';
import { AggregatorStore, type RoundRecord } from '../src/store.ts';
import { reconcileLedger } from '../src/reconcile.ts';

const dirs: string[] = [];
afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });
const hex = (s: string) => sha256Hex(new TextEncoder().encode(s));
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'fedtwin-audit-idem-'));
  dirs.push(dir);
  const aggKey = await generateIdentity();
  const memberKeys = [await generateIdentity(), await generateIdentity()];
  const members = memberKeys.map(peerIdOf);
  const audit = await openAuditLog({ dir: join(dir, 'ledger'), identity: aggKey, consortium: 'c', members });
  const signers = memberKeys.map((k) => createEntrySigner(k, 'fedtwin/c'));
  const contribution = (m: number, round: number, tag = '') => createEntry({
    type: 'contribution', round, node: members[m]!, ciphertextHash: hex(`ct${m}${round}${tag}`), ciphertextSize: 4,
    epsilon: 0, delta: 0, epsilonTotal: 0, deltaTotal: 0, keyId: 'plaintext',
  }, signers[m]!);
  const refusal = (m: number, round: number) => createEntry({ type: 'refusal', round, node: members[m]!, reason: 'budget' }, signers[m]!);
  return { dir, audit, members, contribution, refusal };
}

describe('audit log appends a crash may repeat', () => {
  it('a member entry: the same bytes return the leaf already there, another entry for the key is AGG_DUPLICATE', async () => {
    const { dir, audit, contribution, refusal } = await setup();
    const e = await contribution(0, 1);
    const first = await audit.appendChecked(e);
    const size = audit.size;
    expect(await audit.appendChecked(e)).toEqual({ index: first.index, existed: true });
    expect(audit.size).toBe(size);
    await expect(audit.appendChecked(await contribution(0, 1, 'new'))).rejects.toMatchObject({ code: 'AGG_DUPLICATE', message: expect.stringMatching(/already has a contribution entry for round 1/) });
    await expect(audit.appendChecked(await refusal(0, 1))).rejects.toMatchObject({ code: 'AGG_ALREADY_CONTRIBUTED' });
    // another round, another member: appended
    expect((await audit.appendChecked(await contribution(0, 2))).existed).toBeUndefined();
    const r = await refusal(1, 1);
    const ri = await audit.appendChecked(r);
    expect(await audit.appendChecked(r)).toEqual({ index: ri.index, existed: true });
    await expect(audit.appendChecked(await contribution(1, 1))).rejects.toMatchObject({ code: 'AGG_ALREADY_REFUSED' });
    await audit.close();
    expect((await verifyLedgerDir(join(dir, 'ledger'))).ok).toBe(true);
  });

  it('round and aggregate records: once per round, and per aggregateHash until that aggregate is withdrawn', async () => {
    const { audit, contribution } = await setup();
    const open = await audit.record({ type: 'round', action: 'open', round: 1, config: {} });
    expect(await audit.record({ type: 'round', action: 'open', round: 1, config: { other: 1 } })).toEqual({ index: open.index, existed: true });
    const leaf = (await audit.appendChecked(await contribution(0, 1))).index;
    const agg = { type: 'aggregate' as const, round: 1, contributions: [leaf], aggregateHash: hex('A'), modelVersion: hex('mA') };
    const a = await audit.record(agg);
    expect(await audit.record(agg)).toEqual({ index: a.index, existed: true });
    // withdrawn, then replaced by another sum: both are new entries; the replacement is then idempotent
    await audit.record({ type: 'exclusion', round: 1, action: 'withdraw', aggregateHash: hex('A'), reason: 'unusable', evidence: [] });
    const b = await audit.record({ ...agg, aggregateHash: hex('B') });
    expect(b.existed).toBeUndefined();
    expect(await audit.record({ ...agg, aggregateHash: hex('B') })).toEqual({ index: b.index, existed: true });
    // a withdrawn sum published again after its withdrawal is a new entry
    await audit.record({ type: 'exclusion', round: 1, action: 'withdraw', aggregateHash: hex('B'), reason: 'unusable', evidence: [] });
    expect((await audit.record({ ...agg, aggregateHash: hex('A') })).existed).toBeUndefined();
    const size = audit.size;
    expect((await audit.record({ ...agg, aggregateHash: hex('A') }, { idempotent: false })).index).toBe(size);
    await audit.close();
  });
});

describe('reconcileLedger', () => {
  it('appends the missing round and aggregate entries as the aggregator would, fills lost leaf indices, and is idempotent', async () => {
    const { dir, audit, members, contribution } = await setup();
    const store = await AggregatorStore.open(join(dir, 'state'));
    const base = hex('genesis');
    // round 1: both contributed (ledger has their entries; state lost the second one's leaf index), aggregated in
    // state only; round 2: opened in state only.
    await audit.record({ type: 'round', action: 'open', round: 1, config: {} });
    const l0 = (await audit.appendChecked(await contribution(0, 1))).index;
    const l1 = (await audit.appendChecked(await contribution(1, 1))).index;
    const c = (peer: string, ledgerIndex?: number) => ({ peer, weight: 1, loss: 0, bytes: 4, baseHash: base, trainSeconds: 0, receivedAt: 0, privacy: [], ...(ledgerIndex !== undefined ? { ledgerIndex } : {}) });
    const r1: RoundRecord = { round: 1, baseVersion: 0, baseHash: base, openedAt: 0, deadline: 5, status: 'aggregated', contributions: [c(members[0]!, l0), c(members[1]!)] };
    const body = new Uint8Array([1, 2, 3, 4]);
    const mv = nextModelVersion(base, sha256Hex(body));
    await store.closeRound(r1, { round: 1, version: 1, status: 'running', modelVersion: mv }, { record: { version: 1, round: 1, participants: members, totalWeight: 2, values: 1, baseHash: base, createdAt: 0 }, body });
    const r2: RoundRecord = { round: 2, baseVersion: 1, baseHash: mv, openedAt: 0, deadline: 9, status: 'open', contributions: [] };
    await store.openRound({ round: 2, version: 1, status: 'running', modelVersion: mv }, r2);
    const l2 = (await audit.appendChecked(await contribution(0, 2))).index; // window (a) for round 2

    const events: Record<string, unknown>[] = [];
    const log = { ...silent, warn: (o: Record<string, unknown>) => events.push(o) };
    const report = await reconcileLedger({ store, audit, log, members, roundConfig: { epochs: 1 } });
    expect(report.aggregates).toEqual([{ round: 1, version: 1, index: l2 + 1 }]);
    expect(report.rounds).toEqual([{ round: 2, index: l2 + 2 }]);
    expect(report.ledgerIndexes).toEqual([{ round: 1, peer: members[1], index: l1 }]);
    expect(report.pending).toEqual([{ round: 2, peer: members[0], index: l2 }]);
    expect(report.checkpoint).toBeDefined();
    expect(events.find((e) => e.event === 'reconciled')).toMatchObject({ aggregates: [{ round: 1 }], rounds: [{ round: 2 }] });
    expect((await store.getRound(1))!.contributions.map((x) => x.ledgerIndex)).toEqual([l0, l1]);
    const aggEntry = (await audit.entry(l2 + 1)).payload as Extract<EntryPayload, { type: 'aggregate' }>;
    expect(aggEntry).toMatchObject({ round: 1, contributions: [l0, l1], aggregateHash: sha256Hex(body), modelVersion: mv });
    expect((await audit.entry(l2 + 2)).payload).toMatchObject({ type: 'round', round: 2, globalVersion: mv, config: { epochs: 1, baseVersion: 1, deadline: 9 } });
    // a second start appends nothing
    const size = audit.size;
    const again = await reconcileLedger({ store, audit, log: silent, members, roundConfig: { epochs: 1 } });
    expect(again).toMatchObject({ rounds: [], aggregates: [], ledgerIndexes: [] });
    expect(audit.size).toBe(size);
    await store.close();
    await audit.close();
    expect((await verifyLedgerDir(join(dir, 'ledger'))).ok).toBe(true);
  });
});
