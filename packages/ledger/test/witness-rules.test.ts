// Issue 12 item 5, "a witness that cannot be skipped": authorship rules, C2SP cosignature/v1 witness
// lines, and what `verify` checks about them. Each "attack:" test failed on the code before the fix.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, verify as edVerify } from 'node:crypto';
import {
  openLedger,
  canonicalJson,
  createReplica,
  decodeEntry,
  decodeEntryAsync,
  isV1Signed,
  parseEntry,
  createEntrySync,
  createCosignatureSigner,
  cosignatureVerifierFromPeerId,
  cosignNote,
  formatVerifierKey,
  parseNote,
  parseVerifierKey,
  publicKeyRawOfPeerId,
  verifyLedgerDir,
  verifyNote,
  type EntryPayloadInput,
  type Ledger,
} from '../src/index.ts';
import { auditChunk } from '../src/audit-chunk.ts';
import { fillLedger, hex, keyFromSeed, party, tempDir, ORIGIN } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function open(tag: string, origin?: string): Promise<{ l: Ledger; dir: string }> {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  const l = await openLedger({ dir: t.dir, ...(origin === undefined ? {} : { origin }) });
  cleanups.push(() => l.close().catch(() => undefined));
  return { l, dir: t.dir };
}

async function world() {
  const agg = await party(1, ORIGIN);
  const nodes = [await party(2), await party(3), await party(4)];
  const { l: log, dir } = await open('agg');
  await fillLedger(log, agg, nodes, 1); // checkpoint at 8
  return { agg, nodes, log, dir };
}

/** An aggregator-signed contribution in node's name: ε = 0.001, a sum the node never made. */
function forgedContribution(agg: Awaited<ReturnType<typeof party>>, node: string, round = 1) {
  return createEntrySync({
    type: 'contribution', round, node, ciphertextHash: hex('planted'), ciphertextSize: 1, epsilon: 0.001, delta: 1e-9,
    epsilonTotal: 0.501, deltaTotal: 2e-6, keyId: 'he-key-1',
  }, agg.entry);
}

describe('authorship rules', () => {
  it('attack: ledger verify rejects an aggregator-signed contribution in a member\'s name (LEDGER_ENTRY_INVALID at its index)', async () => {
    const { agg, nodes, log, dir } = await world();
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, agg.entry));
    await log.append(forgedContribution(agg, nodes[0].peerId));
    await log.signCheckpoint(agg.note);
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 9, code: 'LEDGER_ENTRY_INVALID' });
    expect(r.ok === false && r.message).toMatch(/entry 9: a contribution in the name of .* signed by/);
  });

  it('attack: the member\'s replica refuses that entry and co-signs nothing', async () => {
    const { agg, nodes, log } = await world();
    const { l: rep } = await open('rep');
    const replica = await createReplica({ ledger: rep, origin: ORIGIN, aggregatorKey: formatVerifierKey(agg.note), witness: createCosignatureSigner(nodes[0].peerId, await keyFromSeed(2)) });
    await replica.sync(await log.syncBundle(0));
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, agg.entry));
    await log.append(forgedContribution(agg, nodes[0].peerId));
    await log.signCheckpoint(agg.note);
    await expect(replica.sync(await log.syncBundle(8))).rejects.toMatchObject({ code: 'LEDGER_ENTRY_INVALID', details: { index: 9 } });
    expect(rep.size).toBe(8);
    expect((await rep.latestCheckpoint())!.size).toBe(8);
  });

  it('an aggregator-only entry (round, membership, exclusion) signed by a member is rejected by verify and by a replica', async () => {
    for (const payload of [
      { type: 'round', action: 'open', round: 5, config: {} },
      { type: 'membership', action: 'admit', peerId: '' },
      { type: 'exclusion', round: 0, action: 'exclude', reason: 'x', evidence: [] },
    ] as EntryPayloadInput[]) {
      const { agg, nodes, log, dir } = await world();
      const p: EntryPayloadInput = payload.type === 'membership' ? { ...payload, peerId: nodes[1].peerId } : payload;
      await log.append(createEntrySync(p, nodes[1].entry));
      await log.signCheckpoint(agg.note);
      const { l: rep } = await open('rep');
      const replica = await createReplica({ ledger: rep, origin: ORIGIN, aggregatorKey: formatVerifierKey(agg.note), witness: nodes[0].note });
      await expect(replica.sync(await log.syncBundle(0))).rejects.toMatchObject({ code: 'LEDGER_ENTRY_INVALID', details: { index: 8 } });
      await log.close();
      expect(await verifyLedgerDir(dir)).toMatchObject({ ok: false, index: 8, code: 'LEDGER_ENTRY_INVALID' });
    }
  });
});

