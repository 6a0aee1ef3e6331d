// Per-round key agreement bound to libp2p identities: two X25519 key pairs per member per round (one for
// the pairwise masks, one for the share encryption, so revealing a dropped member's mask key does not open
// the shares it exchanged), both public keys signed with the member's Ed25519 identity.
import {
  createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, verify as edVerify,
  createCipheriv, createDecipheriv, randomBytes, type KeyObject,
} from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import { secaggError } from './errors.ts';

/** What signs for a member: `createEntrySigner` of @fedtwin/ledger (a libp2p Ed25519 identity) fits. */
export interface IdentitySigner {
  readonly peerId: string;
  signSync(message: Uint8Array): Uint8Array;
}

export interface X25519KeyPair {
  /** raw 32-byte secret (the JWK `d`): what gets Shamir-shared for the mask key */
  secret: Uint8Array;
  /** raw 32-byte public key */
  public: Uint8Array;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export function generateX25519(): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { secret: new Uint8Array(Buffer.from(jwk.d!, 'base64url')), public: new Uint8Array(Buffer.from(jwk.x!, 'base64url')) };
}

/** The public key of a raw X25519 secret (used to check a reconstructed secret against the signed key). */
export function x25519PublicOf(secret: Uint8Array): Uint8Array {
  const pub = createPublicKey(privateKeyObject(secret)).export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(pub.x!, 'base64url'));
}

// KeyObject caches. Building a private KeyObject computes its public key (an X25519 base-point
// multiplication, ≈ 75 µs here, more than the Diffie-Hellman itself), and a member uses one secret for
// every neighbour (shares, then masks), the aggregator a reconstructed one for every surviving neighbour of
// a dropped member. Private keys are cached on the secret's own Uint8Array (a WeakMap: the entry lives as long
// as the caller's array, no longer; a copy of the bytes guards against the array being changed in place).
// Public keys are public: a bounded map by their bytes.
const privateKeys = new WeakMap<Uint8Array, { bytes: Buffer; key: KeyObject }>();
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_CACHE_MAX = 4096;

function privateKeyObject(secret: Uint8Array): KeyObject {
  if (secret.length !== 32) throw secaggError('SECAGG_BAD_ARGUMENT', `an X25519 secret has 32 bytes, got ${secret.length}`, 'pass the raw secret');
  const hit = privateKeys.get(secret);
  if (hit && hit.bytes.equals(secret)) return hit.key;
  // createPrivateKey derives the public part from d; x is only needed by the JWK format's shape.
  const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(secret)]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  privateKeys.set(secret, { bytes: Buffer.from(secret), key });
  return key;
}

function cachedPublic(id: string, make: () => KeyObject): KeyObject {
  let key = publicKeys.get(id);
  if (!key) {
    if (publicKeys.size >= PUBLIC_CACHE_MAX) publicKeys.clear();
    key = make();
    publicKeys.set(id, key);
  }
  return key;
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  if (pub.length !== 32) throw secaggError('SECAGG_BAD_MESSAGE', `an X25519 public key has 32 bytes, got ${pub.length}`, 'the key advertisement is malformed');
  const x = b64url(pub);
  return cachedPublic('x25519:' + x, () => createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'X25519', x } }));
}

/** X25519(secret, pub); an all-zero result (a low-order public key) is refused. */
export function sharedSecret(secret: Uint8Array, pub: Uint8Array): Uint8Array {
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey: privateKeyObject(secret), publicKey: publicKeyObject(pub) });
  } catch (e) {
    throw secaggError('SECAGG_BAD_MESSAGE', `X25519 failed: ${(e as Error).message}`, 'a member advertised a low-order or invalid public key');
  }
  if (z.every((b) => b === 0)) throw secaggError('SECAGG_BAD_MESSAGE', 'X25519 gave the all-zero secret', 'a member advertised a low-order public key');
  return new Uint8Array(z);
}

// ---------------------------------------------------------------------------------------------
// Length-prefixed encodings: lp(x) = u32 BE length ‖ x, so no two field lists share an encoding.

