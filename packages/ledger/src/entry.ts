// Ledger entries: typed payloads, canonical JSON (RFC 8785 style), signed by the author's libp2p Ed25519 key.
//
// Envelope (the exact leaf data) = canonical JSON {"author": <peer ID>, "payload": {...}, "sig": <base64>}.
// Signed message (v2) = "fedtwin-ledger-entry/v2\n" || origin || "\n" || canonical JSON {"author", "payload"}, so an
// entry cannot be re-attributed to another author or replayed into another log, and the signature covers every
// payload byte. Retired v1 signatures ("fedtwin-ledger-entry/v1\n" || canonical JSON, bound to no log) are refused.
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { peerIdFromString, type peerIdFromPrivateKey } from '@libp2p/peer-id';
import { FedtwinError } from '@fedtwin/errors';
import { toBase64, utf8, utf8Strict } from './bytes.ts';
import { hashLeaf } from './merkle.ts';

/** Entries above this size are refused before parsing. */
export const MAX_ENTRY_BYTES = 64 * 1024;
/** Retired v1 context (the signature bound no log); v1 entries are refused, and named as such in the error. */
export const ENTRY_SIGN_CONTEXT = 'fedtwin-ledger-entry/v1\n';
/** Current context: "fedtwin-ledger-entry/v2\n" || origin || "\n" || canonical JSON {author, payload}. */
export const ENTRY_SIGN_CONTEXT_V2 = 'fedtwin-ledger-entry/v2\n';
const SIGN_CONTEXT_BYTES = new TextEncoder().encode(ENTRY_SIGN_CONTEXT);
const SIG_B64 = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

// ---------------------------------------------------------------------------------------------
// Canonical JSON: object keys sorted by UTF-16 code units, no whitespace, ECMAScript number and string
// serialization (which is what RFC 8785 prescribes). Only JSON values; non-finite numbers are refused.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  return canon(value, 0);
}

function canon(v: unknown, depth: number): string {
  if (depth > 32) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'value nests deeper than 32 levels');
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new FedtwinError('LEDGER_ENTRY_INVALID', `number ${v} has no JSON form`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return '[' + v.map((x) => canon(x, depth + 1)).join(',') + ']';
  if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canon(o[k], depth + 1)).join(',') + '}';
  }
  throw new FedtwinError('LEDGER_ENTRY_INVALID', `a ${typeof v} is not a JSON value`);
}

// ---------------------------------------------------------------------------------------------
// Payload schemas (validated on create and on decode).

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256 hash)');
const peerIdText = z
  .string()
  .regex(/^(?:[1-9A-HJ-NP-Za-km-z]{32,128}|b[a-z2-7]{40,200})$/, 'must be a libp2p peer ID (base58btc or base32 CID)');
const roundNo = z.int().nonnegative().max(2 ** 40);
const count = z.int().nonnegative();
const epsilon = z.number().nonnegative();
const delta = z.number().min(0).max(1);
const shortText = z.string().min(1).max(1024);
const time = z.int().nonnegative().optional(); // ms since the Unix epoch, when the author wants one

/** The ledger's first entry: the consortium manifest every member pinned (its hash), aggregator-signed. */
export const consortiumPayloadSchema = z.strictObject({
  type: z.literal('consortium'),
  v: z.literal(1),
  consortium: z.string().min(1).max(200),
  manifestHash: hex32,
  aggregator: peerIdText,
  members: z.array(peerIdText).max(10_000),
  time,
});

export const membershipPayloadSchema = z.strictObject({
  type: z.literal('membership'),
  v: z.literal(1),
  action: z.enum(['admit', 'remove']),
  peerId: peerIdText,
  note: shortText.optional(),
  time,
});

export const roundPayloadSchema = z.strictObject({
  type: z.literal('round'),
  v: z.literal(1),
  action: z.literal('open'),
  round: roundNo,
  config: z.record(z.string(), z.json()),
  globalVersion: hex32.optional(),
  time,
});

