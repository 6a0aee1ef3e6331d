// HE key ceremony: the key holder seals the consortium's secret key for each member, so the key can
// travel through (and be stored by) the aggregator, which cannot open it. See docs/he.md §6.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { z } from 'zod';
import { FedtwinError } from '@fedtwin/errors';
import type { HeContext } from './context.ts';
import type { HeSecretKey } from './keys.ts';
import { deserializeSecretKey, keyState, serializeSecretKey } from './keys.ts';

/** A secret key sealed for one member. JSON-able; the aggregator stores and relays it as is. */
export interface SealedKey {
  v: 1;
  /** Hex key id (computeKeyId) of the sealed key, as the consortium announces it. */
  keyId: string;
  /** Key epoch: 0 for the first key, +1 per rotation. */
  epoch: number;
  /** Peer ID of the only member that can open the box. */
  recipient: string;
  /** Peer ID of the key holder that sealed and signed it. */
  holder: string;
  /** Base64 (standard, padded) of the 32-byte ephemeral X25519 public key. */
  ephemeralPub: string;
  /** Base64 of the 12-byte AES-GCM nonce. */
  nonce: string;
  /** Base64 of AES-256-GCM(serialized key) ‖ 16-byte tag. */
  ciphertext: string;
  /** Base64 of the holder's 64-byte Ed25519 signature over every other field (sealedKeySigningBytes). */
  signature: string;
}

export interface SealKeyInit {
  recipientPeerId: string;
  /** serializeSecretKey(key): the whole key file, parameters included. */
  secretKey: Uint8Array;
  keyId: string;
  epoch: number;
  /** The key holder's libp2p identity (Ed25519). */
  holderKey: PrivateKey;
}

export interface OpenSealedKeyInit {
  /** Untrusted input, e.g. JSON.parse of what the aggregator relayed. */
  sealed: unknown;
  recipientKey: PrivateKey;
  /** Peer ID of the designated key holder (from the consortium config, not from the box). */
  expectedHolder: string;
  /** The key id the aggregator / ledger announces; a box for another key is refused. */
  expectedKeyId?: string;
  expectedEpoch?: number;
}

export interface OpenedKey {
  /** serializeSecretKey form; store it with saveSecretKeyFile(path, key). */
  secretKey: Uint8Array;
  /** The parsed key; its keyId was recomputed from the bytes and equals `keyId`. */
  key: HeSecretKey;
  keyId: string;
  epoch: number;
}

/** Cap on the sealed ciphertext, checked on the base64 length before decoding. */
export const SEALED_KEY_MAX_CIPHERTEXT_BYTES = 4 * 1024 * 1024;
const TAG_BYTES = 16;
const NONCE_BYTES = 12;
const CONTEXT_TAG = 'fedtwin-he-key/v1';
const SIGNING_TAG = 'fedtwin-he-sealed-key/v1';

// a flat character class: a grouped quantifier overflows V8's regex stack on multi-MiB strings;
// padding placement is enforced by the canonical re-encode check in fromB64
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const b64Len = (bytes: number): number => Math.ceil(bytes / 3) * 4;
const b64 = (min: number, max: number) =>
  z.string().refine((s) => s.length >= b64Len(min) && s.length <= b64Len(max) && s.length % 4 === 0 && B64_RE.test(s), {
    message: `expected standard padded base64 of ${min === max ? min : `${min}..${max}`} bytes`,
  });

const sealedKeySchema = z.strictObject({
  v: z.literal(1),
  keyId: z.string().regex(/^[0-9a-f]{64}$/),
  epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  recipient: z.string().min(1).max(128),
  holder: z.string().min(1).max(128),
  ephemeralPub: b64(32, 32),
  nonce: b64(NONCE_BYTES, NONCE_BYTES),
  ciphertext: b64(TAG_BYTES + 1, SEALED_KEY_MAX_CIPHERTEXT_BYTES),
  signature: b64(64, 64),
});

