import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import {
  openLedger,
  createEntrySigner,
  createEntrySync,
  consistencyProof,
  inclusionProof,
  rootFromLeafHashes,
  verifyInclusion,
  verifyConsistency,
  parseCheckpoint,
  parseVerifierKey,
  formatVerifierKey,
  noteVerifierFromPeerId,
  cosignNote,
  toHex,
  type Ledger,
  type LedgerEntry,
} from '../src/index.ts';
import { fillLedger, keyFromSeed, party, tempDir, ORIGIN, type Party } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function fresh(tag: string, origin?: string): Promise<{ ledger: Ledger; dir: string }> {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  const ledger = await openLedger({ dir: t.dir, ...(origin === undefined ? {} : { origin }) });
  cleanups.push(() => ledger.close());
  return { ledger, dir: t.dir };
}

function entries(p: Party, n: number, from = 0): LedgerEntry[] {
  return Array.from({ length: n }, (_, k) => createEntrySync({ type: 'key', event: 'ceremony', keyId: `k-${from + k}` }, p.entry));
}

describe('Level store', () => {
  it('appends, reopens, and serves proofs equal to the in-memory math', async () => {
    const a = await party(1, 'fedtwin.test/log');
    const { ledger, dir } = await fresh('store');
    const es = entries(a, 37);
    const r0 = await ledger.append(es[0]);
    expect(r0.index).toBe(0);
    const r1 = await ledger.appendMany(es.slice(1, 20));
    expect(r1).toMatchObject({ start: 1, count: 19 });
    // concurrent appends are serialized by the writer queue, in call order
    const parallel = await Promise.all(es.slice(20).map((e) => ledger.append(e.bytes)));
    expect(parallel.map((r) => r.index)).toEqual(Array.from({ length: 17 }, (_, k) => 20 + k));
    const lh = es.map((e) => e.leafHash);
    expect(toHex(ledger.rootHash)).toBe(toHex(rootFromLeafHashes(lh)));
    await ledger.close();

    const again = await openLedger({ dir });
    cleanups.push(() => again.close());
    expect(again.size).toBe(37);
    expect(toHex(again.rootHash)).toBe(toHex(rootFromLeafHashes(lh)));
    for (let size = 1; size <= 37; size++) {
      expect(toHex(await again.root(size))).toBe(toHex(rootFromLeafHashes(lh, size)));
      for (let i = 0; i < size; i += 3) {
        const p = await again.inclusionProof(i, size);
        expect(p.map(toHex)).toEqual(inclusionProof(lh, i, size).map(toHex));
        verifyInclusion(i, size, lh[i], p, rootFromLeafHashes(lh, size));
      }
      for (let m = 1; m <= size; m += 4) {
        const p = await again.consistencyProof(m, size);
        expect(p.map(toHex)).toEqual(consistencyProof(lh, m, size).map(toHex));
        verifyConsistency(m, size, p, rootFromLeafHashes(lh, m), rootFromLeafHashes(lh, size));
      }
    }
    expect((await again.getEntry(5)).payload).toEqual(es[5].payload);
    expect((await again.entriesSince(30)).map(toHex)).toEqual(es.slice(30).map((e) => toHex(e.bytes)));
    await expect(again.inclusionProof(37)).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_BAD_ARGUMENT' }));
  });

  it('proofs read O(log n) nodes (property over sizes and indices)', async () => {
    const a = await party(1);
    const { ledger } = await fresh('reads');
    await ledger.appendMany(entries(a, 300));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), async (size, x, y) => {
        const bound = 2 * Math.ceil(Math.log2(size + 1)) + 1;
        let before = ledger.stats.nodeReads;
        await ledger.inclusionProof(x % size, size);
        expect(ledger.stats.nodeReads - before).toBeLessThanOrEqual(bound);
        before = ledger.stats.nodeReads;
        await ledger.consistencyProof(1 + (y % size), size);
        expect(ledger.stats.nodeReads - before).toBeLessThanOrEqual(bound);
        before = ledger.stats.nodeReads;
        await ledger.root(size);
        expect(ledger.stats.nodeReads - before).toBeLessThanOrEqual(bound);
      }),
      { numRuns: 150 },
    );
  });

  it('rejects invalid and forged entries before writing anything', async () => {
    const a = await party(1);
    const { ledger } = await fresh('reject', ORIGIN); // entry bytes are checked for the log origin
    const good = entries(a, 2);
    const forged = new TextEncoder().encode(new TextDecoder().decode(good[1].bytes).replace('k-1', 'k-9'));
    await expect(ledger.appendMany([good[0], forged])).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_SIGNATURE_INVALID' }));
    await expect(ledger.append(new Uint8Array([1, 2, 3]))).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_ENTRY_INVALID' }));
    expect(ledger.size).toBe(0);
  });

  it('gives a clear error when the directory is locked, and read-only mode refuses writes', async () => {
    const a = await party(1);
    const { ledger, dir } = await fresh('lock');
    await ledger.append(entries(a, 1)[0]);
    await expect(openLedger({ dir, readOnly: true })).rejects.toThrow(
      expect.objectContaining({ code: 'LEDGER_LOCKED', hint: expect.stringMatching(/stop the daemon|copy/) }),
    );
    await ledger.close();
    const ro = await openLedger({ dir, readOnly: true });
    cleanups.push(() => ro.close());
    expect(ro.size).toBe(1);
    await expect(ro.append(entries(a, 1)[0])).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_READ_ONLY' }));
    await expect(openLedger({ dir: dir + '-missing', readOnly: true })).rejects.toThrow(expect.objectContaining({ code: 'LEDGER_NOT_FOUND' }));
    expect(existsSync(dir + '-missing')).toBe(false); // a reader leaves nothing behind
  });

  it('stores checkpoints, merges cosignatures and builds sync bundles', async () => {
    const agg = await party(1, ORIGIN); // checkpoints are signed under the origin the entries are bound to
    const w = await party(2);
    const { ledger } = await fresh('cp');
    await fillLedger(ledger, agg, [await party(3), await party(4), await party(5)], 3);
    const cps = await ledger.listCheckpoints();
    expect(cps.map((c) => c.size)).toEqual([8, 13, 18]);
    const latest = (await ledger.latestCheckpoint())!;
    expect(latest.size).toBe(18);
    const parsed = parseCheckpoint(latest.note);
    expect(toHex(parsed.checkpoint.rootHash)).toBe(toHex(ledger.rootHash));
    expect(await ledger.checkpointKey()).toBe(formatVerifierKey(agg.note));
    // signing twice at the same size returns the stored note
    expect(await ledger.signCheckpoint(agg.note)).toBe(latest.note);
    // a different key cannot sign this log's checkpoints
    await expect(ledger.signCheckpoint((await party(9, ORIGIN)).note)).rejects.toThrow(/signed by/);
    const merged = await ledger.addCosignatures(cosignNote(latest.note, w.note), [parseVerifierKey(formatVerifierKey(agg.note)), noteVerifierFromPeerId(w.peerId)]);
    expect(parseCheckpoint(merged).signatures.map((s) => s.name)).toEqual([ORIGIN, w.peerId]);
    expect((await ledger.latestCheckpoint())!.note).toBe(merged);
    const bundle = await ledger.syncBundle(8);
    expect(bundle.entries.length).toBe(10);
    verifyConsistency(8, 18, bundle.consistencyProof, parseCheckpoint(cps[0].note).checkpoint.rootHash, parsed.checkpoint.rootHash);
  });

  it('a ledger opened without an origin is held to the origin of its first entries', async () => {
    const OTHER = 'fedtwin.test/consortium-2';
    const a = await party(1); // signs for ORIGIN
    const aOther = createEntrySigner(await keyFromSeed(1), OTHER);
    const other = (k: string) => createEntrySync({ type: 'key', event: 'ceremony', keyId: k }, aOther);
    // one batch, two origins: refused, nothing written
    const { ledger: mixed } = await fresh('mixed');
    await expect(mixed.appendMany([entries(a, 1)[0], other('x')])).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID', details: { batchIndex: 1 } });
    expect(mixed.size).toBe(0);
    expect(await mixed.origin()).toBeUndefined();
    // bytes cannot be checked without an origin
    await expect(mixed.append(entries(a, 1)[0].bytes)).rejects.toMatchObject({ code: 'LEDGER_BAD_ARGUMENT', message: expect.stringMatching(/no log origin/) });
    // the first entries fix the origin: a later batch for another origin, and a checkpoint under another name, are refused
    const { ledger, dir } = await fresh('first');
    await ledger.appendMany(entries(a, 2));
    expect(await ledger.origin()).toBe(ORIGIN);
    await expect(ledger.append(other('y'))).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });
    await expect(ledger.signCheckpoint((await party(1, OTHER)).note)).rejects.toThrow(/not the log origin/);
    // concurrent: a batch checked before the origin was recorded is checked again when it commits
    const { ledger: race } = await fresh('race');
    const p1 = race.appendMany(entries(a, 1));
    const p2 = race.appendMany([other('z')]);
    await p1;
    await expect(p2).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });
    expect(race.size).toBe(1);
    // a reopen checks stored entries (and bytes) for the recorded origin; a contradicting origin is refused
    expect(ledger.size).toBe(2);
    await ledger.close();
    await expect(openLedger({ dir, origin: OTHER })).rejects.toMatchObject({ code: 'LEDGER_BAD_ARGUMENT', message: expect.stringMatching(/belongs to the log origin/) });
    const again = await openLedger({ dir });
    cleanups.push(() => again.close());
    expect((await again.getEntry(1)).payload).toMatchObject({ keyId: 'k-1' });
    await expect(again.append(other('w').bytes)).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });
    await again.append(entries(a, 1, 5)[0].bytes);
    expect(again.size).toBe(3);
  });
});

describe('key encoding', () => {
  it('u64be is fixed-width big-endian and sorts like the numbers (property)', async () => {
    const { u64be, readU64be } = await import('../src/bytes.ts');
    const { nodeKey, parseNodeKey } = await import('../src/ledger.ts');
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (a, b) => {
        const [ka, kb] = [u64be(a), u64be(b)];
        expect(ka.length).toBe(8);
        expect(readU64be(ka)).toBe(a);
        expect(Math.sign(Buffer.compare(ka, kb))).toBe(Math.sign(a - b));
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.nat({ max: 2 ** 12 }), (level, index) => {
        expect(parseNodeKey(nodeKey({ level, index }))).toEqual({ level, index });
      }),
    );
  });
});