const utf8 = new TextEncoder();

export function lp(...parts: (Uint8Array | string | number)[]): Uint8Array {
  const bufs: Buffer[] = [];
  for (const p of parts) {
    let b: Buffer;
    if (typeof p === 'string') b = Buffer.from(utf8.encode(p));
    else if (typeof p === 'number') { b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(p)); }
    else b = Buffer.from(p);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    bufs.push(len, b);
  }
  return new Uint8Array(Buffer.concat(bufs));
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, 32));
}

/**
 * The pairwise mask seed of members a and b for one round: HKDF-SHA256 over X25519(s_a, S_b), salted
 * with both mask public keys, the consortium id, round and both peer IDs (in sorted order) in the info.
 */
export function pairwiseSeed(shared: Uint8Array, consortium: string, round: number, a: { member: string; sPub: Uint8Array }, b: { member: string; sPub: Uint8Array }): Uint8Array {
  const [lo, hi] = a.member < b.member ? [a, b] : [b, a];
  return hkdf(shared, Buffer.concat([lo.sPub, hi.sPub]), lp('fedtwin/secagg/mask-seed/v1', consortium, round, lo.member, hi.member));
}

/** The AES-256-GCM key for shares between two members, from their share (c) key pairs. */
export function shareKey(shared: Uint8Array, consortium: string, round: number, a: { member: string; cPub: Uint8Array }, b: { member: string; cPub: Uint8Array }): Uint8Array {
  const [lo, hi] = a.member < b.member ? [a, b] : [b, a];
  return hkdf(shared, Buffer.concat([lo.cPub, hi.cPub]), lp('fedtwin/secagg/share-key/v1', consortium, round, lo.member, hi.member));
}

/** The self-mask seed of a member from its b (the 32-byte secret it Shamir-shares). */
export function selfMaskSeed(b: Uint8Array, consortium: string, round: number, member: string): Uint8Array {
  return hkdf(b, new Uint8Array(0), lp('fedtwin/secagg/self-mask/v1', consortium, round, member));
}

/** Public commitment to b, so a reconstruction from wrong shares is detected (b has 256 bits of entropy). */
export function commitB(b: Uint8Array, consortium: string, round: number, member: string): Uint8Array {
  return hkdf(b, new Uint8Array(0), lp('fedtwin/secagg/b-commit/v1', consortium, round, member));
}

// ---------------------------------------------------------------------------------------------
// AEAD for shares: AES-256-GCM, random 96-bit nonce, AAD binds consortium, round, sender and recipient
// (the key is symmetric in the pair; the AAD gives it a direction).

export function shareAad(consortium: string, round: number, from: string, to: string): Uint8Array {
  return lp('fedtwin/secagg/share/v1', consortium, round, from, to);
}

export function seal(key: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { nonce: Uint8Array; ciphertext: Uint8Array } {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { nonce: new Uint8Array(nonce), ciphertext: new Uint8Array(body) };
}

export function open(key: Uint8Array, aad: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (nonce.length !== 12 || ciphertext.length < 16) throw secaggError('SECAGG_BAD_MESSAGE', 'malformed encrypted share', 'the share message is truncated');
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    return new Uint8Array(Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]));
  } catch {
    throw secaggError('SECAGG_SHARE_DECRYPT_FAILED', 'an encrypted share does not open', 'the share was altered, re-addressed or replayed from another round');
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures with the libp2p identity.

export function verifyIdentitySignature(peerId: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  let key = publicKeys.get('ed25519:' + peerId);
  if (!key) {
    let raw: Uint8Array;
    try {
      const id = peerIdFromString(peerId);
      if (id.type !== 'Ed25519' || id.publicKey === undefined) return false;
      raw = id.publicKey.raw;
    } catch {
      return false;
    }
    key = cachedPublic('ed25519:' + peerId, () => createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) } }));
  }
  try {
    return edVerify(null, message, key, signature);
  } catch {
    return false;
  }
}