/** Decoded binary fields of a sealed key whose shape has been checked. */
interface Decoded {
  box: SealedKey;
  ephemeralPub: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  signature: Uint8Array;
  recipientPub: Uint8Array;
  holderPub: Uint8Array;
}

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new FedtwinError('HE_SEALED_KEY_INVALID', message, {
    hint: 'the sealed key is damaged or not a fedtwin sealed key; ask the key holder to seal the key again',
    details,
  });
}

function badArgument(message: string, hint: string): never {
  throw new FedtwinError('HE_BAD_ARGUMENT', message, { hint });
}

/** Ed25519 public key of a peer ID string in its canonical (base58btc) form, or null. */
function ed25519PubOf(peerId: string): Uint8Array | null {
  try {
    const id = peerIdFromString(peerId);
    if (id.type !== 'Ed25519' || id.publicKey === undefined || id.publicKey.raw.length !== 32) return null;
    if (id.toString() !== peerId) return null; // one spelling per peer, so string comparisons are sound
    return id.publicKey.raw;
  } catch {
    return null;
  }
}

/** Peer ID string and Ed25519 seed of a libp2p private key. */
function identityOf(key: PrivateKey, what: string): { peerId: string; seed: Uint8Array } {
  if (key === null || typeof key !== 'object' || key.type !== 'Ed25519' || !(key.raw instanceof Uint8Array) || key.raw.length !== 64) {
    badArgument(`${what} is not a libp2p Ed25519 private key`, 'pass the node identity key (privateKeyFromProtobuf of its key file)');
  }
  // libp2p's Ed25519 raw form is seed ‖ public key; the peer ID comes from the latter, so they must agree
  const seed = key.raw.subarray(0, 32);
  if (!Buffer.from(ed25519.getPublicKey(seed)).equals(Buffer.from(key.raw.subarray(32)))) {
    badArgument(`${what} is inconsistent (its public half does not match its seed)`, 'reload the identity key from its key file');
  }
  return { peerId: peerIdFromPrivateKey(key).toString(), seed };
}

/** Strict base64: exactly one encoding per byte string (regex + re-encode check). */
function fromB64(s: string, field: string): Uint8Array {
  const buf = Buffer.from(s, 'base64');
  if (buf.toString('base64') !== s) invalid(`sealed key field ${field} is not canonical base64`, { field });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

const toB64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');

/** Unambiguous concatenation: u32 BE length before every part. */
function lengthPrefixed(parts: Array<string | Uint8Array>): Uint8Array {
  const bufs = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p.buffer, p.byteOffset, p.length)));
  const out = Buffer.alloc(bufs.reduce((n, b) => n + 4 + b.length, 0));
  let o = 0;
  for (const b of bufs) {
    out.writeUInt32BE(b.length, o);
    b.copy(out, o + 4);
    o += 4 + b.length;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function epochBytes(epoch: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(epoch));
  return new Uint8Array(b.buffer, b.byteOffset, 8);
}

/** HKDF info and AES-GCM AAD: the key is bound to what it is for, whom, and from whom. */
function sealContext(keyId: string, epoch: number, recipient: string, holder: string): Uint8Array {
  return lengthPrefixed([CONTEXT_TAG, keyId, epochBytes(epoch), recipient, holder]);
}

/** The bytes the holder signs: every field but the signature, binary-decoded, length-prefixed. */
function signingBytes(d: { keyId: string; epoch: number; recipient: string; holder: string; ephemeralPub: Uint8Array; nonce: Uint8Array; ciphertext: Uint8Array }): Uint8Array {
  return lengthPrefixed([SIGNING_TAG, Uint8Array.of(1), d.keyId, epochBytes(d.epoch), d.recipient, d.holder, d.ephemeralPub, d.nonce, d.ciphertext]);
}

/** AES-256 key from the X25519 shared secret; salt binds both X25519 public keys (as in ECIES). */
function deriveKey(shared: Uint8Array, ephemeralPub: Uint8Array, recipientX: Uint8Array, info: Uint8Array): Buffer {
  const salt = Buffer.concat([ephemeralPub, recipientX]);
  return Buffer.from(hkdfSync('sha256', shared, salt, info, 32));
}

/**
 * Seals a serialized secret key for one member: ephemeral X25519 ⨉ the member's X25519 key
 * (converted from its Ed25519 peer key), HKDF-SHA256, AES-256-GCM, then the holder's Ed25519 signature.
 */
