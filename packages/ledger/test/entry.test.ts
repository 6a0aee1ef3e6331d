import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateKeyPair } from '@libp2p/crypto/keys';
import {
  canonicalJson,
  createEntry,
  createEntrySync,
  decodeEntry,
  decodeEntryAsync,
  parseEntry,
  createEntrySigner,
  hashLeaf,
  toHex,
  type EntryPayloadInput,
} from '../src/index.ts';
import { hex, party, ORIGIN } from './helpers.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('canonical JSON', () => {
  it('sorts keys, drops whitespace, matches RFC 8785 for simple values', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1.5, y: -0 } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":0,"z":1.5}}');
    expect(canonicalJson({ '\u20ac': 1, '\r': 2, '1': 3 })).toBe('{"\\r":2,"1":3,"€":1}');
    expect(canonicalJson(1e21)).toBe('1e+21');
    expect(() => canonicalJson({ a: Infinity })).toThrow(/no JSON form/);
    expect(() => canonicalJson(new Date())).toThrow(/not a JSON value/);
  });

  it('is a fixpoint of parse∘encode (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const s = canonicalJson(v);
        expect(canonicalJson(JSON.parse(s))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });
});

describe('entries', () => {
  it('round-trips every entry type with signature and leaf hash', async () => {
    const a = await party(1);
    const n = await party(2);
    const payloads: EntryPayloadInput[] = [
      { type: 'membership', action: 'admit', peerId: n.peerId },
      { type: 'round', action: 'open', round: 3, config: { lr: 0.1, nested: { q: [1, 2] } }, globalVersion: hex('g') },
      { type: 'contribution', round: 3, node: n.peerId, ciphertextHash: hex('c'), ciphertextSize: 10, epsilon: 0.5, delta: 1e-6, epsilonTotal: 2, deltaTotal: 4e-6, keyId: 'k' },
      { type: 'aggregate', round: 3, contributions: [2, 5], aggregateHash: hex('a'), modelVersion: hex('m') },
      { type: 'key', event: 'rotation', keyId: 'k2', previousKeyId: 'k', holders: [n.peerId] },
      { type: 'refusal', round: 4, node: n.peerId, reason: 'budget', epsilonRemaining: 0.1 },
    ];
    for (const p of payloads) {
      const e = await createEntry(p, a.entry);
      const text = dec.decode(e.bytes);
      expect(text.startsWith(`{"author":"${a.peerId}","payload":{`)).toBe(true);
      const back = decodeEntry(e.bytes, ORIGIN);
      expect(back.payload).toEqual({ v: 1, ...p });
      expect(back.author).toBe(a.peerId);
      expect(toHex(back.leafHash)).toBe(toHex(hashLeaf(e.bytes)));
      expect((await decodeEntryAsync(e.bytes, ORIGIN)).payload.type).toBe(p.type);
    }
  });

  it('is deterministic: same payload and key give the same bytes regardless of key order', async () => {
    const a = await party(1);
    const x = createEntrySync({ type: 'key', event: 'ceremony', keyId: 'k', publicKeyHash: hex('p') }, a.entry);
    const y = createEntrySync({ publicKeyHash: hex('p'), keyId: 'k', event: 'ceremony', type: 'key' }, a.entry);
    expect(toHex(x.bytes)).toBe(toHex(y.bytes));
  });

  it('rejects invalid payloads on create and on decode, naming the field', async () => {
    const a = await party(1);
    await expect(createEntry({ type: 'contribution', round: 1, node: a.peerId, ciphertextHash: 'xyz', ciphertextSize: 1, epsilon: 1, delta: 0, epsilonTotal: 1, deltaTotal: 0, keyId: 'k' }, a.entry)).rejects.toThrow(
      /ciphertextHash/,
    );
    const good = createEntrySync({ type: 'membership', action: 'admit', peerId: a.peerId }, a.entry);
    const text = dec.decode(good.bytes);
    expect(() => decodeEntry(enc.encode(text.replace('"admit"', '"promote"')), ORIGIN)).toThrow(/action/);
    expect(() => decodeEntry(enc.encode(text.replace('{"author"', '{ "author"')), ORIGIN)).toThrow(/canonical/);
    expect(() => decodeEntry(enc.encode(text.replace('"v":1', '"v":1,"zz":2')), ORIGIN)).toThrow(/zz/);
    expect(() => decodeEntry(new Uint8Array(70_000), ORIGIN)).toThrow(/cap/);
    expect(() => decodeEntry(enc.encode('[1]'), ORIGIN)).toThrow(/object/);
  });

  it('detects a forged signature and a re-attributed author', async () => {
    const a = await party(1);
    const b = await party(2);
    const e = createEntrySync({ type: 'membership', action: 'admit', peerId: b.peerId }, a.entry);
    const text = dec.decode(e.bytes);
    // b's signature on a's claim
    const forged = createEntrySync({ type: 'membership', action: 'admit', peerId: b.peerId }, b.entry);
    const sigB = JSON.parse(dec.decode(forged.bytes)).sig as string;
    const withSigB = text.replace(/"sig":"[^"]+"/, `"sig":"${sigB}"`);
    expect(() => decodeEntry(enc.encode(withSigB), ORIGIN)).toThrow(expect.objectContaining({ code: 'LEDGER_SIGNATURE_INVALID' }));
    const reattributed = text.replace(a.peerId, b.peerId);
    expect(() => decodeEntry(enc.encode(reattributed), ORIGIN)).toThrow(expect.objectContaining({ code: 'LEDGER_SIGNATURE_INVALID' }));
  });

  it('any single-byte change to an entry is rejected (property)', async () => {
    const a = await party(1);
    const e = createEntrySync(
      { type: 'contribution', round: 7, node: a.peerId, ciphertextHash: hex('c'), ciphertextSize: 99, epsilon: 0.25, delta: 1e-5, epsilonTotal: 1.75, deltaTotal: 7e-5, keyId: 'k1' },
      a.entry,
    );
    fc.assert(
      fc.property(fc.nat({ max: e.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const b = Uint8Array.from(e.bytes);
        b[pos] ^= x;
        expect(() => decodeEntry(b, ORIGIN)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^LEDGER_(ENTRY|SIGNATURE)_INVALID$/) }));
      }),
      { numRuns: 400 },
    );
  });

  it('requires a log origin: a signer without one (what made v1 entries) is refused', async () => {
    const a = await party(1);
    const k = await (await import('./helpers.ts')).keyFromSeed(1);
    expect(() => createEntrySigner(k, undefined as never)).toThrow(expect.objectContaining({ code: 'LEDGER_BAD_ARGUMENT' }));
    expect(() => createEntrySigner(k, '')).toThrow(expect.objectContaining({ code: 'LEDGER_BAD_ARGUMENT' }));
    const { origin: _o, ...noOrigin } = a.entry;
    expect(() => createEntrySync({ type: 'membership', action: 'remove', peerId: a.peerId }, noOrigin as never)).toThrow(/v1/);
  });

  it('refuses non-Ed25519 keys', async () => {
    const k = await generateKeyPair('secp256k1');
    expect(() => createEntrySigner(k as never, ORIGIN)).toThrow(/Ed25519/);
  });

  it('parseEntry does not check signatures, decodeEntry does', async () => {
    const a = await party(1);
    const e = createEntrySync({ type: 'membership', action: 'remove', peerId: a.peerId }, a.entry);
    const tampered = dec.decode(e.bytes).replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`);
    expect(parseEntry(enc.encode(tampered)).author).toBe(a.peerId);
    expect(() => decodeEntry(enc.encode(tampered), ORIGIN)).toThrow(/signature/);
  });
});