export const contributionPayloadSchema = z.strictObject({
  type: z.literal('contribution'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  ciphertextHash: hex32,
  ciphertextSize: count,
  sampleCount: count.optional(),
  /** Record-level DP-SGD: the member's DP count Ñ of its records (units) its q = min(1, B/Ñ) derives from, released
   *  once (Gaussian, σ = countNoise, sensitivity 1) and charged in its epsilonTotal from its first contribution. */
  countEstimate: z.int().positive().max(2 ** 40).optional(),
  countNoise: z.number().gt(0).max(1e6).optional(),
  /** privacy spent in this round */
  epsilon,
  delta,
  /** privacy spent by this node so far, this round included */
  epsilonTotal: epsilon,
  deltaTotal: delta,
  keyId: shortText,
  globalVersion: hex32.optional(),
  /**
   * The mechanism this round's ε was computed from (optional): a sampled Gaussian or a Skellam mechanism applied
   * `steps` times, accounted at `delta`. When present, `verify` recomputes ε with @fedtwin/dp and refuses an under-report.
   */
  mechanism: z
    .strictObject({
      /**
       * Which noise: absent or 'gaussian' (the sampled Gaussian of q and z, as before), or 'skellam' (integer
       * noise Poisson(μ) − Poisson(μ) on integer vectors of sensitivities l2, l1; q = 1, z = √(2μ)/l2 for display:
       * the ε comes from μ, l1, l2, docs/privacy.md).
       */
      kind: z.enum(['gaussian', 'skellam']).optional(),
      sampleRate: z.number().gt(0).max(1),
      noiseMultiplier: z.number().gt(0).max(1e6),
      steps: z.int().positive().max(1e9),
      delta: z.number().gt(0).lt(1),
      mu: z.number().gt(0).max(1e15).optional(),
      l1: z.number().gt(0).max(1e15).optional(),
      l2: z.number().gt(0).max(1e15).optional(),
    })
    .refine((m) => (m.kind === 'skellam') === (m.mu !== undefined && m.l1 !== undefined && m.l2 !== undefined) && (m.kind === 'skellam' || (m.mu === undefined && m.l1 === undefined && m.l2 === undefined)), 'a skellam mechanism names mu, l1 and l2; a gaussian one none of them')
    .optional(),
  time,
});

export const aggregatePayloadSchema = z.strictObject({
  type: z.literal('aggregate'),
  v: z.literal(1),
  round: roundNo,
  /** leaf indices of the contribution entries summed into this aggregate, ascending */
  contributions: z
    .array(count)
    .max(100_000)
    .refine((a) => a.every((x, i) => i === 0 || x > a[i - 1]), 'must be strictly increasing leaf indices'),
  aggregateHash: hex32,
  modelVersion: hex32,
  time,
});

export const keyPayloadSchema = z.strictObject({
  type: z.literal('key'),
  v: z.literal(1),
  event: z.enum(['ceremony', 'rotation', 'revocation']),
  keyId: shortText,
  previousKeyId: shortText.optional(),
  publicKeyHash: hex32.optional(),
  holders: z.array(peerIdText).max(1024).optional(),
  time,
});

export const refusalPayloadSchema = z.strictObject({
  type: z.literal('refusal'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  reason: shortText,
  epsilonRemaining: epsilon.optional(),
  epsilonRequired: epsilon.optional(),
  time,
});

/**
 * A member's verdict on a sum it was given to decrypt: a published aggregate (`version`) or a probe (a
 * subset sum the aggregator builds to find a contribution that breaks decryption). Member-signed.
 */
export const verdictPayloadSchema = z.strictObject({
  type: z.literal('verdict'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  /** SHA-256 of the sum's exact bytes */
  sumHash: hex32,
  /** how many contributions the sum holds */
  participants: count,
  /** the aggregate version, when the sum is a published aggregate */
  version: count.optional(),
  /** the probe id, when the sum is a probe */
  probe: z.string().min(1).max(64).optional(),
  valid: z.boolean(),
  reason: shortText.optional(),
  time,
});

/**
 * What the aggregator decided from members' verdicts: `withdraw` an aggregate that members cannot use,
 * `exclude` a member whose contribution broke it (or who reported falsely) for the rest of the federation.
 * `evidence`: leaf indices of the verdict entries the decision rests on. Aggregator-signed.
 */
export const exclusionPayloadSchema = z.strictObject({
  type: z.literal('exclusion'),
  v: z.literal(1),
  round: roundNo,
  action: z.enum(['withdraw', 'exclude']),
  peerId: peerIdText.optional(),
  aggregateHash: hex32.optional(),
  reason: shortText,
  evidence: z.array(count).max(100_000),
  time,
});

// Secure aggregation by pairwise masking (docs/he.md §9): what an audit needs to replay who revealed what.
const b64Text = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const shareRevealSchema = z.strictObject({ owner: peerIdText, y: b64Text(128) });

/** A member's X25519 public keys for one round, with its identity signature over them (member-signed). */
export const secaggKeysPayloadSchema = z.strictObject({
  type: z.literal('secagg-keys'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  cPub: b64Text(64),
  sPub: b64Text(64),
  /** the advertisement's signature (fedtwin/secagg/keys/v1), so the keys replay without this entry's envelope */
  signature: b64Text(128),
  time,
});

/** A member's commitment to its self-mask seed b and the hash of the encrypted share bundle it sent (member-signed). */
export const secaggSharesPayloadSchema = z.strictObject({
  type: z.literal('secagg-shares'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  bCommit: hex32,
  /** SHA-256 of the canonical JSON of the encrypted shares, in neighbour order */
  sharesHash: hex32,
  recipients: z.array(peerIdText).max(100_000),
  time,
});

/** What a `secagg-shares` entry names as the bundle's hash: SHA-256 (hex) of the canonical JSON of the encrypted shares (base64 fields), in order. */
export function secaggSharesHash(shares: readonly { from: string; to: string; nonce: string; ciphertext: string }[]): string {
  const json = canonicalJson(shares.map((x) => ({ from: x.from, to: x.to, nonce: x.nonce, ciphertext: x.ciphertext })));
  return createHash('sha256').update(json).digest('hex');
}

/** The round's one recovery request (aggregator-signed): members answer only this entry, read in their replica. */
export const secaggRecoveryPayloadSchema = z.strictObject({
  type: z.literal('secagg-recovery'),
  v: z.literal(1),
  round: roundNo,
  /** the consortium id the request digest binds */
  consortium: shortText,
  threshold: count,
  degree: count.optional(),
  /** members whose masked inputs are in the sum (reveal their b-shares) */
  survivors: z.array(peerIdText).max(100_000),
  /** members who shared but whose input is not in the sum (reveal their s-shares) */
  dropped: z.array(peerIdText).max(100_000),
  /** hex of @fedtwin/secagg's requestDigest: what every reveal quotes */
  digest: hex32,
  time,
});

/** A member's answer to the recovery request: the shares it reveals (member-signed). */
export const secaggRevealPayloadSchema = z.strictObject({
  type: z.literal('secagg-reveal'),
  v: z.literal(1),
  round: roundNo,
  node: peerIdText,
  digest: hex32,
  bShares: z.array(shareRevealSchema).max(1024),
  sShares: z.array(shareRevealSchema).max(1024),
  time,
});

export const entryPayloadSchema = z.discriminatedUnion('type', [
  secaggKeysPayloadSchema,
  secaggSharesPayloadSchema,
  secaggRecoveryPayloadSchema,
  secaggRevealPayloadSchema,
  consortiumPayloadSchema,
  membershipPayloadSchema,
  roundPayloadSchema,
  contributionPayloadSchema,
  aggregatePayloadSchema,
  keyPayloadSchema,
  refusalPayloadSchema,
  verdictPayloadSchema,
  exclusionPayloadSchema,
]);

export type EntryPayload = z.infer<typeof entryPayloadSchema>;
export type EntryType = EntryPayload['type'];
export type MembershipPayload = z.infer<typeof membershipPayloadSchema>;
export type RoundPayload = z.infer<typeof roundPayloadSchema>;
export type ContributionPayload = z.infer<typeof contributionPayloadSchema>;
export type AggregatePayload = z.infer<typeof aggregatePayloadSchema>;
export type KeyPayload = z.infer<typeof keyPayloadSchema>;
export type RefusalPayload = z.infer<typeof refusalPayloadSchema>;
export type ConsortiumPayload = z.infer<typeof consortiumPayloadSchema>;
export type VerdictPayload = z.infer<typeof verdictPayloadSchema>;
export type ExclusionPayload = z.infer<typeof exclusionPayloadSchema>;
export type SecaggKeysPayload = z.infer<typeof secaggKeysPayloadSchema>;
export type SecaggSharesPayload = z.infer<typeof secaggSharesPayloadSchema>;
export type SecaggRecoveryPayload = z.infer<typeof secaggRecoveryPayloadSchema>;
export type SecaggRevealPayload = z.infer<typeof secaggRevealPayloadSchema>;
/** A payload as the caller writes it: `v` defaults to the current version. */
export type EntryPayloadInput = EntryPayload extends infer P ? (P extends { v: 1 } ? Omit<P, 'v'> & { v?: 1 } : never) : never;

export const ENTRY_TYPES: readonly EntryType[] = ['membership', 'round', 'contribution', 'aggregate', 'key', 'refusal', 'verdict', 'exclusion', 'consortium', 'secagg-keys', 'secagg-shares', 'secagg-recovery', 'secagg-reveal'];

function formatIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
}

export function validatePayload(payload: unknown): EntryPayload {
  const r = entryPayloadSchema.safeParse(payload);
  if (!r.success) throw new FedtwinError('LEDGER_ENTRY_INVALID', `invalid entry payload: ${formatIssues(r.error)}`, { details: { issues: r.error.issues } });
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// Keys. Signing and verifying go through cached node:crypto KeyObjects (libp2p's helpers rebuild
// a KeyObject on every call, which costs more than the signature itself).

type Libp2pPrivateKey = Parameters<typeof peerIdFromPrivateKey>[0];

export interface EntrySigner {
  /** the author's peer ID (base58btc) */
  readonly peerId: string;
  /** raw 32-byte Ed25519 public key */
  readonly publicKey: Uint8Array;
  /** the log origin entries are bound to (v2 signatures) */
  readonly origin: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
  signSync(message: Uint8Array): Uint8Array;
}

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/** Node KeyObject for a raw Ed25519 private key seed and its public key. */
export function ed25519PrivateKeyObject(seed: Uint8Array, publicKey: Uint8Array): KeyObject {
  return createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: b64url(publicKey) } });
}

export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.byteLength !== 32) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `an Ed25519 public key has 32 bytes, got ${publicKey.byteLength}`);
  return createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) } });
}

