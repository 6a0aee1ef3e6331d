import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { ed25519 } from '@noble/curves/ed25519.js';
import { isFedtwinError } from '@fedtwin/errors';
import {
  Accumulator, createHeContext, decryptSum, deserializeSecretKey, encryptVector, generateKeys, openSealedKey, publicInfo,
  sealKeyFor, sealedKeyDigest, sealedKeySigningBytes, serializeSecretKey, verifyOpenedKey, verifySealedKey, SEALED_KEY_MAX_CIPHERTEXT_BYTES,
} from '../src/index.ts';
import { code } from './helpers.ts';
import type { HeContext, HeSecretKey, SealedKey } from '../src/index.ts';


interface Member { key: PrivateKey; id: string }
async function member(): Promise<Member> {
  const key = await generateKeyPair('Ed25519');
  return { key, id: peerIdFromPrivateKey(key).toString() };
}

const flip = (b64: string, byte: number, bit: number): string => {
  const b = Buffer.from(b64, 'base64');
  b[byte % b.length]! ^= 1 << bit;
  return b.toString('base64');
};

/** Signs a (tampered) box with a given key, as a malicious or buggy holder could. */
function resign(box: SealedKey, key: PrivateKey): SealedKey {
  const sig = ed25519.sign(sealedKeySigningBytes(box), key.raw.subarray(0, 32));
  return { ...box, signature: Buffer.from(sig).toString('base64') };
}

let ctx: HeContext;
let heKey: HeSecretKey;
let serialized: Uint8Array;
let holder: Member;
let members: Member[];
let outsider: Member; // stands for the aggregator: it relays boxes and has its own identity
let boxes: SealedKey[];

beforeAll(async () => {
  ctx = await createHeContext({ maxParticipants: 16 });
  heKey = generateKeys(ctx);
  serialized = serializeSecretKey(heKey);
  holder = await member();
  members = await Promise.all([member(), member(), member()]);
  outsider = await member();
  boxes = members.map((m) => sealKeyFor({ recipientPeerId: m.id, secretKey: serialized, keyId: heKey.keyId, epoch: 0, holderKey: holder.key }));
});
afterAll(() => ctx.dispose());