describe('C2SP tlog-cosignature/v1 witness lines', () => {
  it('a member\'s line is keyID(SHA-256(name‖\\n‖0x04‖key)[:4]) ‖ u64 time ‖ Ed25519 over "cosignature/v1\\ntime T\\n" ‖ body', async () => {
    const { nodes, log } = await world();
    const k = await keyFromSeed(2);
    const note = cosignNote((await log.latestCheckpoint())!.note, createCosignatureSigner(nodes[0].peerId, k, () => 1_679_315_147_000));
    const { text, signatures } = parseNote(note);
    const line = signatures.find((s) => s.name === nodes[0].peerId)!;
    const pub = publicKeyRawOfPeerId(nodes[0].peerId);
    const keyId = createHash('sha256').update(Buffer.concat([Buffer.from(`${nodes[0].peerId}\n`), Buffer.from([0x04]), pub])).digest().readUInt32BE(0);
    expect(line.keyId).toBe(keyId);
    expect(line.signature.byteLength).toBe(72);
    expect(Buffer.from(line.signature.subarray(0, 8)).readBigUInt64BE(0)).toBe(1_679_315_147n);
    const key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub).toString('base64url') } });
    expect(edVerify(null, Buffer.from(`cosignature/v1\ntime 1679315147\n${text}`), key, line.signature.subarray(8))).toBe(true);
    expect(verifyNote(note, [cosignatureVerifierFromPeerId(nodes[0].peerId)]).verifiedBy).toEqual([nodes[0].peerId]);
  });

  it('attack: ledger verify rejects a cosignature line not signed by the member it names', async () => {
    const { agg, nodes, log, dir } = await world();
    const note = (await log.latestCheckpoint())!.note;
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    // a genuine one verifies
    await log.addCosignatures(cosignNote(note, createCosignatureSigner(nodes[0].peerId, await keyFromSeed(2))), [aggV]);
    // mallory's key under nodes[1]'s name (the aggregator inventing a witness)
    await log.addCosignatures(cosignNote(note, createCosignatureSigner(nodes[1].peerId, await keyFromSeed(66))), [aggV]);
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_INVALID', checkpointSize: 8 });
    expect(r.ok === false && r.message).toContain(nodes[1].peerId);
  });

  it('ledger verify accepts genuine cosignature/v1 lines and lists their signers', async () => {
    const { agg, nodes, log, dir } = await world();
    const note = (await log.latestCheckpoint())!.note;
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    for (const [i, n] of nodes.entries()) await log.addCosignatures(cosignNote(note, createCosignatureSigner(n.peerId, await keyFromSeed(i + 2))), [aggV]);
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: true });
    expect(r.summary.latestCheckpoint!.signatures).toEqual([ORIGIN, ...nodes.map((n) => n.peerId)]);
  });
});

