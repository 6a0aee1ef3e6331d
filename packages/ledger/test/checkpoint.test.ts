import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  cosignNote,
  cosignatureLine,
  formatVerifierKey,
  mergeNotes,
  noteVerifierFromPeerId,
  parseCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  verifyCheckpoint,
  verifyNote,
  hashLeaf,
  toHex,
} from '../src/index.ts';
import { ORIGIN, party } from './helpers.ts';

describe('C2SP signed-note vectors (C2SP/C2SP signed-note.md)', () => {
  // The example verifier key and note from the spec.
  const vkey = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
  const note = 'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

  it('parses the vkey (key ID = SHA-256(name || 0x0A || 0x01 || key)[:4]) and verifies the note', () => {
    const v = parseVerifierKey(vkey);
    expect(v.name).toBe('example.com/foo');
    expect(v.keyId.toString(16)).toBe('530d903a');
    expect(formatVerifierKey(v)).toBe(vkey);
    const r = verifyNote(note, [v]);
    expect(r.text).toBe('This is an example message.\n');
    expect(r.verifiedBy).toEqual(['example.com/foo']);
  });

  it('rejects the note when the text changes or the key is unknown', () => {
    const v = parseVerifierKey(vkey);
    expect(() => verifyNote(note.replace('example message', 'exemplary message'), [v])).toThrow(/does not verify/);
    expect(() => verifyNote(note, [])).toThrow(/no signature from a known key/);
    expect(() => parseVerifierKey(vkey.replace('530d903a', '530d903b'))).toThrow(/does not match/);
  });
});

describe('checkpoints', () => {
  const root = hashLeaf(new Uint8Array([1, 2, 3]));

  it('formats per tlog-checkpoint, signs, verifies, and collects cosignatures', async () => {
    const agg = await party(1, ORIGIN);
    const w1 = await party(2);
    const w2 = await party(3);
    const note = signCheckpoint({ origin: ORIGIN, size: 42, rootHash: root }, agg.note);
    const lines = note.split('\n');
    expect(lines.slice(0, 4)).toEqual([ORIGIN, '42', Buffer.from(root).toString('base64'), '']);
    expect(lines[4]).toMatch(new RegExp(`^— ${ORIGIN.replace(/[./]/g, '\\$&')} [A-Za-z0-9+/]{91}=$`));
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    const r = verifyCheckpoint(note, [aggV], { origin: ORIGIN });
    expect(r.checkpoint.size).toBe(42);
    expect(toHex(r.checkpoint.rootHash)).toBe(toHex(root));

    const c1 = cosignNote(note, w1.note);
    const c2 = cosignNote(note, w2.note);
    expect(cosignNote(c1, w1.note)).toBe(c1); // idempotent
    expect(c1).toBe(note + cosignatureLine(note, w1.note) + '\n');
    const merged = mergeNotes(note, c1, c2);
    const all = verifyNote(merged, [aggV, noteVerifierFromPeerId(w1.peerId), noteVerifierFromPeerId(w2.peerId)], { require: [ORIGIN, w1.peerId, w2.peerId] });
    expect(all.verifiedBy).toEqual([ORIGIN, w1.peerId, w2.peerId]);
    // unknown witnesses are ignored, but the aggregator must have signed
    expect(verifyCheckpoint(merged, [aggV]).unknown.length).toBe(2);
    expect(() => verifyCheckpoint(c1, [noteVerifierFromPeerId(w1.peerId)], { require: [ORIGIN] })).toThrow(/required key/);
    expect(() => verifyCheckpoint(note, [aggV], { origin: 'other.example/log' })).toThrow(/origin/);
  });

  it('a cosignature over an edited body fails; merge refuses different texts', async () => {
    const agg = await party(1, ORIGIN);
    const w1 = await party(2);
    const note = signCheckpoint({ origin: ORIGIN, size: 5, rootHash: root }, agg.note);
    const other = signCheckpoint({ origin: ORIGIN, size: 6, rootHash: root }, agg.note);
    expect(() => mergeNotes(note, cosignNote(other, w1.note))).toThrow(/different texts/);
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    const edited = note.replace('\n5\n', '\n6\n');
    expect(() => verifyCheckpoint(edited, [aggV])).toThrow(/does not verify/);
  });

  it('rejects malformed notes', async () => {
    const agg = await party(1, ORIGIN);
    const note = signCheckpoint({ origin: ORIGIN, size: 1, rootHash: root }, agg.note);
    expect(() => parseCheckpoint(note.replace('\n1\n', '\n01\n'))).toThrow(/leading zeros/);
    expect(() => parseCheckpoint(note.replace('— ', '- '))).toThrow(/signature line/);
    expect(() => parseCheckpoint(note.slice(0, -1))).toThrow(/newline/);
    expect(() => parseCheckpoint(note.replace('\n\n', '\n'))).toThrow(/blank line/);
    expect(() => parseCheckpoint(note.replace(ORIGIN, 'a\tb'))).toThrow(/control/);
  });

  it('verifier keys round-trip for many keys (their base64 often contains "+")', async () => {
    let plus = 0;
    for (let n = 0; n < 40; n++) {
      const p = await party(100 + n, `fedtwin.test/w${n}`);
      const vkey = formatVerifierKey(p.note);
      if (vkey.split('+').length > 3) plus++;
      const v = parseVerifierKey(vkey);
      expect([v.name, v.keyId, toHex(v.publicKey)]).toEqual([p.note.name, p.note.keyId, toHex(p.note.publicKey)]);
    }
    expect(plus).toBeGreaterThan(0);
  });

  it('parse∘sign round-trips for any size and root (property)', async () => {
    const agg = await party(1, ORIGIN);
    const aggV = parseVerifierKey(formatVerifierKey(agg.note));
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (size, r) => {
        const note = signCheckpoint({ origin: ORIGIN, size, rootHash: r }, agg.note);
        const v = verifyCheckpoint(note, [aggV]);
        expect(v.checkpoint.size).toBe(size);
        expect(toHex(v.checkpoint.rootHash)).toBe(toHex(r));
      }),
      { numRuns: 100 },
    );
  });
});
