// Issue 11: one answer per node and round. The (type, round, author) index that makes member appends
// idempotent, and the verifier rules that reject a ledger with a node's contribution (or refusal) twice.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Level } from 'level';
import { createEntry, openLedger, verifyLedgerDir, type LedgerEntry } from '../src/index.ts';
import { openLedgerForAudit } from '../src/ledger.ts';
import { utf8 } from '../src/bytes.ts';
import { hex, party, tempDir, ORIGIN, type Party } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
function dir(tag: string): string {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  return t.dir;
}

let agg: Party;
let a: Party;
let b: Party;
beforeAll(async () => {
  agg = await party(1, ORIGIN);
  a = await party(2);
  b = await party(3);
});

const open = (round: number) => createEntry({ type: 'round', action: 'open', round, config: { quorum: 2 } }, agg.entry);
const contribution = (n: Party, round: number, tag = '') =>
  createEntry({
    type: 'contribution', round, node: n.peerId, ciphertextHash: hex(`ct-${round}-${n.peerId}${tag}`), ciphertextSize: 10,
    epsilon: 0.5, delta: 1e-6, epsilonTotal: 0.5 * round, deltaTotal: 1e-6 * round, keyId: 'plaintext',
  }, n.entry);
const refusal = (n: Party, round: number) => createEntry({ type: 'refusal', round, node: n.peerId, reason: 'budget' }, n.entry);
const aggregate = (round: number, leaves: number[]) =>
  createEntry({ type: 'aggregate', round, contributions: leaves, aggregateHash: hex(`agg-${round}`), modelVersion: hex(`mv-${round}`) }, agg.entry);
const admit = (n: Party) => createEntry({ type: 'membership', action: 'admit', peerId: n.peerId }, agg.entry);

async function ledgerOf(entries: LedgerEntry[]): Promise<string> {
  const d = dir('idem');
  const l = await openLedger({ dir: d });
  await l.appendMany(entries);
  await l.signCheckpoint(agg.note);
  await l.close();
  return d;
}

describe('findByKey', () => {
  it('finds entries by (type, round, author), across reopen, and only those', async () => {
    const d = dir('find');
    const l = await openLedger({ dir: d });
    await l.appendMany([await admit(a), await admit(b), await open(1)]);
    await l.append(await contribution(a, 1));
    await l.append(await contribution(b, 1));
    await l.append(await aggregate(1, [3, 4]));
    await l.append(await open(2));
    await l.append(await refusal(a, 2));
    expect(await l.findByKey('round', 1, agg.peerId)).toBe(2);
    expect(await l.findByKey('contribution', 1, a.peerId)).toBe(3);
    expect(await l.findByKey('contribution', 1, b.peerId)).toBe(4);
    expect(await l.findByKey('aggregate', 1, agg.peerId)).toBe(5);
    expect(await l.findByKey('refusal', 2, a.peerId)).toBe(7);
    expect(await l.findByKey('contribution', 2, a.peerId)).toBeUndefined();
    expect(await l.findByKey('contribution', 1, agg.peerId)).toBeUndefined();
    expect(await l.findByKey('membership', 0, agg.peerId)).toBeUndefined();
    // a second aggregate for a round (a replacement after a withdrawal) is listed after the first
    await l.append(await aggregate(1, [4]));
    expect(await l.findAllByKey('aggregate', 1, agg.peerId)).toEqual([5, 8]);
    await l.close();
    const again = await openLedger({ dir: d });
    expect(await again.findAllByKey('aggregate', 1, agg.peerId)).toEqual([5, 8]);
    expect(await again.findByKey('contribution', 1, b.peerId)).toBe(4);
    await again.close();
  });

  it('a ledger written without the index is indexed on open (and scanned when opened read-only)', async () => {
    const d = await ledgerOf([await admit(a), await open(1), await contribution(a, 1), await open(2), await contribution(a, 2)]);
    // what a ledger of the previous build looks like: no k! rows, no m!indexed
    const db = new Level<Uint8Array, Uint8Array>(d, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    await db.sublevel<Uint8Array, Uint8Array>('k', { keyEncoding: 'view', valueEncoding: 'view' }).clear();
    await db.sublevel<Uint8Array, Uint8Array>('m', { keyEncoding: 'view', valueEncoding: 'view' }).del(utf8.encode('indexed'));
    await db.close();
    const ro = await openLedgerForAudit(d);
    expect(await ro.findByKey('contribution', 2, a.peerId)).toBe(4);
    expect(await ro.findByKey('round', 1, agg.peerId)).toBe(1);
    await ro.close();
    const l = await openLedger({ dir: d });
    expect(await l.findByKey('contribution', 1, a.peerId)).toBe(2);
    expect(await l.findByKey('contribution', 2, a.peerId)).toBe(4);
    await l.append(await contribution(b, 2));
    expect(await l.findByKey('contribution', 2, b.peerId)).toBe(5);
    await l.close();
    expect((await verifyLedgerDir(d)).ok).toBe(true);
  });
});

describe('verify: a node answers a round once', () => {
  it('accepts one contribution per node per round (and a refusal in another round)', async () => {
    const d = await ledgerOf([await open(1), await contribution(a, 1), await contribution(b, 1), await aggregate(1, [1, 2]), await open(2), await refusal(a, 2), await contribution(b, 2)]);
    const r = await verifyLedgerDir(d);
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('a second contribution of a node for one round (the same or another entry) is invalid at its index', async () => {
    for (const second of [() => contribution(a, 1, 'again'), () => contribution(a, 1)]) {
      const d = await ledgerOf([await open(1), await contribution(a, 1), await contribution(b, 1), await second(), await aggregate(1, [1, 2])]);
      const r = await verifyLedgerDir(d);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.code).toBe('LEDGER_ENTRY_INVALID');
      expect(r.index).toBe(3);
      expect(r.message).toMatch(/entry 3: a second contribution of node .* for round 1 \(the first is entry 1\)/);
    }
  });

  it('a second refusal, or a contribution and a refusal, of one node for one round is invalid at its index', async () => {
    const twice = await verifyLedgerDir(await ledgerOf([await open(1), await refusal(a, 1), await contribution(b, 1), await refusal(a, 1)]));
    expect(twice).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID', index: 3 });
    expect(!twice.ok && twice.message).toMatch(/a second refusal/);
    const both = await verifyLedgerDir(await ledgerOf([await open(1), await contribution(a, 1), await refusal(a, 1)]));
    expect(both).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID', index: 2 });
    expect(!both.ok && both.message).toMatch(/a refusal besides its contribution/);
    const other = await verifyLedgerDir(await ledgerOf([await open(1), await refusal(a, 1), await contribution(a, 1)]));
    expect(other).toMatchObject({ ok: false, code: 'LEDGER_ENTRY_INVALID', index: 2 });
    expect(!other.ok && other.message).toMatch(/a contribution besides its refusal/);
  });
});