describe('verify: privacy totals, aggregates, trusted checkpoints', () => {
  const contrib = (n: Awaited<ReturnType<typeof party>>, round: number, epsilon: number, epsilonTotal: number, extra: Record<string, unknown> = {}) =>
    createEntrySync({
      type: 'contribution', round, node: n.peerId, ciphertextHash: hex(`c${round}`), ciphertextSize: 1, epsilon, delta: 1e-6,
      epsilonTotal, deltaTotal: 1e-6 * (round + 1), keyId: 'he-key-1', ...extra,
    } as EntryPayloadInput, n.entry);

  it('attack: a member\'s epsilonTotal going down is LEDGER_ENTRY_INVALID at that entry', async () => {
    const { agg, nodes, log, dir } = await world(); // round 0: ε total 0.5
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, agg.entry));
    await log.append(contrib(nodes[0], 1, 0.5, 0.3));
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 9, code: 'LEDGER_ENTRY_INVALID' });
    expect(r.ok === false && r.message).toMatch(/epsilonTotal 0.3 is below the 0.5/);
  });

  it('attack: a member whose epsilonTotal under-reports the composition of the mechanisms it recorded is rejected; honest totals over several rounds are accepted', async () => {
    const { RdpAccountant } = await import('@fedtwin/dp');
    const mechanism = { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100, delta: 1e-5 };
    const m = { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100 };
    const after = (k: number) => new RdpAccountant({ mechanisms: [{ ...m, steps: 100 * k }] }).getEpsilon(1e-5).epsilon;
    // node 1 has no earlier total in the world; its three rounds are accounted by composition, not by sums
    for (const [third, ok] of [[after(3), true], [after(2), false]] as const) {
      const { agg, nodes, log, dir } = await world();
      for (const round of [1, 2, 3]) {
        await log.append(createEntrySync({ type: 'round', action: 'open', round, config: {} }, agg.entry));
        const total = round === 3 ? third : after(round);
        await log.append(contrib(nodes[1], round, total - (round === 1 ? 0 : after(round - 1)), total, { mechanism }));
      }
      await log.close();
      const r = await verifyLedgerDir(dir);
      if (ok) expect(r).toMatchObject({ ok: true, summary: { mechanismsChecked: 3 } });
      else {
        // round 3 claims the total of two rounds: the three recorded mechanisms spend more
        expect(r).toMatchObject({ ok: false, index: 13, code: 'LEDGER_ENTRY_INVALID' });
        expect(r.ok === false && r.message).toMatch(/under-reports the mechanisms its contributions recorded/);
      }
    }
    // the round's own ε (an increase) is well below the standalone ε of one round: that is honest, not an under-report
    expect(after(3) - after(2)).toBeLessThan(after(1));
  });

  it('Skellam records: verify recomputes ε from μ, l1, l2 (not from z), so a total that a Gaussian of the same z would cover but the Skellam steps do not is rejected; old Gaussian records verify unchanged beside them', async () => {
    const { RdpAccountant, skellamMechanism } = await import('@fedtwin/dp');
    const sk = skellamMechanism({ mu: 18.3125, l1: 1, l2: 1, steps: 30 });
    const mechanism = { kind: 'skellam', sampleRate: 1, noiseMultiplier: sk.noiseMultiplier, steps: 30, delta: 1e-5, mu: 18.3125, l1: 1, l2: 1 };
    const gaussMech = { sampleRate: 1, noiseMultiplier: 9, steps: 5, delta: 1e-5 };
    const total = (k: number) => new RdpAccountant({ mechanisms: [{ ...sk, steps: 30 * k }, { sampleRate: 1, noiseMultiplier: 9, steps: 5 }] }).getEpsilon(1e-5).epsilon;
    const asGaussian = (k: number) => new RdpAccountant({ mechanisms: [{ sampleRate: 1, noiseMultiplier: sk.noiseMultiplier, steps: 30 * k }, { sampleRate: 1, noiseMultiplier: 9, steps: 5 }] }).getEpsilon(1e-5).epsilon;
    expect(asGaussian(2)).toBeLessThan(total(2) * (1 - 1e-6));
    for (const [claim, ok] of [[total(2), true], [asGaussian(2), false]] as const) {
      const { agg, nodes, log, dir } = await world();
      await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, agg.entry));
      await log.append(contrib(nodes[1], 1, 1, new RdpAccountant({ mechanisms: [{ sampleRate: 1, noiseMultiplier: 9, steps: 5 }] }).getEpsilon(1e-5).epsilon, { mechanism: gaussMech }));
      await log.append(createEntrySync({ type: 'round', action: 'open', round: 2, config: {} }, agg.entry));
      await log.append(contrib(nodes[1], 2, 1, total(1), { mechanism }));
      await log.append(createEntrySync({ type: 'round', action: 'open', round: 3, config: {} }, agg.entry));
      await log.append(contrib(nodes[1], 3, 1, claim, { mechanism }));
      await log.close();
      const r = await verifyLedgerDir(dir);
      if (ok) expect(r).toMatchObject({ ok: true, summary: { mechanismsChecked: 3 } });
      else {
        expect(r).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID' });
        expect(r.ok === false && r.message).toMatch(/under-reports .*Skellam μ 18.3125, l1 1, l2 1/);
      }
    }
    // a Skellam record must name μ, l1 and l2, and a Gaussian one none of them
    const { nodes } = await world();
    expect(() => contrib(nodes[1], 1, 1, 1, { mechanism: { ...mechanism, mu: undefined } })).toThrow();
    expect(() => contrib(nodes[1], 1, 1, 1, { mechanism: { ...gaussMech, mu: 3 } })).toThrow();
    // a z that is not √(2μ)/l2 cannot be accounted
    const { agg: a2, nodes: n2, log: l2, dir: d2 } = await world();
    await l2.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, a2.entry));
    await l2.append(contrib(n2[1], 1, 100, 100, { mechanism: { ...mechanism, noiseMultiplier: 20 } }));
    await l2.close();
    const bad = await verifyLedgerDir(d2);
    expect(bad).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID' });
    expect(bad.ok === false && bad.message).toMatch(/cannot be accounted: .*√\(2μ\)\/l2/);
  });

  it('attack: a member naming a DP count (countEstimate) whose totals leave out that release is rejected; with it, charged once, they are accepted', async () => {
    const { RdpAccountant } = await import('@fedtwin/dp');
    const mechanism = { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100, delta: 1e-5 };
    const m = { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100 };
    const count = { sampleRate: 1, noiseMultiplier: 20, steps: 1 };
    const after = (k: number, charged: boolean) => new RdpAccountant({ mechanisms: [...(charged ? [count] : []), { ...m, steps: 100 * k }] }).getEpsilon(1e-5).epsilon;
    for (const charged of [true, false]) {
      const { agg, nodes, log, dir } = await world();
      for (const round of [1, 2]) {
        await log.append(createEntrySync({ type: 'round', action: 'open', round, config: {} }, agg.entry));
        const total = after(round, charged);
        // every entry repeats Ñ; the release is composed once (a second charge would make the honest totals fail)
        await log.append(contrib(nodes[1], round, total - (round === 1 ? 0 : after(round - 1, charged)), total, { mechanism, countEstimate: 413, countNoise: 20 }));
      }
      await log.close();
      const r = await verifyLedgerDir(dir);
      if (charged) expect(r).toMatchObject({ ok: true, summary: { mechanismsChecked: 2 } });
      else {
        expect(r).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID' });
        expect(r.ok === false && r.message).toMatch(/under-reports the mechanisms its contributions recorded/);
      }
    }
  });

  it('attack: a round opening on a global version no aggregate entry produced is flagged (an aggregation left out of the log)', async () => {
    const { agg, log, dir } = await world();
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {}, globalVersion: hex('genesis') }, agg.entry));
    // round 1 failed: round 2 on the same base is fine
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 2, config: {}, globalVersion: hex('genesis') }, agg.entry));
    await log.append(createEntrySync({ type: 'aggregate', round: 2, contributions: [], aggregateHash: hex('a2'), modelVersion: hex('m2') }, agg.entry));
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 3, config: {}, globalVersion: hex('m2') }, agg.entry));
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 4, config: {}, globalVersion: hex('m3-unlogged') }, agg.entry));
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 12, code: 'LEDGER_ENTRY_INVALID' });
    expect(r.ok === false && r.message).toMatch(/round 4 opens on global version .* which no aggregate entry produced \(round 3 was aggregated/);
  });

  it('a round back on the initial model after the first aggregate was withdrawn (with the next round already open on it) is fine', async () => {
    const { agg, log, dir } = await world();
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {}, globalVersion: hex('genesis') }, agg.entry));
    await log.append(createEntrySync({ type: 'aggregate', round: 1, contributions: [], aggregateHash: hex('a1'), modelVersion: hex('m1') }, agg.entry));
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 2, config: {}, globalVersion: hex('m1') }, agg.entry));
    await log.append(createEntrySync({ type: 'exclusion', v: 1, round: 1, action: 'withdraw', aggregateHash: hex('a1'), reason: 'unusable', evidence: [] }, agg.entry));
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 3, config: {}, globalVersion: hex('genesis') }, agg.entry));
    await log.close();
    expect(await verifyLedgerDir(dir)).toMatchObject({ ok: true });
  });

  it('contributions no aggregate references are a warning in the summary, not a failure', async () => {
    const { agg, nodes, log, dir } = await world();
    await log.append(createEntrySync({ type: 'round', action: 'open', round: 1, config: {} }, agg.entry));
    await log.append(contrib(nodes[0], 1, 0.5, 1));
    await log.close();
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: true, summary: { unaggregatedCount: 1, unaggregatedContributions: [{ index: 9, round: 1, node: nodes[0].peerId }] } });
  });

  it('attack: a trusted checkpoint from outside detects truncation and rollback offline; a consistent one passes', async () => {
    const { agg, nodes, log, dir } = await world(); // checkpoint at 8
    await fillLedgerMore(log, agg, nodes);
    const trusted = (await log.latestCheckpoint())!.note; // size 13
    const older = (await log.checkpointAt(8))!;
    await log.close();
    expect(await verifyLedgerDir(dir, { trustedCheckpoints: [older, trusted] })).toMatchObject({ ok: true, summary: { trustedCheckpoints: [{ size: 8 }, { size: 13 }] } });
    // the aggregator restored an older copy of its directory (rollback to size 8)
    const { l: rolled, dir: rolledDir } = await open('rolled', ORIGIN); // entry bytes are checked for the log origin
    await rolled.appendMany((await openCopy(dir)).entries.slice(0, 8));
    await rolled.signCheckpoint(agg.note);
    await rolled.close();
    expect(await verifyLedgerDir(rolledDir)).toMatchObject({ ok: true });
    const r = await verifyLedgerDir(rolledDir, { trustedCheckpoints: [trusted] });
    expect(r).toMatchObject({ ok: false, code: 'LEDGER_INCONSISTENT', checkpointSize: 13 });
    expect(r.ok === false && r.message).toMatch(/truncated or rolled back/);
    // a same-size rewrite: 13 entries, another history
    const { l: forked, dir: forkedDir } = await open('forked', ORIGIN);
    const es = (await openCopy(dir)).entries.slice(0, 12);
    await forked.appendMany([...es, createEntrySync({ type: 'key', event: 'revocation', keyId: 'x' }, agg.entry)]);
    await forked.signCheckpoint(agg.note);
    await forked.close();
    expect(await verifyLedgerDir(forkedDir, { trustedCheckpoints: [trusted] })).toMatchObject({ ok: false, code: 'LEDGER_INCONSISTENT' });
  });
});