export function asyncSign(key: KeyObject, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => nodeSign(null, message, key, (err, sig) => (err ? reject(err) : resolve(new Uint8Array(sig)))));
}

export function asyncVerify(key: KeyObject, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => nodeVerify(null, message, key, signature, (err, ok) => resolve(!err && ok)));
}

/** Wraps a libp2p Ed25519 private key (from `generateKeyPair('Ed25519')` or `privateKeyFromProtobuf`). */
export function createEntrySigner(privateKey: Libp2pPrivateKey, origin: string): EntrySigner {
  if (typeof origin !== 'string' || origin.length === 0 || /[\u0000-\u001f]/.test(origin)) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `entry origin ${JSON.stringify(origin)} must be a non-empty single line (the log origin, e.g. fedtwin/<consortium>)`);
  }
  if (privateKey.type !== 'Ed25519') {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `ledger entries are signed with Ed25519 keys, got a ${privateKey.type} key`, {
      hint: "create the identity with generateKeyPair('Ed25519')",
    });
  }
  const publicKey = privateKey.publicKey.raw;
  const key = ed25519PrivateKeyObject(privateKey.raw.subarray(0, 32), publicKey);
  const peerId = privateKey.publicKey.toString();
  return {
    peerId,
    publicKey,
    origin,
    sign: (m) => asyncSign(key, m),
    signSync: (m) => new Uint8Array(nodeSign(null, m, key)),
  };
}

