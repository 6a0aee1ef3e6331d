// Witness side: a member node replicates the aggregator's ledger, checks it, and co-signs checkpoints.
import { afterEach, describe, expect, it } from 'vitest';
import {
  openLedger,
  createReplica,
  createEntrySync,
  formatVerifierKey,
  noteVerifierFromPeerId,
  parseVerifierKey,
  verifyNote,
  parseCheckpoint,
  toHex,
  type Ledger,
} from '../src/index.ts';
import { fillLedger, party, roundEntries, tempDir, ORIGIN, type Party } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function open(tag: string, origin?: string): Promise<Ledger> {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  const l = await openLedger({ dir: t.dir, ...(origin === undefined ? {} : { origin }) });
  cleanups.push(() => l.close());
  return l;
}

async function setup() {
  const agg = await party(1, ORIGIN);
  const nodes = [await party(2), await party(3), await party(4)];
  const log = await open('agg');
  await fillLedger(log, agg, nodes, 1); // checkpoint at 8
  const me = nodes[0];
  const replica = await createReplica({ ledger: await open('rep'), origin: ORIGIN, aggregatorKey: formatVerifierKey(agg.note), witness: me.note });
  return { agg, nodes, log, me, replica };
}

describe('replica sync', () => {
  it('verifies, persists, co-signs; the aggregator merges the cosignature; the next round chains by consistency proof', async () => {
    const { agg, nodes, log, me, replica } = await setup();
    const mine = createEntrySync({ type: 'refusal', round: 99, node: me.peerId, reason: 'own entry' }, me.entry);
    const r1 = await replica.sync({ ...(await log.syncBundle(0)), mustInclude: [{ leafHash: (await log.leafHash(4)), index: 4 }] });
    expect(r1).toMatchObject({ size: 8, appended: 8 });
    expect(toHex(replica.ledger.rootHash)).toBe(toHex(log.rootHash));
    expect(r1.cosignature.startsWith(`— ${me.peerId} `)).toBe(true);
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    const witnessV = noteVerifierFromPeerId(me.peerId);
    expect(verifyNote(r1.note, [aggV, witnessV], { require: [ORIGIN, me.peerId] }).verifiedBy).toEqual([ORIGIN, me.peerId]);
    const merged = await log.addCosignatures(r1.note, [aggV, witnessV]);
    expect(parseCheckpoint(merged).signatures.length).toBe(2);

    // round 1, including an entry the replica must find among the new ones
    await log.appendMany([...(await roundEntries(agg, nodes, 1, log.size, false)), mine]);
    await log.signCheckpoint(agg.note);
    const b2 = await log.syncBundle(replica.size);
    expect(b2.consistencyProof.length).toBeGreaterThan(0);
    const r2 = await replica.sync({ ...b2, mustInclude: [mine] });
    expect(r2).toMatchObject({ size: 14, appended: 6 });
    expect((await replica.ledger.latestCheckpoint())!.note).toBe(r2.note);
    // an identical re-sync is a no-op that still returns the cosignature
    expect(await replica.sync(await log.syncBundle(14))).toMatchObject({ size: 14, appended: 0 });
  });

  it('a forked checkpoint (history edited and re-signed) is LEDGER_INCONSISTENT with both roots; nothing is persisted', async () => {
    const { agg, nodes, log, replica } = await setup();
    await replica.sync(await log.syncBundle(0));
    const before = { size: replica.size, root: toHex(replica.ledger.rootHash), cp: (await replica.ledger.latestCheckpoint())!.note };

    // The aggregator rewrites history: a fork that drops node 1's round-0 contribution, signed with its real key.
    const fork = await open('fork', ORIGIN); // entry bytes are checked for the log origin
    const honest = await log.entriesSince(0);
    await fork.appendMany(honest.filter((_, i) => i !== 5));
    await fork.appendMany(await roundEntries(agg, nodes, 1, fork.size, false));
    await fork.signCheckpoint(agg.note);
    const bundle = await fork.syncBundle(replica.size);
    let err: unknown;
    try {
      await replica.sync(bundle);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'LEDGER_INCONSISTENT' });
    const details = (err as { details: Record<string, unknown> }).details;
    expect(details).toMatchObject({ checkpointSize: fork.size, expectedRoot: toHex(fork.rootHash), localSize: 8, localRoot: before.root });
    expect(details.calculatedRoot).not.toBe(details.expectedRoot);
    expect(replica.size).toBe(before.size);
    expect(toHex(replica.ledger.rootHash)).toBe(before.root);
    expect((await replica.ledger.latestCheckpoint())!.note).toBe(before.cp);
  });

  it('a forked checkpoint at the same size, a rollback, and a bad consistency proof are each refused', async () => {
    const { agg, nodes, log, replica } = await setup();
    await replica.sync(await log.syncBundle(0));
    // same size, different root
    const fork = await open('fork2', ORIGIN);
    const honest = await log.entriesSince(0);
    await fork.appendMany([...honest.slice(0, 7), createEntrySync({ type: 'key', event: 'revocation', keyId: 'x' }, agg.entry)]);
    await fork.signCheckpoint(agg.note);
    await expect(replica.sync(await fork.syncBundle(8))).rejects.toMatchObject({ code: 'LEDGER_INCONSISTENT' });
    // rollback to a smaller tree
    const short = await open('short', ORIGIN);
    await short.appendMany(honest.slice(0, 5));
    await short.signCheckpoint(agg.note);
    await expect(replica.sync({ entries: [], checkpoint: (await short.latestCheckpoint())!.note, consistencyProof: [] })).rejects.toMatchObject({
      code: 'LEDGER_INCONSISTENT',
      details: { localSize: 8, checkpointSize: 5 },
    });
    // honest entries and checkpoint, tampered consistency proof
    await log.appendMany(await roundEntries(agg, nodes, 1, log.size, false));
    await log.signCheckpoint(agg.note);
    const b = await log.syncBundle(8);
    const bad = b.consistencyProof.map((h, i) => (i === 0 ? Uint8Array.from(h, (x, j) => (j === 0 ? x ^ 1 : x)) : h));
    await expect(replica.sync({ ...b, consistencyProof: bad })).rejects.toMatchObject({
      code: 'LEDGER_INCONSISTENT',
      details: { previousSize: 8, checkpointSize: 13 },
    });
    expect(replica.size).toBe(8);
    // and the honest bundle still goes through
    expect((await replica.sync(b)).size).toBe(13);
  });

  it('refuses a checkpoint not signed by the pinned aggregator key, forged entries, and a missing own contribution', async () => {
    const { nodes, log, me, replica } = await setup();
    const b = await log.syncBundle(0);
    const mallory: Party = await party(99, ORIGIN);
    const cp = parseCheckpoint(b.checkpoint).checkpoint;
    const { signCheckpoint } = await import('../src/index.ts');
    await expect(replica.sync({ ...b, checkpoint: signCheckpoint(cp, mallory.note) })).rejects.toMatchObject({ code: 'LEDGER_CHECKPOINT_INVALID' });
    await expect(replica.sync({ ...b, checkpoint: b.checkpoint.replace('\n8\n', '\n9\n') })).rejects.toMatchObject({ code: 'LEDGER_CHECKPOINT_INVALID' });
    const forged = b.entries.map((e, i) => (i === 3 ? new TextEncoder().encode(new TextDecoder().decode(e).replace('"lr":0.01', '"lr":0.02')) : e));
    await expect(replica.sync({ ...b, entries: forged })).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', details: { index: 3 } });
    const notSent = createEntrySync({ type: 'refusal', round: 0, node: me.peerId, reason: 'budget' }, me.entry);
    await expect(replica.sync({ ...b, mustInclude: [notSent] })).rejects.toMatchObject({ code: 'LEDGER_NOT_INCLUDED' });
    expect(replica.size).toBe(0);
    expect(nodes.length).toBe(3);
  });
});