async function fillLedgerMore(log: Ledger, agg: Awaited<ReturnType<typeof party>>, nodes: Awaited<ReturnType<typeof party>>[]): Promise<void> {
  const { roundEntries } = await import('./helpers.ts');
  await log.appendMany(await roundEntries(agg, nodes, 1, log.size, false));
  await log.signCheckpoint(agg.note);
}

const copies = new Map<string, { entries: Uint8Array[] }>();
/** The entry bytes of a closed ledger directory (read-only open). */
async function openCopy(dir: string): Promise<{ entries: Uint8Array[] }> {
  const hit = copies.get(dir);
  if (hit) return hit;
  const l = await openLedger({ dir, readOnly: true });
  const entries = await l.entriesSince(0, { to: l.size, limit: l.size });
  await l.close();
  const v = { entries };
  copies.set(dir, v);
  return v;
}

describe('entry signatures bind the log origin (v2)', () => {
  it('attack: an entry a member signed for consortium A does not verify in consortium B\'s log (decode, append, replica, verify)', async () => {
    const { decodeEntry, ENTRY_SIGN_CONTEXT_V2 } = await import('../src/index.ts');
    const A = 'fedtwin/consortium-a';
    const B = 'fedtwin/consortium-b';
    const memberKey = await keyFromSeed(2);
    const member = (await import('../src/index.ts')).createEntrySigner(memberKey, A);
    const e = createEntrySync({ type: 'refusal', round: 0, node: member.peerId, reason: 'budget' }, member);
    expect(ENTRY_SIGN_CONTEXT_V2).toBe('fedtwin-ledger-entry/v2\n');
    expect(decodeEntry(e.bytes, A).author).toBe(member.peerId);
    expect(() => decodeEntry(e.bytes, B)).toThrow(expect.objectContaining({ code: 'LEDGER_SIGNATURE_INVALID' }));
    // B's aggregator replays it: its own ledger (bound to B) refuses it
    const aggKey = await keyFromSeed(1);
    const aggB = (await import('../src/index.ts')).createEntrySigner(aggKey, B);
    const noteB = (await import('../src/index.ts')).createNoteSigner(B, aggKey);
    const { l: bound } = await open('bound');
    (bound as { entryOrigin?: string }).entryOrigin = B;
    await expect(bound.append(e)).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });
    // a ledger opened without an origin takes B from its first entry and refuses it too
    const { l: log, dir } = await open('replayed');
    await log.append(createEntrySync({ type: 'membership', action: 'admit', peerId: member.peerId }, aggB));
    expect(await log.origin()).toBe(B);
    await expect(log.append(e)).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', message: expect.stringMatching(/fedtwin\/consortium-b/) });
    // ... and where a misbehaving aggregator slips it in anyway (its ledger code told to check for A while it
    // writes that one entry), a member's replica of B and `ledger verify` refuse it
    (log as { entryOrigin?: string }).entryOrigin = A;
    await log.append(e);
    (log as { entryOrigin?: string }).entryOrigin = undefined;
    await log.signCheckpoint(noteB);
    expect(log.size).toBe(2);
    const { l: rep } = await open('rep');
    const replica = await createReplica({ ledger: rep, origin: B, aggregatorKey: formatVerifierKey(noteB), witness: createCosignatureSigner(member.peerId, memberKey) });
    await expect(replica.sync(await log.syncBundle(0))).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', details: { index: 1 } });
    await log.close();
    expect(await verifyLedgerDir(dir)).toMatchObject({ ok: false, index: 1, code: 'LEDGER_SIGNATURE_INVALID' });
  });

  it('attack: an old-format v1 entry (signed bound to no log) is refused by decode, append, a replica and verify, naming v1', async () => {
    const { agg, nodes, log } = await world();
    // A v1 entry: the member's signature over "fedtwin-ledger-entry/v1\n" || canonical JSON {author, payload}.
    const v2 = createEntrySync({ type: 'refusal', round: 1, node: nodes[0].peerId, reason: 'budget' }, nodes[0].entry);
    const v1Sig = nodes[0].entry.signSync(v2.signedMessage);
    const v1 = new TextEncoder().encode(canonicalJson({ author: v2.author, payload: v2.payload, sig: Buffer.from(v1Sig).toString('base64') }));
    expect(isV1Signed(parseEntry(v1))).toBe(true);
    const namesV1 = { code: 'LEDGER_SIGNATURE_INVALID', message: expect.stringMatching(/v1 signature.*no longer accepted/), details: expect.objectContaining({ format: 'v1' }) };
    // decode (what the aggregator does with a member's entry)
    expect(() => decodeEntry(v1, ORIGIN)).toThrow(expect.objectContaining(namesV1));
    await expect(decodeEntryAsync(v1, ORIGIN)).rejects.toMatchObject(namesV1);
    // append to a ledger bound to ORIGIN
    await expect(log.append(v1)).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', message: expect.stringMatching(/v1 signature/) });
    // a ledger that knows no origin yet cannot check entry bytes at all
    const { l: bare } = await open('bare');
    await expect(bare.append(v1)).rejects.toMatchObject({ code: 'LEDGER_BAD_ARGUMENT', message: expect.stringMatching(/no log origin/) });
    // a replica syncing a bundle that carries it
    const bundle = await log.syncBundle(0);
    const { l: rep } = await open('rep-v1');
    const memberKey = await keyFromSeed(2);
    const replica = await createReplica({ ledger: rep, origin: ORIGIN, aggregatorKey: formatVerifierKey(agg.note), witness: createCosignatureSigner(nodes[0].peerId, memberKey) });
    const at = 3;
    const entries = bundle.entries.slice();
    entries[at] = v1;
    await expect(replica.sync({ ...bundle, entries })).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', message: expect.stringMatching(/v1 signature/) });
    // verify's per-chunk check (the worker code `ledger verify` runs) names it too
    const data = new Uint8Array(v1.byteLength);
    data.set(v1);
    const r = auditChunk({ id: 0, data, offsets: Uint32Array.from([0, v1.byteLength]), origin: ORIGIN });
    expect(r.bad).toMatchObject({ at: 0, kind: 'signature', message: expect.stringMatching(/v1 signature.*no longer accepted/) });
  });
});
