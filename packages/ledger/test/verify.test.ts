// Tamper detection by the offline verifier: each edit an attacker with write access to the directory
// could make is caught, at the right index, with a message that says what is wrong.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import {
  openLedger,
  verifyLedgerDir,
  createEntrySync,
  pushLeaf,
  signCheckpoint,
  rootOfRange,
  hashLeaf,
  toHex,
  type HashedNode,
} from '../src/index.ts';
import { nodeKey } from '../src/ledger.ts';
import { u64be } from '../src/bytes.ts';
import { auditChunk } from '../src/audit-chunk.ts';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';

const peerIdOfRawKey = (raw: Uint8Array): string => peerIdFromPublicKey(publicKeyFromRaw(raw)).toString();
import { fillLedger, party, tempDir, ORIGIN, type Party } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let agg: Party;
let nodes: Party[];
let golden: string; // a 3-round ledger: checkpoints at 8, 13, 18
let goldenCleanup: () => void;

beforeAll(async () => {
  agg = await party(1, ORIGIN);
  nodes = [await party(2), await party(3), await party(4)];
  const t = tempDir('golden');
  golden = t.dir;
  goldenCleanup = t.cleanup;
  const l = await openLedger({ dir: golden });
  await fillLedger(l, agg, nodes, 3);
  await l.close();
  return () => goldenCleanup();
});

function copy(tag: string): string {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  const dir = join(t.dir, 'ledger');
  cpSync(golden, dir, { recursive: true });
  return dir;
}

type Bytes = Uint8Array;
type DB = Level<Bytes, Bytes>;
const subOf = (db: DB, name: string) => db.sublevel<Bytes, Bytes>(name, { keyEncoding: 'view', valueEncoding: 'view' });
type Sub = ReturnType<typeof subOf>;
async function withLevel(dir: string, fn: (s: { db: DB; e: Sub; n: Sub; c: Sub }) => Promise<unknown>): Promise<void> {
  const db: DB = new Level<Bytes, Bytes>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    await fn({ db, e: subOf(db, 'e'), n: subOf(db, 'n'), c: subOf(db, 'c') });
  } finally {
    await db.close();
  }
}

/** Rewrites entries and rebuilds every tree node consistently: what a careful attacker would do. */
async function rewrite(dir: string, edit: (entries: Bytes[]) => Bytes[]): Promise<void> {
  await withLevel(dir, async ({ e, n }) => {
    const old = await e.values().all();
    const next = edit(old.map((b) => Uint8Array.from(b)));
    await e.clear();
    await n.clear();
    const range: HashedNode[] = [];
    for (const [i, b] of next.entries()) {
      await e.put(u64be(i), b);
      for (const node of pushLeaf(range, i, hashLeaf(b))) await n.put(nodeKey(node), node.hash);
    }
  });
}

const text = (b: Bytes): string => new TextDecoder().decode(b);
const bytes = (s: string): Bytes => new TextEncoder().encode(s);