export function sealKeyFor(init: SealKeyInit): SealedKey {
  const { recipientPeerId, secretKey, keyId, epoch, holderKey } = init;
  if (typeof keyId !== 'string' || !/^[0-9a-f]{64}$/.test(keyId)) badArgument('keyId must be 64 lowercase hex characters', 'pass computeKeyId(...) / key.keyId');
  if (!Number.isSafeInteger(epoch) || epoch < 0) badArgument(`epoch must be a non-negative integer, got ${String(epoch)}`, 'start at 0 and add 1 per key rotation');
  if (!(secretKey instanceof Uint8Array) || secretKey.length + TAG_BYTES > SEALED_KEY_MAX_CIPHERTEXT_BYTES) {
    badArgument('secretKey must be a Uint8Array of at most 4 MiB', 'pass serializeSecretKey(key)');
  }
  // holder-side check: the bytes really are the key announced under keyId
  let parsed: HeSecretKey;
  try {
    parsed = deserializeSecretKey(secretKey);
  } catch (err) {
    throw new FedtwinError('HE_BAD_ARGUMENT', 'secretKey is not a serialized fedtwin HE key', { hint: 'pass serializeSecretKey(key), not key.sealKey', cause: err });
  }
  if (parsed.keyId !== keyId) {
    throw new FedtwinError('HE_SEALED_KEY_ID_MISMATCH', 'secretKey does not have the given key id', {
      hint: 'seal the key whose id the consortium announced (key.keyId)',
      details: { keyId, actual: parsed.keyId },
    });
  }
  const holder = identityOf(holderKey, 'holderKey');
  const recipientEd = ed25519PubOf(recipientPeerId);
  if (recipientEd === null) badArgument(`recipient ${String(recipientPeerId)} is not an Ed25519 peer ID`, 'members must use Ed25519 libp2p identities, written as peerId.toString() (12D3KooW…)');
  let recipientX: Uint8Array;
  try {
    recipientX = ed25519.utils.toMontgomery(recipientEd);
  } catch (err) {
    throw new FedtwinError('HE_BAD_ARGUMENT', `recipient ${recipientPeerId} has an invalid Ed25519 public key`, { hint: 'check the member allowlist', cause: err });
  }

  const ephSecret = x25519.utils.randomSecretKey();
  const ephemeralPub = x25519.getPublicKey(ephSecret);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(ephSecret, recipientX); // rejects low-order points
  } catch (err) {
    throw new FedtwinError('HE_BAD_ARGUMENT', `recipient ${recipientPeerId} has a weak (low-order) public key`, { hint: 'check the member allowlist', cause: err });
  } finally {
    ephSecret.fill(0);
  }
  const context = sealContext(keyId, epoch, recipientPeerId, holder.peerId);
  const aesKey = deriveKey(shared, ephemeralPub, recipientX, context);
  shared.fill(0);
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const cipher = createCipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(context);
  const ciphertext = new Uint8Array(Buffer.concat([cipher.update(secretKey), cipher.final(), cipher.getAuthTag()]));
  aesKey.fill(0);
  const signature = ed25519.sign(
    signingBytes({ keyId, epoch, recipient: recipientPeerId, holder: holder.peerId, ephemeralPub, nonce, ciphertext }),
    holder.seed,
  );
  return {
    v: 1, keyId, epoch, recipient: recipientPeerId, holder: holder.peerId,
    ephemeralPub: toB64(ephemeralPub), nonce: toB64(nonce), ciphertext: toB64(ciphertext), signature: toB64(signature),
  };
}

