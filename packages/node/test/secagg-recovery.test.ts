// Issue 16: a member answers only the round's one recovery request, read in its own ledger replica. A second
// request for the round in the ledger (an aggregator trying to unmask a member who sent), a request at another
// leaf than the aggregator names, or one whose digest does not match its sets is refused before anything is
// revealed; a replayed or conflicting request to a member that already answered is refused by the protocol state.
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, openLedger, type EntryType, type Ledger } from '@fedtwin/ledger';
import * as sa from '@fedtwin/secagg';
import { recoveryFromLedger } from '../src/phases/secagg.ts';

const ORIGIN = 'fedtwin/rec';
const CONSORTIUM = 'rec';
const root = mkdtempSync(join(tmpdir(), 'fedtwin-secagg-rec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const keyOf = (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`secagg-rec-${n}`).digest());

/** What the member's Witness.entriesFor does: the aggregator's entries of a type for a round, from the replica. */
const replicaOf = (ledger: Ledger, aggregator: string) => ({
  async entriesFor(type: EntryType, round: number) {
    const out = [];
    for (const index of await ledger.findAllByKey(type, round, aggregator)) out.push({ index, entry: await ledger.getEntry(index) });
    return out;
  },
});

async function setUp(name: string) {
  const agg = createEntrySigner(await keyOf(0), ORIGIN);
  const ids = await Promise.all([1, 2, 3].map(async (n) => createEntrySigner(await keyOf(n), ORIGIN)));
  const cfg = { consortium: CONSORTIUM, round: 1, members: ids.map((i) => i.peerId), threshold: 2, length: 4 };
  const p0 = ids.map((id) => sa.advertise(cfg, id));
  const { accepted } = sa.collectAdvertisements(cfg, p0.map((p) => p.ad));
  const p1 = p0.map((p) => sa.shareKeys(p.state, accepted));
  const { round, inboxes } = sa.routeShares(cfg, accepted, p1.map((p) => p.bundle));
  const p2 = p1.map((p) => sa.maskInput(p.state, inboxes.get(p.state.me)!, new Int32Array(4)));
  const req = sa.recoveryRequest(round, p2.map((p) => p.masked.member));
  const ledger = await openLedger({ dir: join(root, name) });
  const record = async (r: sa.RecoveryRequest, digest = hex(sa.requestDigest(r))) =>
    (await ledger.append(await createEntry({ type: 'secagg-recovery', round: 1, consortium: CONSORTIUM, threshold: 2, survivors: r.survivors, dropped: r.dropped, digest }, agg))).index;
  return { agg, ids, req, p2, ledger, record, replica: replicaOf(ledger, agg.peerId) };
}

describe('a member answers only the one recovery request in its ledger replica', () => {
  it('reads the one request at the leaf the aggregator names', async () => {
    const s = await setUp('one');
    try {
      const at = await s.record(s.req);
      await expect(recoveryFromLedger(s.replica, 1, at, CONSORTIUM)).resolves.toEqual(s.req);
      await expect(recoveryFromLedger(s.replica, 1, at + 1, CONSORTIUM)).rejects.toMatchObject({ code: 'NODE_SECAGG_RECOVERY_CONFLICT' });
      await expect(recoveryFromLedger(s.replica, 1, at, 'another')).rejects.toMatchObject({ code: 'NODE_SECAGG_RECOVERY_CONFLICT' });
    } finally {
      await s.ledger.close();
    }
  });

  it('a second, conflicting request for the round in the ledger: refused, whichever leaf is named', async () => {
    const s = await setUp('two');
    try {
      const first = await s.record(s.req);
      // The aggregator names a member that sent "dropped": with this request answered too, its b and s would both be out.
      const unmaskIt = { ...s.req, survivors: s.req.survivors.slice(1), dropped: [s.req.survivors[0]!] };
      const second = await s.record(unmaskIt);
      for (const at of [first, second]) await expect(recoveryFromLedger(s.replica, 1, at, CONSORTIUM)).rejects.toMatchObject({ code: 'NODE_SECAGG_RECOVERY_CONFLICT', details: { leaves: [first, second] } });
    } finally {
      await s.ledger.close();
    }
  });

  it('a request whose digest does not match its sets: refused', async () => {
    const s = await setUp('digest');
    try {
      const at = await s.record(s.req, hex(sa.requestDigest({ ...s.req, dropped: [s.req.survivors[0]!] })));
      await expect(recoveryFromLedger(s.replica, 1, at, CONSORTIUM)).rejects.toMatchObject({ code: 'NODE_SECAGG_RECOVERY_CONFLICT' });
    } finally {
      await s.ledger.close();
    }
  });

  it('replayed or conflicting requests to a member that already answered: refused by its protocol state', async () => {
    const s = await setUp('replay');
    try {
      const { state } = sa.answerRecovery(s.p2[0]!.state, s.req);
      expect(() => sa.answerRecovery(state, s.req)).toThrow(expect.objectContaining({ code: 'SECAGG_RECOVERY_REPLAYED' }));
      const other = { ...s.req, survivors: s.req.survivors.filter((m) => m !== s.ids[2]!.peerId), dropped: [s.ids[2]!.peerId] };
      expect(() => sa.answerRecovery(state, other)).toThrow(expect.objectContaining({ code: 'SECAGG_RECOVERY_CONFLICT' }));
    } finally {
      await s.ledger.close();
    }
  });
});