describe('verifyLedgerDir', () => {
  it('summarizes a sound ledger (on a copy, while the original is open)', async () => {
    const live = await openLedger({ dir: golden });
    cleanups.push(() => live.close());
    const dir = copy('ok');
    const r = await verifyLedgerDir(dir);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const s = r.summary;
    expect(s.entries).toBe(18);
    expect(s.rounds).toBe(3);
    expect(s.rootHash).toBe(toHex(live.rootHash));
    expect(s.contributionsPerNode).toEqual({ [nodes[0].peerId]: 3, [nodes[1].peerId]: 3 });
    expect(s.epsilonPerNode).toEqual({ [nodes[0].peerId]: 1.5, [nodes[1].peerId]: 1.5 });
    expect(s.refusalsPerNode).toEqual({ [nodes[2].peerId]: 3 });
    expect(s.members).toEqual(nodes.map((n) => n.peerId).sort());
    expect(s.checkpoints).toBe(3);
    expect(s.latestCheckpoint).toMatchObject({ size: 18, rootHash: s.rootHash, origin: ORIGIN });
    expect(s.uncheckpointedEntries).toBe(0);
    expect(s.signatureImpl).toBe('libsodium'); // sodium-native is installed with the project
  });

  it('one flipped byte in a stored entry: leaf hash mismatch at that index', async () => {
    const dir = copy('flip');
    await withLevel(dir, async ({ e }) => {
      const b = Uint8Array.from((await e.get(u64be(10)))!);
      const pos = text(b).indexOf('"ciphertextHash":"') + 20;
      b[pos] = b[pos] === 0x61 ? 0x62 : 0x61; // another hex digit: still valid JSON and schema
      await e.put(u64be(10), b);
    });
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 10, code: 'LEDGER_LEAF_HASH_MISMATCH' });
    if (!r.ok) expect(r.message).toMatch(/entry 10: leaf hash .* does not match the stored leaf hash/);
  });

  it('a flipped byte that breaks the encoding: invalid entry at that index', async () => {
    const dir = copy('flip2');
    await withLevel(dir, async ({ e }) => {
      const b = Uint8Array.from((await e.get(u64be(4)))!);
      b[0] = 0x5b; // '[' instead of '{'
      await e.put(u64be(4), b);
    });
    expect(await verifyLedgerDir(dir)).toMatchObject({ ok: false, index: 4, code: 'LEDGER_ENTRY_INVALID' });
  });

  it('an edited entry with the tree rebuilt around it: signature invalid at that index', async () => {
    const dir = copy('edit');
    await rewrite(dir, (es) => {
      es[9] = bytes(text(es[9]).replace('"epsilonTotal":1', '"epsilonTotal":0.1'));
      return es;
    });
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 9, code: 'LEDGER_SIGNATURE_INVALID' });
    if (!r.ok) expect(r.message).toMatch(/entry 9: signature does not verify/);
  });

  it('a dropped entry: missing at that index (middle and end)', async () => {
    const dir = copy('drop');
    await withLevel(dir, async ({ e }) => e.del(u64be(5)));
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 5, code: 'LEDGER_ENTRY_MISSING' });
    if (!r.ok) expect(r.message).toBe('entry 5 is missing (the next stored entry is 6)');
    const dir2 = copy('droplast');
    await withLevel(dir2, async ({ e }) => e.del(u64be(17)));
    expect(await verifyLedgerDir(dir2)).toMatchObject({ ok: false, index: 17, code: 'LEDGER_ENTRY_MISSING' });
  });

  it('a dropped entry with the log compacted and the tree rebuilt: checkpoint mismatch', async () => {
    const dir = copy('dropc');
    await rewrite(dir, (es) => es.filter((_, i) => i !== 5));
    const r = await verifyLedgerDir(dir);
    // aggregate of round 0 now points at a non-contribution, or the signed root no longer matches
    expect(r.ok).toBe(false);
    if (!r.ok) expect(['LEDGER_ENTRY_INVALID', 'LEDGER_CHECKPOINT_MISMATCH']).toContain(r.code);
  });

  it('two entries swapped: leaf hash mismatch at the first; with the tree rebuilt: signed root mismatch', async () => {
    const dir = copy('swap');
    await withLevel(dir, async ({ e }) => {
      const [a, b] = [await e.get(u64be(1)), await e.get(u64be(2))];
      await e.put(u64be(1), b!);
      await e.put(u64be(2), a!);
    });
    expect(await verifyLedgerDir(dir)).toMatchObject({ ok: false, index: 1, code: 'LEDGER_LEAF_HASH_MISMATCH' });
    const dir2 = copy('swap2');
    await rewrite(dir2, (es) => {
      [es[1], es[2]] = [es[2], es[1]];
      return es;
    });
    const r = await verifyLedgerDir(dir2);
    expect(r).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_MISMATCH', checkpointSize: 8, index: 7 });
    if (!r.ok) expect(r.message).toMatch(/checkpoint at size 8: signed root .* does not match the root .* recomputed/);
  });

  it('a forged signature (valid shape, wrong key): signature invalid at that index', async () => {
    const dir = copy('forge');
    const mallory = await party(66);
    await rewrite(dir, (es) => {
      const p = JSON.parse(text(es[12])).payload;
      const forged = createEntrySync({ ...p }, mallory.entry);
      const sig = JSON.parse(text(forged.bytes)).sig as string;
      es[12] = bytes(text(es[12]).replace(/"sig":"[^"]+"/, `"sig":"${sig}"`));
      return es;
    });
    expect(await verifyLedgerDir(dir)).toMatchObject({ ok: false, index: 12, code: 'LEDGER_SIGNATURE_INVALID' });
  });

  it('worker-thread signature checks report the first bad index across chunks', async () => {
    const t = tempDir('workers');
    cleanups.push(t.cleanup);
    const l = await openLedger({ dir: t.dir });
    const es = Array.from({ length: 600 }, (_, k) => createEntrySync({ type: 'refusal', round: k, node: nodes[k % 3].peerId, reason: `r${k}` }, nodes[k % 3].entry));
    await l.appendMany(es);
    await l.signCheckpoint(agg.note);
    await l.close();
    expect(await verifyLedgerDir(t.dir, { chunk: 128, threads: 2 })).toMatchObject({ ok: true, summary: { entries: 600 } });
    const mallory = await party(66);
    await rewrite(t.dir, (bs) => {
      for (const i of [433, 517]) {
        const forged = createEntrySync({ type: 'refusal', round: i, node: nodes[i % 3].peerId, reason: `r${i}` }, mallory.entry);
        bs[i] = bytes(text(bs[i]).replace(/"sig":"[^"]+"/, `"sig":"${JSON.parse(text(forged.bytes)).sig}"`));
      }
      return bs;
    });
    expect(await verifyLedgerDir(t.dir, { chunk: 128, threads: 2 })).toMatchObject({ ok: false, index: 433, code: 'LEDGER_SIGNATURE_INVALID' });
  });

  it('an entry that fails to parse in a later chunk is reported after earlier chunks are clean, and a gap before it wins', async () => {
    const t = tempDir('parse-chunks');
    cleanups.push(t.cleanup);
    const l = await openLedger({ dir: t.dir });
    await l.appendMany(Array.from({ length: 300 }, (_, k) => createEntrySync({ type: 'refusal', round: k, node: nodes[k % 3].peerId, reason: `r${k}` }, nodes[k % 3].entry)));
    await l.close();
    await rewrite(t.dir, (bs) => {
      bs[250] = bytes(text(bs[250]).replace('"r250"', '"r250" '));
      return bs;
    });
    expect(await verifyLedgerDir(t.dir, { chunk: 64, threads: 2 })).toMatchObject({ ok: false, index: 250, code: 'LEDGER_ENTRY_INVALID' });
    await withLevel(t.dir, async ({ e }) => e.del(u64be(100)));
    expect(await verifyLedgerDir(t.dir, { chunk: 64, threads: 2 })).toMatchObject({ ok: false, index: 100, code: 'LEDGER_ENTRY_MISSING' });
  });

  it('libsodium and node:crypto give the same verdict on every entry (node:crypto decides libsodium rejections)', async () => {
    const mallory = await party(67);
    const good = Array.from({ length: 6 }, (_, k) => createEntrySync({ type: 'key', event: 'rotation', keyId: `k${k}` }, nodes[k % 3].entry));
    const forged = createEntrySync({ type: 'key', event: 'rotation', keyId: 'k3' }, mallory.entry);
    const cases: Uint8Array[][] = [
      good.map((e) => e.bytes),
      // another key's signature on entry 3
      good.map((e, i) => (i === 3 ? bytes(text(e.bytes).replace(/"sig":"[^"]+"/, `"sig":"${JSON.parse(text(forged.bytes)).sig}"`)) : e.bytes)),
      // a payload edit under the original signature
      good.map((e, i) => (i === 4 ? bytes(text(e.bytes).replace('"k4"', '"k5"')) : e.bytes)),
      // an author whose key is the identity point (small order): refused by both
      good.map((e, i) => (i === 1 ? bytes(text(e.bytes).replace(nodes[1].peerId, peerIdOfRawKey(Uint8Array.from({ length: 32 }, (_, j) => (j === 0 ? 1 : 0))))) : e.bytes)),
    ];
    const verdicts = (impl: 'libsodium' | 'node:crypto') =>
      cases.map((bs) => {
        const offsets = new Uint32Array(bs.length + 1);
        bs.forEach((b, i) => (offsets[i + 1] = offsets[i] + b.byteLength));
        const data = new Uint8Array(offsets[bs.length]);
        bs.forEach((b, i) => data.set(b, offsets[i]));
        const r = auditChunk({ id: 0, data, offsets, origin: ORIGIN }, impl);
        return r.bad && { at: r.bad.at, kind: r.bad.kind };
      });
    const expected = [null, { at: 3, kind: 'signature' }, { at: 4, kind: 'signature' }, { at: 1, kind: 'signature' }];
    expect(verdicts('node:crypto')).toEqual(expected);
    expect(verdicts('libsodium')).toEqual(expected);
  });

  it('an edited internal tree node is found', async () => {
    const dir = copy('node');
    await withLevel(dir, async ({ n }) => n.put(nodeKey({ level: 2, index: 1 }), new Uint8Array(32)));
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, index: 7, code: 'LEDGER_NODE_MISMATCH' });
  });

  it('a checkpoint re-signed by another key, or with an edited body, is rejected', async () => {
    const dir = copy('cpkey');
    const mallory = await party(66, ORIGIN);
    await withLevel(dir, async ({ c }) => {
      await c.put(u64be(13), bytes(signCheckpoint({ origin: ORIGIN, size: 13, rootHash: new Uint8Array(32) }, mallory.note)));
    });
    const r = await verifyLedgerDir(dir);
    expect(r).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_INVALID', checkpointSize: 13 });
    const dir2 = copy('cpbody');
    await withLevel(dir2, async ({ c }) => {
      const note = text((await c.get(u64be(13)))!);
      await c.put(u64be(13), bytes(note.replace('\n13\n', '\n12\n')));
    });
    expect(await verifyLedgerDir(dir2)).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_INVALID', checkpointSize: 13 });
  });

  it('a locked directory gives LEDGER_LOCKED with a hint', async () => {
    const live = await openLedger({ dir: golden });
    cleanups.push(() => live.close());
    await expect(verifyLedgerDir(golden)).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_LOCKED' }));
  });

  it('checkpoints with a pinned trusted key from outside the directory', async () => {
    const dir = copy('trusted');
    const { formatVerifierKey } = await import('../src/index.ts');
    expect((await verifyLedgerDir(dir, { trustedKeys: [formatVerifierKey(agg.note)] })).ok).toBe(true);
    const other = await party(67, ORIGIN);
    expect(await verifyLedgerDir(dir, { trustedKeys: [formatVerifierKey(other.note)] })).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_INVALID' });
  });

  it('root of a ledger with no checkpoint still verifies (reported as uncheckpointed)', async () => {
    const t = tempDir('nocp');
    cleanups.push(t.cleanup);
    const l = await openLedger({ dir: t.dir });
    await l.append(createEntrySync({ type: 'key', event: 'ceremony', keyId: 'k' }, agg.entry));
    const root = toHex(l.rootHash);
    await l.close();
    const r = await verifyLedgerDir(t.dir);
    expect(r).toMatchObject({ ok: true, summary: { entries: 1, rootHash: root, checkpoints: 0, uncheckpointedEntries: 1 } });
    expect(toHex(rootOfRange([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