/** Shape check and strict decoding; throws HE_SEALED_KEY_INVALID. */
function decode(sealed: unknown): Decoded {
  const r = sealedKeySchema.safeParse(sealed);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
    invalid(`sealed key is malformed at ${field}: ${issue?.message ?? 'invalid'}`, { field });
  }
  const box = r.data;
  const recipientPub = ed25519PubOf(box.recipient);
  if (recipientPub === null) invalid('sealed key recipient is not an Ed25519 peer ID', { field: 'recipient' });
  const holderPub = ed25519PubOf(box.holder);
  if (holderPub === null) invalid('sealed key holder is not an Ed25519 peer ID', { field: 'holder' });
  const ephemeralPub = fromB64(box.ephemeralPub, 'ephemeralPub');
  const nonce = fromB64(box.nonce, 'nonce');
  const ciphertext = fromB64(box.ciphertext, 'ciphertext');
  const signature = fromB64(box.signature, 'signature');
  // the base64 length admits ±2 bytes through padding; the decoded sizes are exact
  if (ephemeralPub.length !== 32) invalid('sealed key ephemeralPub must be 32 bytes', { field: 'ephemeralPub' });
  if (nonce.length !== NONCE_BYTES) invalid(`sealed key nonce must be ${NONCE_BYTES} bytes`, { field: 'nonce' });
  if (signature.length !== 64) invalid('sealed key signature must be 64 bytes', { field: 'signature' });
  if (ciphertext.length <= TAG_BYTES || ciphertext.length > SEALED_KEY_MAX_CIPHERTEXT_BYTES) invalid('sealed key ciphertext has an impossible size', { field: 'ciphertext' });
  return { box, ephemeralPub, nonce, ciphertext, signature, recipientPub, holderPub };
}

function checkHolderAndSignature(d: Decoded, expectedHolder: string): void {
  if (d.box.holder !== expectedHolder) {
    throw new FedtwinError('HE_SEALED_KEY_BAD_SIGNATURE', `sealed key comes from ${d.box.holder}, not from the key holder ${expectedHolder}`, {
      hint: 'only the designated key holder may distribute the key; check the consortium config (key holder peer ID)',
      details: { holder: d.box.holder, expectedHolder },
    });
  }
  let ok = false;
  try {
    // strict RFC 8032 verification (no ZIP-215 leniency): one valid encoding per signature
    ok = ed25519.verify(d.signature, signingBytes({ ...d.box, ephemeralPub: d.ephemeralPub, nonce: d.nonce, ciphertext: d.ciphertext }), d.holderPub, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new FedtwinError('HE_SEALED_KEY_BAD_SIGNATURE', 'sealed key signature does not verify under the key holder\'s identity', {
      hint: 'the box was altered in transit or storage; ask the key holder to seal the key again',
      details: { holder: d.box.holder },
    });
  }
}

function checkExpected(box: SealedKey, expectedKeyId: string | undefined, expectedEpoch: number | undefined): void {
  if (expectedKeyId !== undefined && box.keyId !== expectedKeyId) {
    throw new FedtwinError('HE_SEALED_KEY_ID_MISMATCH', `sealed key is for key ${box.keyId}, expected ${expectedKeyId}`, {
      hint: 'the aggregator relayed a box for another (older?) key; fetch the box for the announced key id',
      details: { keyId: box.keyId, expectedKeyId },
    });
  }
  if (expectedEpoch !== undefined && box.epoch !== expectedEpoch) {
    throw new FedtwinError('HE_SEALED_KEY_ID_MISMATCH', `sealed key is for epoch ${box.epoch}, expected ${expectedEpoch}`, {
      hint: 'fetch the box for the announced key epoch',
      details: { epoch: box.epoch, expectedEpoch },
    });
  }
}

/**
 * What the aggregator (or anyone) can check without opening the box: shape, the holder, and the
 * holder's signature. Returns the parsed box; throws HE_SEALED_KEY_INVALID / _BAD_SIGNATURE.
 */
export function verifySealedKey(sealed: unknown, expectedHolder: string): SealedKey {
  const d = decode(sealed);
  checkHolderAndSignature(d, expectedHolder);
  return { ...d.box };
}

/**
 * Opens a box sealed for this member: checks shape, recipient, holder, signature, then decrypts and
 * checks that the key's recomputed id equals the signed key id.
 */
export function openSealedKey(init: OpenSealedKeyInit): OpenedKey {
  const { sealed, recipientKey, expectedHolder, expectedKeyId, expectedEpoch } = init;
  const me = identityOf(recipientKey, 'recipientKey');
  const d = decode(sealed);
  if (d.box.recipient !== me.peerId) {
    throw new FedtwinError('HE_SEALED_KEY_WRONG_RECIPIENT', `sealed key is addressed to ${d.box.recipient}, not to this node (${me.peerId})`, {
      hint: 'ask the aggregator for the box addressed to this node\'s peer ID',
      details: { recipient: d.box.recipient, self: me.peerId },
    });
  }
  checkHolderAndSignature(d, expectedHolder);
  checkExpected(d.box, expectedKeyId, expectedEpoch);

  const decryptFailed = (cause?: unknown): never => {
    throw new FedtwinError('HE_SEALED_KEY_DECRYPT_FAILED', 'cannot decrypt the sealed key with this node\'s identity key', {
      hint: 'the box was sealed for another key of this peer ID, or by a faulty key holder; ask the key holder to seal the key again',
      cause,
    });
  };
  const mySecretX = ed25519.utils.toMontgomerySecret(me.seed);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(mySecretX, d.ephemeralPub);
  } catch (err) {
    return decryptFailed(err);
  } finally {
    mySecretX.fill(0);
  }
  const context = sealContext(d.box.keyId, d.box.epoch, d.box.recipient, d.box.holder);
  const aesKey = deriveKey(shared, d.ephemeralPub, ed25519.utils.toMontgomery(d.recipientPub), context);
  shared.fill(0);
  let plain: Uint8Array;
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey, d.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(context);
    decipher.setAuthTag(d.ciphertext.subarray(d.ciphertext.length - TAG_BYTES));
    plain = new Uint8Array(Buffer.concat([decipher.update(d.ciphertext.subarray(0, d.ciphertext.length - TAG_BYTES)), decipher.final()]));
  } catch (err) {
    return decryptFailed(err);
  } finally {
    aesKey.fill(0);
  }
  const key = verifyOpenedKey(undefined, plain, d.box.keyId);
  return { secretKey: plain, key, keyId: d.box.keyId, epoch: d.box.epoch };
}