const publicKeyCache = new Map<string, { raw: Uint8Array; key: KeyObject }>();

function peerKey(peerId: string): { raw: Uint8Array; key: KeyObject } {
  const hit = publicKeyCache.get(peerId);
  if (hit) return hit;
  let raw: Uint8Array;
  try {
    const id = peerIdFromString(peerId);
    if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new Error(`peer ID type ${id.type} does not embed an Ed25519 key`);
    raw = id.publicKey.raw;
  } catch (e) {
    throw new FedtwinError('LEDGER_ENTRY_INVALID', `author ${JSON.stringify(peerId.slice(0, 80))} is not an Ed25519 peer ID: ${(e as Error).message}`);
  }
  const v = { raw, key: ed25519PublicKeyObject(raw) };
  if (publicKeyCache.size > 10_000) publicKeyCache.clear();
  publicKeyCache.set(peerId, v);
  return v;
}

/** The Ed25519 public key inside a peer ID (identity multihash), as a cached KeyObject. */
export function publicKeyOfPeerId(peerId: string): KeyObject {
  return peerKey(peerId).key;
}

/** The raw 32-byte Ed25519 public key inside a peer ID. */
export function publicKeyRawOfPeerId(peerId: string): Uint8Array {
  return peerKey(peerId).raw;
}