describe('sealKeyFor / openSealedKey', () => {
  it('every member opens its own box and gets the announced key, which decrypts what the holder encrypted', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => (i - 50) / 100);
    const acc = new Accumulator(ctx);
    acc.add(encryptVector(ctx, heKey, values, { member: holder.id, tag: new Uint8Array(32).fill(7) }).update);
    const sum = acc.result();
    acc.dispose();
    for (const [i, m] of members.entries()) {
      const wire = JSON.parse(JSON.stringify(boxes[i])) as unknown; // what the aggregator relays
      const opened = openSealedKey({ sealed: wire, recipientKey: m.key, expectedHolder: holder.id, expectedKeyId: publicInfo(heKey).keyId, expectedEpoch: 0 });
      expect(opened.keyId).toBe(heKey.keyId);
      expect(opened.epoch).toBe(0);
      expect(Buffer.from(opened.secretKey).equals(Buffer.from(serialized))).toBe(true);
      expect(deserializeSecretKey(opened.secretKey).keyId).toBe(heKey.keyId);
      const checked = verifyOpenedKey(ctx, opened.secretKey, publicInfo(heKey).keyId);
      const out = decryptSum(ctx, checked, sum, [holder.id]);
      for (let j = 0; j < values.length; j++) expect(Math.abs(out[j]! - values[j]!)).toBeLessThan(1 / ctx.scale + 1e-12);
    }
  });

  it('produces a well-formed box, fresh per recipient and per call', () => {
    const b = boxes[0]!;
    expect(b).toMatchObject({ v: 1, keyId: heKey.keyId, epoch: 0, recipient: members[0]!.id, holder: holder.id });
    expect(Buffer.from(b.ephemeralPub, 'base64')).toHaveLength(32);
    expect(Buffer.from(b.nonce, 'base64')).toHaveLength(12);
    expect(Buffer.from(b.signature, 'base64')).toHaveLength(64);
    expect(Buffer.from(b.ciphertext, 'base64')).toHaveLength(serialized.length + 16);
    const again = sealKeyFor({ recipientPeerId: members[0]!.id, secretKey: serialized, keyId: heKey.keyId, epoch: 0, holderKey: holder.key });
    expect(new Set([b, again, boxes[1]!].map((x) => x.ephemeralPub)).size).toBe(3);
    expect(again.ciphertext).not.toBe(b.ciphertext);
    expect(sealedKeyDigest(again)).not.toBe(sealedKeyDigest(b));
    expect(sealedKeyDigest(b)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the aggregator can check the holder signature without opening', () => {
    for (const b of boxes) expect(verifySealedKey(JSON.parse(JSON.stringify(b)), holder.id)).toEqual(b);
    expect(code(() => verifySealedKey(boxes[0], outsider.id))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
    expect(code(() => verifySealedKey({ ...boxes[0]!, epoch: 1 }, holder.id))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
  });
});

describe('aggregator view: sealed boxes and all public keys are not enough', () => {
  it('holds no plaintext key material', () => {
    const stored = JSON.stringify(boxes);
    // a 32-byte window of the SEAL key body, in the encodings a leak would take
    const window = Buffer.from(heKey.sealKey.subarray(1000, 1032));
    expect(stored.includes(window.toString('base64').slice(4, 36))).toBe(false);
    expect(stored.includes(window.toString('hex'))).toBe(false);
  });

  it('a third party cannot open any box, even with the holder re-signing a box re-addressed to it', () => {
    for (const b of boxes) {
      expect(code(() => openSealedKey({ sealed: b, recipientKey: outsider.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_WRONG_RECIPIENT');
      // rewriting the recipient breaks the signature
      const readdressed = { ...b, recipient: outsider.id };
      expect(code(() => openSealedKey({ sealed: readdressed, recipientKey: outsider.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
      // and even a valid signature does not help: the box is encrypted to the original recipient's key
      expect(code(() => openSealedKey({ sealed: resign(readdressed, holder.key), recipientKey: outsider.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_DECRYPT_FAILED');
    }
  });

  it('a member cannot open another member\'s box', () => {
    expect(code(() => openSealedKey({ sealed: boxes[1], recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_WRONG_RECIPIENT');
    const stolen = resign({ ...boxes[1]!, recipient: members[0]!.id }, holder.key);
    expect(code(() => openSealedKey({ sealed: stolen, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_DECRYPT_FAILED');
  });

  it('the aggregator cannot substitute its own key: boxes from anyone but the designated holder are refused', () => {
    const evilKey = serializeSecretKey(generateKeys(ctx));
    const evilId = deserializeSecretKey(evilKey).keyId;
    const forged = sealKeyFor({ recipientPeerId: members[0]!.id, secretKey: evilKey, keyId: evilId, epoch: 0, holderKey: outsider.key });
    expect(code(() => openSealedKey({ sealed: forged, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
    // claiming to be the holder, signed with another key
    const claimed = resign({ ...forged, holder: holder.id }, outsider.key);
    expect(code(() => openSealedKey({ sealed: claimed, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
  });
});

describe('tampering', () => {
  const binFields = ['ciphertext', 'nonce', 'ephemeralPub', 'signature'] as const;

  it('flipping any bit of a binary field fails (signature layer)', () => {
    fc.assert(fc.property(fc.constantFrom(...binFields), fc.nat(), fc.integer({ min: 0, max: 7 }), (field, byte, bit) => {
      const b = boxes[0]!;
      const bad = { ...b, [field]: flip(b[field], byte, bit) };
      expect(code(() => openSealedKey({ sealed: bad, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
    }), { numRuns: 150 });
  });

  it('flipping any bit of ciphertext / nonce / ephemeralPub fails even when re-signed (AEAD layer)', () => {
    fc.assert(fc.property(fc.constantFrom('ciphertext', 'nonce', 'ephemeralPub' as const), fc.nat(), fc.integer({ min: 0, max: 7 }), (field, byte, bit) => {
      const b = boxes[0]!;
      const bad = resign({ ...b, [field]: flip(b[field as 'ciphertext'], byte, bit) }, holder.key);
      expect(code(() => openSealedKey({ sealed: bad, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_DECRYPT_FAILED');
    }), { numRuns: 60 });
  });

  it('changing keyId or epoch fails, signed or re-signed (both are bound into HKDF and the AAD)', () => {
    fc.assert(fc.property(fc.nat({ max: 63 }), fc.constantFrom(...'0123456789abcdef'), fc.integer({ min: 1, max: 2 ** 40 }), (pos, ch, dEpoch) => {
      const b = boxes[0]!;
      fc.pre(b.keyId[pos] !== ch);
      const keyId = b.keyId.slice(0, pos) + ch + b.keyId.slice(pos + 1);
      const open = (sealed: SealedKey) => code(() => openSealedKey({ sealed, recipientKey: members[0]!.key, expectedHolder: holder.id }));
      expect(open({ ...b, keyId })).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
      expect(open({ ...b, epoch: b.epoch + dEpoch })).toBe('HE_SEALED_KEY_BAD_SIGNATURE');
      expect(open(resign({ ...b, keyId }, holder.key))).toBe('HE_SEALED_KEY_DECRYPT_FAILED');
      expect(open(resign({ ...b, epoch: b.epoch + dEpoch }, holder.key))).toBe('HE_SEALED_KEY_DECRYPT_FAILED');
    }), { numRuns: 40 });
  });

  it('refuses a box for another key id or epoch than announced (replay of an old key)', () => {
    const other = generateKeys(ctx);
    const old = boxes[0]!;
    const rotated = sealKeyFor({ recipientPeerId: members[0]!.id, secretKey: serializeSecretKey(other), keyId: other.keyId, epoch: 1, holderKey: holder.key });
    const open = (sealed: SealedKey, expectedKeyId: string, expectedEpoch?: number) =>
      code(() => openSealedKey({ sealed, recipientKey: members[0]!.key, expectedHolder: holder.id, expectedKeyId, expectedEpoch }));
    expect(open(old, other.keyId)).toBe('HE_SEALED_KEY_ID_MISMATCH');
    expect(open(rotated, other.keyId, 0)).toBe('HE_SEALED_KEY_ID_MISMATCH');
    expect(open(rotated, other.keyId, 1)).toBeUndefined();
    const opened = openSealedKey({ sealed: rotated, recipientKey: members[0]!.key, expectedHolder: holder.id });
    expect(opened).toMatchObject({ keyId: other.keyId, epoch: 1 });
    expect(opened.key.keyId).toBe(other.keyId);
  });
});

describe('malformed input', () => {
  const codes = new Set(['HE_SEALED_KEY_INVALID', 'HE_SEALED_KEY_WRONG_RECIPIENT', 'HE_SEALED_KEY_BAD_SIGNATURE', 'HE_SEALED_KEY_DECRYPT_FAILED', 'HE_SEALED_KEY_ID_MISMATCH']);
  const fields = ['v', 'keyId', 'epoch', 'recipient', 'holder', 'ephemeralPub', 'nonce', 'ciphertext', 'signature'] as const;

  it('arbitrary values always give a typed error', () => {
    fc.assert(fc.property(fc.anything(), (x) => {
      expect(code(() => openSealedKey({ sealed: x, recipientKey: members[0]!.key, expectedHolder: holder.id }))).toBe('HE_SEALED_KEY_INVALID');
      expect(code(() => verifySealedKey(x, holder.id))).toBe('HE_SEALED_KEY_INVALID');
    }), { numRuns: 300 });
  });

  it('a valid box with one field replaced, removed or added always gives a typed error', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('replace' as const), field: fc.constantFrom(...fields), value: fc.oneof(fc.anything(), fc.string(), fc.base64String(), fc.integer(), fc.double()) }),
      fc.record({ kind: fc.constant('remove' as const), field: fc.constantFrom(...fields), value: fc.constant(null) }),
      fc.record({ kind: fc.constant('add' as const), field: fc.string().filter((k) => !(fields as readonly string[]).includes(k) && k !== '__proto__'), value: fc.anything() }),
    );
    fc.assert(fc.property(fc.nat({ max: 2 }), mutation, (i, m) => {
      const box: Record<string, unknown> = { ...boxes[i]! };
      if (m.kind === 'remove') delete box[m.field];
      else box[m.field] = m.value;
      fc.pre(JSON.stringify(box) !== JSON.stringify(boxes[i]));
      const c = code(() => openSealedKey({ sealed: box, recipientKey: members[i]!.key, expectedHolder: holder.id }));
      expect(c !== undefined && codes.has(c)).toBe(true);
    }), { numRuns: 400 });
  });

  it('rejects non-canonical base64, non-canonical peer IDs and oversized ciphertexts before decoding', () => {
    const b = boxes[0]!;
    const open = (sealed: unknown) => code(() => openSealedKey({ sealed, recipientKey: members[0]!.key, expectedHolder: holder.id }));
    // 32 bytes = 43 chars + '='; the last char carries 2 unused bits: set one of them
    const e = b.ephemeralPub;
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const idx = last.indexOf(e[42]!);
    const noncanon = e.slice(0, 42) + last[idx ^ 1] + '=';
    expect(open({ ...b, ephemeralPub: noncanon })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, ephemeralPub: b.ephemeralPub.replace(/=*$/, '') })).toBe('HE_SEALED_KEY_INVALID'); // unpadded
    expect(open({ ...b, nonce: `-${b.nonce.slice(1)}` })).toBe('HE_SEALED_KEY_INVALID'); // base64url alphabet
    expect(open({ ...b, recipient: `/p2p/${b.recipient}` })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, holder: 'not a peer id' })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, v: 2 })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, epoch: -1 })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, epoch: 0.5 })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, keyId: b.keyId.toUpperCase() })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, ciphertext: 'A'.repeat(Math.ceil(SEALED_KEY_MAX_CIPHERTEXT_BYTES / 3) * 4 + 4) })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, ciphertext: 'AAAA' })).toBe('HE_SEALED_KEY_INVALID'); // shorter than the GCM tag
    // right base64 length, wrong byte count (padding)
    expect(open({ ...b, ephemeralPub: `${'A'.repeat(42)}==` })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, signature: `${'A'.repeat(87)}=` })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, signature: `${'A'.repeat(88)}` })).toBe('HE_SEALED_KEY_INVALID');
    expect(open({ ...b, nonce: `${'A'.repeat(15)}=` })).toBe('HE_SEALED_KEY_INVALID');
  });

  it('reports the field at fault', () => {
    try {
      openSealedKey({ sealed: { ...boxes[0]!, nonce: 42 }, recipientKey: members[0]!.key, expectedHolder: holder.id });
      expect.unreachable();
    } catch (e) {
      expect(isFedtwinError(e, 'HE_SEALED_KEY_INVALID')).toBe(true);
      expect((e as Error).message).toContain('nonce');
      expect(isFedtwinError(e) && e.hint).toBeTruthy();
    }
  });
});

describe('holder-side checks and verifyOpenedKey', () => {
  it('sealKeyFor refuses bad arguments with typed errors', async () => {
    const base = { recipientPeerId: members[0]!.id, secretKey: serialized, keyId: heKey.keyId, epoch: 0, holderKey: holder.key };
    expect(code(() => sealKeyFor({ ...base, keyId: 'ab' }))).toBe('HE_BAD_ARGUMENT');
    expect(code(() => sealKeyFor({ ...base, keyId: generateKeys(ctx).keyId }))).toBe('HE_SEALED_KEY_ID_MISMATCH');
    expect(code(() => sealKeyFor({ ...base, secretKey: heKey.sealKey }))).toBe('HE_BAD_ARGUMENT'); // the raw SEAL bytes, not the key file
    expect(code(() => sealKeyFor({ ...base, epoch: -1 }))).toBe('HE_BAD_ARGUMENT');
    expect(code(() => sealKeyFor({ ...base, epoch: 1.5 }))).toBe('HE_BAD_ARGUMENT');
    expect(code(() => sealKeyFor({ ...base, recipientPeerId: 'nope' }))).toBe('HE_BAD_ARGUMENT');
    const secp = await generateKeyPair('secp256k1');
    expect(code(() => sealKeyFor({ ...base, recipientPeerId: peerIdFromPrivateKey(secp).toString() }))).toBe('HE_BAD_ARGUMENT');
    expect(code(() => sealKeyFor({ ...base, holderKey: secp }))).toBe('HE_BAD_ARGUMENT');
    expect(code(() => openSealedKey({ sealed: boxes[0], recipientKey: secp, expectedHolder: holder.id }))).toBe('HE_BAD_ARGUMENT');
  });

  it('verifyOpenedKey recomputes the id from the key bytes and checks the parameters', async () => {
    expect(verifyOpenedKey(undefined, serialized, heKey.keyId).keyId).toBe(heKey.keyId);
    expect(verifyOpenedKey(ctx, heKey, heKey.keyId).keyId).toBe(heKey.keyId);
    // an object whose keyId field lies is caught, since the id is recomputed
    const tampered = { ...heKey, sealKey: Uint8Array.from(heKey.sealKey, (x, i) => (i === 100 ? x ^ 1 : x)) };
    expect(code(() => verifyOpenedKey(undefined, tampered, heKey.keyId))).toBe('HE_SEALED_KEY_ID_MISMATCH');
    expect(code(() => verifyOpenedKey(undefined, new Uint8Array(10), heKey.keyId))).toBe('HE_SEALED_KEY_INVALID');
    const other = await createHeContext({ maxParticipants: 16, clip: 2 });
    try {
      expect(code(() => verifyOpenedKey(other, serialized, heKey.keyId))).toBe('HE_KEY_MISMATCH');
    } finally {
      other.dispose();
    }
  });
});