/**
 * Checks an opened key against the announced key id (recomputed from the key's bytes with
 * computeKeyId) and, given ctx, that it belongs to ctx's parameters and that SEAL loads it.
 */
export function verifyOpenedKey(ctx: HeContext | undefined, secretKey: Uint8Array | HeSecretKey, keyId: string): HeSecretKey {
  let key: HeSecretKey;
  try {
    // through the serialized form, so the id is recomputed from the key bytes rather than trusted
    key = deserializeSecretKey(secretKey instanceof Uint8Array ? secretKey : serializeSecretKey(secretKey));
  } catch (err) {
    throw new FedtwinError('HE_SEALED_KEY_INVALID', 'the opened key is not a fedtwin HE key', {
      hint: 'the key holder sealed something other than serializeSecretKey(key); ask it to seal the key again',
      cause: err,
    });
  }
  if (key.keyId !== keyId) {
    throw new FedtwinError('HE_SEALED_KEY_ID_MISMATCH', `the opened key has id ${key.keyId}, but ${String(keyId)} was announced`, {
      hint: 'do not use this key; the key holder sent a different key than the consortium announced',
      details: { keyId, actual: key.keyId },
    });
  }
  if (ctx !== undefined) keyState(ctx, key); // HE_KEY_MISMATCH for other parameters, HE_KEY_INVALID if SEAL refuses it
  return key;
}

/**
 * The canonical bytes the holder signs for a box (validated first; throws HE_SEALED_KEY_INVALID):
 * u32 BE length-prefixed tag, version, keyId, epoch (u64 BE), recipient, holder, and the decoded
 * ephemeralPub, nonce and ciphertext.
 */
export function sealedKeySigningBytes(sealed: unknown): Uint8Array {
  const d = decode(sealed);
  return signingBytes({ ...d.box, ephemeralPub: d.ephemeralPub, nonce: d.nonce, ciphertext: d.ciphertext });
}

/** Fingerprint of a sealed box (SHA-256 of its signing bytes), e.g. for ledger entries or logs. */
export function sealedKeyDigest(sealed: unknown): string {
  return createHash('sha256').update(sealedKeySigningBytes(sealed)).digest('hex');
}