// ---------------------------------------------------------------------------------------------
// Entries.

export interface LedgerEntry {
  /** exact envelope bytes = the Merkle leaf data */
  readonly bytes: Uint8Array;
  readonly author: string;
  readonly payload: EntryPayload;
  readonly signature: Uint8Array;
  /** RFC 6962 leaf hash of `bytes` */
  readonly leafHash: Uint8Array;
  /** ENTRY_SIGN_CONTEXT || canonical JSON {author, payload} (the retired v1 message; entrySignedMessage builds the v2 one from it) */
  readonly signedMessage: Uint8Array;
}

/**
 * Entries whose signature this process has checked (or made), with the origin it holds for; appends skip
 * re-verifying them for that origin.
 */
const verified = new WeakMap<LedgerEntry, string>();

/** Whether `e`'s signature was checked or made here for `origin` (without one: for any origin). */
export function isVerifiedEntry(e: LedgerEntry, origin?: string): boolean {
  const o = verified.get(e);
  return o !== undefined && (origin === undefined || o === origin);
}

/** The origin an entry's signature was checked or made for, undefined if unchecked. */
export function verifiedOrigin(e: LedgerEntry): string | undefined {
  return verified.get(e);
}

/** The message a v2 signature covers: ENTRY_SIGN_CONTEXT_V2 || origin || "\n" || canonical JSON {author, payload}. */
export function entrySignedMessage(e: Pick<LedgerEntry, 'signedMessage'>, origin: string): Uint8Array {
  const head = utf8.encode(`${ENTRY_SIGN_CONTEXT_V2}${origin}\n`);
  const body = e.signedMessage.subarray(SIGN_CONTEXT_BYTES.byteLength);
  const m = new Uint8Array(head.byteLength + body.byteLength);
  m.set(head, 0);
  m.set(body, head.byteLength);
  return m;
}

function signedMessageFor(author: string, payload: EntryPayload): Uint8Array {
  return utf8.encode(ENTRY_SIGN_CONTEXT + canonicalJson({ author, payload }));
}

function signerOrigin(signer: EntrySigner): string {
  if (typeof signer.origin !== 'string' || signer.origin.length === 0) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'the entry signer has no log origin (v1 entries, bound to no log, are no longer made)', {
      hint: 'create the signer with createEntrySigner(key, origin), origin = the log origin (fedtwin/<consortium>)',
    });
  }
  return signer.origin;
}

/** Validates the payload, signs it (v2, bound to the signer's origin) and returns the entry with its canonical bytes. */
export async function createEntry(payload: EntryPayloadInput, signer: EntrySigner): Promise<LedgerEntry> {
  const p = validatePayload({ v: 1, ...payload });
  const signedMessage = signedMessageFor(signer.peerId, p);
  const signature = await signer.sign(entrySignedMessage({ signedMessage }, signerOrigin(signer)));
  return finishCreate(p, signer.peerId, signature, signedMessage, signer.origin);
}

/** Synchronous variant of `createEntry` (blocks the event loop for one signature). */
export function createEntrySync(payload: EntryPayloadInput, signer: EntrySigner): LedgerEntry {
  const p = validatePayload({ v: 1, ...payload });
  const signedMessage = signedMessageFor(signer.peerId, p);
  const signature = signer.signSync(entrySignedMessage({ signedMessage }, signerOrigin(signer)));
  return finishCreate(p, signer.peerId, signature, signedMessage, signer.origin);
}

function finishCreate(payload: EntryPayload, author: string, signature: Uint8Array, signedMessage: Uint8Array, origin: string): LedgerEntry {
  const bytes = utf8.encode(canonicalJson({ author, payload, sig: toBase64(signature) }));
  if (bytes.byteLength > MAX_ENTRY_BYTES) throw new FedtwinError('LEDGER_ENTRY_INVALID', `entry is ${bytes.byteLength} bytes, above the ${MAX_ENTRY_BYTES}-byte cap`);
  const e: LedgerEntry = { bytes, author, payload, signature, leafHash: hashLeaf(bytes), signedMessage };
  verified.set(e, origin);
  return e;
}

/** Keys of every object, recursively, already in sorted order? */
function keysSorted(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  if (Array.isArray(v)) return v.every(keysSorted);
  const keys = Object.keys(v);
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] >= keys[i]) return false;
  return keys.every((k) => keysSorted((v as Record<string, unknown>)[k]));
}

/**
 * text === canonicalJson(parsed). Fast path: JSON.parse keeps source key order (except integer-like keys),
 * so sorted keys plus JSON.stringify reproducing the text byte for byte is the same check without sorting.
 */
function isCanonical(parsed: unknown, text: string): boolean {
  if (keysSorted(parsed) && JSON.stringify(parsed) === text) return true;
  try {
    return canonicalJson(parsed) === text;
  } catch {
    return false;
  }
}

/**
 * Parses envelope bytes without checking the signature: size cap, UTF-8, JSON, canonical form (the bytes
 * must be exactly what canonicalJson would produce), envelope shape and payload schema.
 */
export function parseEntry(bytes: Uint8Array): LedgerEntry {
  if (!(bytes instanceof Uint8Array)) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry must be bytes');
  if (bytes.byteLength > MAX_ENTRY_BYTES) throw new FedtwinError('LEDGER_ENTRY_INVALID', `entry is ${bytes.byteLength} bytes, above the ${MAX_ENTRY_BYTES}-byte cap`);
  let text: string;
  let obj: unknown;
  try {
    text = utf8Strict.decode(bytes);
    obj = JSON.parse(text);
  } catch (e) {
    throw new FedtwinError('LEDGER_ENTRY_INVALID', `entry is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry is not a JSON object');
  const env = obj as Record<string, unknown>;
  const keys = Object.keys(env).sort().join(',');
  if (keys !== 'author,payload,sig') throw new FedtwinError('LEDGER_ENTRY_INVALID', `entry envelope must have exactly author, payload, sig; has ${keys}`);
  if (typeof env.author !== 'string' || typeof env.sig !== 'string') throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry author and sig must be strings');
  if (!isCanonical(env, text)) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry bytes are not in canonical JSON form (sorted keys, no whitespace)');
  const payload = validatePayload(env.payload);
  // Canonical base64 of 64 bytes: 85 chars, one whose low 4 bits are zero, then "==".
  if (!SIG_B64.test(env.sig)) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry sig is not a base64 64-byte Ed25519 signature');
  const signature: Uint8Array = Buffer.from(env.sig, 'base64');
  if (!peerIdText.safeParse(env.author).success) throw new FedtwinError('LEDGER_ENTRY_INVALID', 'entry author is not a libp2p peer ID');
  // The signed part is the envelope minus its trailing `,"sig":"…"` member (canonical form puts it last,
  // and base64 is ASCII, so byte and character offsets agree there).
  const cut = bytes.byteLength - env.sig.length - 10;
  const signedMessage = new Uint8Array(SIGN_CONTEXT_BYTES.byteLength + cut + 1);
  signedMessage.set(SIGN_CONTEXT_BYTES, 0);
  signedMessage.set(bytes.subarray(0, cut), SIGN_CONTEXT_BYTES.byteLength);
  signedMessage[signedMessage.byteLength - 1] = 0x7d; // '}'
  return { bytes, author: env.author, payload, signature, leafHash: hashLeaf(bytes), signedMessage };
}

/**
 * The error for an entry whose signature does not verify for `origin`. An entry carrying a retired v1
 * signature (bound to no log) is named as such, so an old ledger or an old client is told what is wrong.
 */
function signatureError(e: LedgerEntry, origin?: string): FedtwinError {
  if (isV1Signed(e)) {
    return new FedtwinError(
      'LEDGER_SIGNATURE_INVALID',
      `entry by ${e.author} has a v1 signature (fedtwin-ledger-entry/v1, bound to no log origin); v1 entries are no longer accepted, only v2 signatures bound to the log origin${origin === undefined ? '' : ` ${origin}`}`,
      { hint: 'the entry was made by an old client or comes from an old ledger: re-sign it with createEntrySigner(key, origin)', details: { author: e.author, format: 'v1' } },
    );
  }
  return new FedtwinError('LEDGER_SIGNATURE_INVALID', `entry signature does not verify against its author ${e.author}${origin === undefined ? '' : ` for the log origin ${origin}`}`, {
    hint: 'the entry was forged, altered after signing, or signed for another log',
    details: { author: e.author },
  });
}

/** Whether `e` carries a retired v1 signature (over ENTRY_SIGN_CONTEXT || canonical JSON, bound to no log). */
export function isV1Signed(e: LedgerEntry): boolean {
  try {
    return nodeVerify(null, e.signedMessage, publicKeyOfPeerId(e.author), e.signature);
  } catch {
    return false;
  }
}

/** Checks the v2 Ed25519 signature (bound to the log `origin`) against the key embedded in the author's peer ID. */
export function verifyEntrySignature(e: LedgerEntry, origin: string): boolean {
  if (typeof origin !== 'string') return false;
  const key = publicKeyOfPeerId(e.author);
  const ok = nodeVerify(null, entrySignedMessage(e, origin), key, e.signature);
  if (ok) verified.set(e, origin);
  return ok;
}

/** Same as verifyEntrySignature on libuv's thread pool, so many checks run in parallel. */
export async function verifyEntrySignatureAsync(e: LedgerEntry, origin: string): Promise<boolean> {
  if (typeof origin !== 'string') return false;
  const key = publicKeyOfPeerId(e.author);
  const ok = await asyncVerify(key, entrySignedMessage(e, origin), e.signature);
  if (ok) verified.set(e, origin);
  return ok;
}

/** parseEntry + v2 signature check for the log `origin`; throws LEDGER_ENTRY_INVALID or LEDGER_SIGNATURE_INVALID (a v1 entry: the latter, naming v1). */
export function decodeEntry(bytes: Uint8Array, origin: string): LedgerEntry {
  const e = parseEntry(bytes);
  if (!verifyEntrySignature(e, origin)) throw signatureError(e, origin);
  return e;
}

export async function decodeEntryAsync(bytes: Uint8Array, origin: string): Promise<LedgerEntry> {
  const e = parseEntry(bytes);
  if (!(await verifyEntrySignatureAsync(e, origin))) throw signatureError(e, origin);
  return e;
}

export { signatureError as entrySignatureError };

// ---------------------------------------------------------------------------------------------
// Authorship: who may sign what.

/** Entry types a member signs about itself (`payload.node` must be the author). */
export const MEMBER_ENTRY_TYPES: ReadonlySet<EntryType> = new Set<EntryType>(['contribution', 'refusal', 'verdict', 'secagg-keys', 'secagg-shares', 'secagg-reveal']);

/**
 * Why `e` breaks the authorship rules, or undefined: `contribution`, `refusal` and `verdict` are signed by
 * the node they name; every other type (consortium, membership, round, aggregate, key, exclusion) by the
 * aggregator. `isAggregator(author)` says whether an author is the log's aggregator.
 */
export function authorshipViolation(e: Pick<LedgerEntry, 'author' | 'payload'>, isAggregator: (author: string) => boolean): string | undefined {
  const p = e.payload;
  if (p.type === 'contribution' || p.type === 'refusal' || p.type === 'verdict' || p.type === 'secagg-keys' || p.type === 'secagg-shares' || p.type === 'secagg-reveal') {
    return p.node === e.author ? undefined : `a ${p.type} in the name of ${p.node} signed by ${e.author}; only the node it names may sign it`;
  }
  return isAggregator(e.author) ? undefined : `a ${p.type} entry signed by ${e.author}, who is not the log's aggregator; only the aggregator signs ${p.type} entries`;
}

/** isAggregator for the aggregator's raw Ed25519 key (authors compared by the key inside their peer ID). */
export function isAuthorKey(publicKey: Uint8Array): (author: string) => boolean {
  const hex = Buffer.from(publicKey).toString('hex');
  const memo = new Map<string, boolean>();
  return (author) => {
    let v = memo.get(author);
    if (v === undefined) {
      try {
        v = Buffer.from(publicKeyRawOfPeerId(author)).toString('hex') === hex;
      } catch {
        v = false;
      }
      if (memo.size < 100_000) memo.set(author, v);
    }
    return v;
  };
}

