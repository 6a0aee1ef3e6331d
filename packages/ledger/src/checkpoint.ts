// Checkpoints in the C2SP tlog-checkpoint format, carried in C2SP signed notes (Ed25519, type 0x01).
//
//   <origin>\n<tree size>\n<base64 root hash>\n        <- note text (signed bytes)
//   \n
//   — <key name> <base64(4-byte key ID || 64-byte signature)>\n   <- one line per signer
//
// The aggregator signs under the origin as key name; each witness (member node) co-signs the same
// note text under its peer ID and appends its own line. key ID = SHA-256(name || 0x0A || 0x01 || pubkey)[:4].
import { createHash, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { peerIdFromString, type peerIdFromPrivateKey } from '@libp2p/peer-id';
import { FedtwinError } from '@fedtwin/errors';
import { bytesEqual, concatBytes, fromBase64, toBase64, utf8 } from './bytes.ts';
import { ed25519PrivateKeyObject, ed25519PublicKeyObject } from './entry.ts';
import { HASH_SIZE } from './merkle.ts';

export const MAX_NOTE_BYTES = 64 * 1024;
export const MAX_NOTE_SIGNATURES = 100;
const SIG_TYPE_ED25519 = 0x01;
const EM_DASH = '\u2014';

type Libp2pPrivateKey = Parameters<typeof peerIdFromPrivateKey>[0];

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** optional extension lines (not recommended by the spec; kept for round-tripping) */
  extensions: string[];
}

export interface NoteSignature {
  name: string;
  keyId: number;
  /** the raw signature, without the key ID */
  signature: Uint8Array;
  /** the full signature line, without its newline */
  line: string;
}

export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  sign(text: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

function noteError(message: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError('LEDGER_CHECKPOINT_INVALID', message, { details, hint: 'the checkpoint note is malformed, forged or signed by an unexpected key' });
}

export function checkKeyName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256 || /[\s+]/u.test(name) || /[\u0000-\u001f]/.test(name)) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `key name ${JSON.stringify(name)} must be non-empty, at most 256 characters, without spaces or '+'`);
  }
}

export function noteKeyId(name: string, publicKey: Uint8Array): number {
  const h = createHash('sha256').update(utf8.encode(name)).update(new Uint8Array([0x0a, SIG_TYPE_ED25519])).update(publicKey).digest();
  return h.readUInt32BE(0);
}

function keyIdBytes(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id);
  return b;
}

export function createNoteSigner(name: string, privateKey: Libp2pPrivateKey): NoteSigner {
  checkKeyName(name);
  if (privateKey.type !== 'Ed25519') throw new FedtwinError('LEDGER_BAD_ARGUMENT', `checkpoints are signed with Ed25519 keys, got ${privateKey.type}`);
  const publicKey = privateKey.publicKey.raw;
  const key = ed25519PrivateKeyObject(privateKey.raw.subarray(0, 32), publicKey);
  return { name, keyId: noteKeyId(name, publicKey), publicKey, sign: (text) => new Uint8Array(nodeSign(null, text, key)) };
}

export function createNoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  checkKeyName(name);
  const key: KeyObject = ed25519PublicKeyObject(publicKey);
  return {
    name,
    keyId: noteKeyId(name, publicKey),
    publicKey,
    verify: (text, sig) => sig.byteLength === 64 && nodeVerify(null, text, key, sig),
  };
}

/** Verifier for the Ed25519 key inside a peer ID; the key name defaults to the peer ID itself. */
export function noteVerifierFromPeerId(peerId: string, name = peerId): NoteVerifier {
  const id = peerIdFromString(peerId);
  if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `peer ID ${peerId} does not embed an Ed25519 key`);
  return createNoteVerifier(name, id.publicKey.raw);
}

/** C2SP verifier key text: <name>+<hex key ID>+<base64(0x01 || public key)>. */
export function formatVerifierKey(v: { name: string; publicKey: Uint8Array }): string {
  return `${v.name}+${noteKeyId(v.name, v.publicKey).toString(16).padStart(8, '0')}+${toBase64(concatBytes(new Uint8Array([SIG_TYPE_ED25519]), v.publicKey))}`;
}

export function parseVerifierKey(vkey: string): NoteVerifier {
  // The name has no '+', the hex part has none, the base64 part may: split on the first two only.
  const s = typeof vkey === 'string' ? vkey : '';
  const a = s.indexOf('+');
  const b = a < 0 ? -1 : s.indexOf('+', a + 1);
  const parts = a > 0 && b > a ? [s.slice(0, a), s.slice(a + 1, b), s.slice(b + 1)] : [];
  if (parts.length !== 3 || !/^[0-9a-f]{8}$/.test(parts[1])) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `verifier key ${JSON.stringify(String(vkey).slice(0, 100))} is not <name>+<8 hex>+<base64>`);
  const material = fromBase64(parts[2], 'verifier key material');
  if (material.byteLength !== 33 || material[0] !== SIG_TYPE_ED25519) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'verifier key is not an Ed25519 (type 0x01) key');
  const v = createNoteVerifier(parts[0], material.subarray(1));
  if (v.keyId !== parseInt(parts[1], 16)) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `verifier key ID ${parts[1]} does not match its name and key`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// C2SP tlog-cosignature (cosignature/v1, Ed25519, signature type 0x04). A witness's line is
//   — <name> base64(keyID[4] || timestamp[8, big-endian POSIX seconds] || Ed25519 signature[64])
// keyID = SHA-256(name || "\n" || 0x04 || public key)[:4]; the signed message is
//   "cosignature/v1\n" || "time <timestamp>\n" || checkpoint body (the note text, final newline included).

export const SIG_TYPE_COSIGNATURE_V1 = 0x04;
const COSIG_HEADER = 'cosignature/v1\n';

export function cosignatureKeyId(name: string, publicKey: Uint8Array): number {
  const h = createHash('sha256').update(utf8.encode(name)).update(new Uint8Array([0x0a, SIG_TYPE_COSIGNATURE_V1])).update(publicKey).digest();
  return h.readUInt32BE(0);
}

function cosignedMessage(timestamp: bigint, text: Uint8Array): Uint8Array {
  return concatBytes(utf8.encode(`${COSIG_HEADER}time ${timestamp.toString()}\n`), text);
}

/**
 * A cosigner as a NoteSigner: `sign(text)` returns timestamp || signature, so cosignNote/cosignatureLine
 * produce C2SP cosignature/v1 lines. `now` gives the time in ms (default Date.now).
 */
export function createCosignatureSigner(name: string, privateKey: Libp2pPrivateKey, now: () => number = Date.now): NoteSigner {
  checkKeyName(name);
  if (privateKey.type !== 'Ed25519') throw new FedtwinError('LEDGER_BAD_ARGUMENT', `cosignatures are made with Ed25519 keys, got ${privateKey.type}`);
  const publicKey = privateKey.publicKey.raw;
  const key = ed25519PrivateKeyObject(privateKey.raw.subarray(0, 32), publicKey);
  return {
    name,
    keyId: cosignatureKeyId(name, publicKey),
    publicKey,
    sign(text) {
      const ts = BigInt(Math.max(0, Math.floor(now() / 1000)));
      const out = new Uint8Array(72);
      new DataView(out.buffer).setBigUint64(0, ts);
      out.set(nodeSign(null, cosignedMessage(ts, text), key), 8);
      return out;
    },
  };
}

/** Verifier of cosignature/v1 lines by `publicKey` under `name`; `signature` is timestamp[8] || Ed25519[64]. */
export function createCosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  checkKeyName(name);
  const key: KeyObject = ed25519PublicKeyObject(publicKey);
  return {
    name,
    keyId: cosignatureKeyId(name, publicKey),
    publicKey,
    verify(text, sig) {
      if (sig.byteLength !== 72) return false;
      const ts = new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0);
      if (ts > 2n ** 63n - 1n) return false;
      return nodeVerify(null, cosignedMessage(ts, text), key, sig.subarray(8));
    },
  };
}

/** Cosignature/v1 verifier for the Ed25519 key inside a peer ID, key name = the peer ID. */
export function cosignatureVerifierFromPeerId(peerId: string): NoteVerifier {
  const id = peerIdFromString(peerId);
  if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `peer ID ${peerId} does not embed an Ed25519 key`);
  return createCosignatureVerifier(peerId, id.publicKey.raw);
}

/** The timestamp (POSIX seconds) of a cosignature/v1 signature (the bytes after the key ID). */
export function cosignatureTime(signature: Uint8Array): number {
  return Number(new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0));
}

// ---------------------------------------------------------------------------------------------
// Notes.

export interface ParsedNote {
  /** the signed text, including its final newline */
  text: string;
  signatures: NoteSignature[];
}

export function parseNote(note: string): ParsedNote {
  if (typeof note !== 'string') throw noteError('note must be a string');
  if (utf8.encode(note).byteLength > MAX_NOTE_BYTES) throw noteError(`note is larger than ${MAX_NOTE_BYTES} bytes`);
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw noteError('note contains control characters other than newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw noteError('note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const sigPart = note.slice(split + 2);
  if (!sigPart.endsWith('\n')) throw noteError('note must end with a newline');
  const lines = sigPart.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw noteError(`note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map((line, i) => {
    const m = /^\u2014 ([^ ]+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw noteError(`signature line ${i + 1} is not "— <name> <base64>"`);
    let raw: Uint8Array;
    try {
      raw = fromBase64(m[2], 'signature');
    } catch {
      throw noteError(`signature line ${i + 1} is not canonical base64`);
    }
    if (raw.byteLength < 5) throw noteError(`signature line ${i + 1} is too short`);
    const keyId = new DataView(raw.buffer, raw.byteOffset).getUint32(0);
    return { name: m[1], keyId, signature: raw.subarray(4), line };
  });
  if (signatures.length === 0) throw noteError('note has no signatures');
  return { text, signatures };
}

function signatureLine(signer: NoteSigner, text: string): string {
  const sig = signer.sign(utf8.encode(text));
  return `${EM_DASH} ${signer.name} ${toBase64(concatBytes(keyIdBytes(signer.keyId), sig))}`;
}

/** Signs a note text (which must end in a newline) and returns the full note. */
export function signNote(text: string, signer: NoteSigner): string {
  if (!text.endsWith('\n') || text.includes('\n\n')) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'note text must end in a newline and contain no blank line');
  return `${text}\n${signatureLine(signer, text)}\n`;
}

/** Adds `signer`'s signature line to an existing note (a witness co-signing); idempotent per key. */
export function cosignNote(note: string, signer: NoteSigner): string {
  const parsed = parseNote(note);
  if (parsed.signatures.some((s) => s.name === signer.name && s.keyId === signer.keyId)) return note;
  return `${note}${signatureLine(signer, parsed.text)}\n`;
}

/** Only the signature line `signer` would add (what a witness hands back). */
export function cosignatureLine(note: string, signer: NoteSigner): string {
  return signatureLine(signer, parseNote(note).text);
}

/** Union of the signature lines of notes over the same text (in first-seen order, deduplicated by key). */
export function mergeNotes(...notes: string[]): string {
  if (notes.length === 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'nothing to merge');
  const first = parseNote(notes[0]);
  const seen = new Map<string, string>();
  for (const n of notes) {
    const p = parseNote(n);
    if (p.text !== first.text) throw noteError('cannot merge signatures of notes with different texts', { textA: first.text, textB: p.text });
    for (const s of p.signatures) {
      const k = `${s.name} ${s.keyId}`;
      if (!seen.has(k)) seen.set(k, s.line);
    }
  }
  return `${first.text}\n${[...seen.values()].join('\n')}\n`;
}

export interface NoteVerification {
  text: string;
  /** names of the known keys whose signatures verified */
  verifiedBy: string[];
  /** signature lines from keys not in the verifier set (ignored, as the spec requires) */
  unknown: NoteSignature[];
}

/**
 * Verifies a note against known keys. Unknown signatures are ignored; a known key whose signature fails
 * rejects the whole note; at least one known key (and every name in `require`) must have signed.
 */
export function verifyNote(note: string, verifiers: readonly NoteVerifier[], opts: { require?: readonly string[] } = {}): NoteVerification {
  const parsed = parseNote(note);
  const text = utf8.encode(parsed.text);
  const verifiedBy: string[] = [];
  const unknown: NoteSignature[] = [];
  for (const s of parsed.signatures) {
    const v = verifiers.find((k) => k.name === s.name && k.keyId === s.keyId);
    if (!v) {
      unknown.push(s);
      continue;
    }
    if (!v.verify(text, s.signature)) throw noteError(`signature by ${s.name} does not verify`, { name: s.name, keyId: s.keyId });
    if (!verifiedBy.includes(s.name)) verifiedBy.push(s.name);
  }
  if (verifiedBy.length === 0) throw noteError('no signature from a known key', { signers: parsed.signatures.map((s) => s.name) });
  for (const r of opts.require ?? []) {
    if (!verifiedBy.includes(r)) throw noteError(`note is not signed by required key ${r}`, { required: r, verifiedBy });
  }
  return { text: parsed.text, verifiedBy, unknown };
}

// ---------------------------------------------------------------------------------------------
// Checkpoint bodies.

export function formatCheckpoint(cp: Checkpoint): string {
  if (typeof cp.origin !== 'string' || cp.origin.length === 0 || cp.origin.includes('\n')) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'checkpoint origin must be a non-empty single line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `checkpoint size ${cp.size} is not a non-negative integer`);
  if (cp.rootHash.byteLength !== HASH_SIZE) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'checkpoint root hash must be 32 bytes');
  for (const e of cp.extensions) if (e.length === 0 || e.includes('\n')) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'checkpoint extension lines must be non-empty single lines');
  return [cp.origin, String(cp.size), toBase64(cp.rootHash), ...cp.extensions].join('\n') + '\n';
}

export function parseCheckpointText(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') throw noteError('checkpoint text must have at least origin, size and root lines');
  const [origin, sizeLine, rootLine, ...rest] = lines.slice(0, -1);
  if (!origin) throw noteError('checkpoint origin line is empty');
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(sizeLine) || !Number.isSafeInteger(Number(sizeLine))) throw noteError(`checkpoint size line ${JSON.stringify(sizeLine)} is not a decimal without leading zeros`);
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootLine, 'root hash');
  } catch {
    throw noteError('checkpoint root line is not base64');
  }
  if (rootHash.byteLength !== HASH_SIZE) throw noteError(`checkpoint root hash has ${rootHash.byteLength} bytes, expected ${HASH_SIZE}`);
  if (rest.some((l) => l.length === 0)) throw noteError('checkpoint extension lines must be non-empty');
  return { origin, size: Number(sizeLine), rootHash, extensions: rest };
}

export interface ParsedCheckpoint extends ParsedNote {
  checkpoint: Checkpoint;
}

export function parseCheckpoint(note: string): ParsedCheckpoint {
  const p = parseNote(note);
  return { ...p, checkpoint: parseCheckpointText(p.text) };
}

export function signCheckpoint(cp: Omit<Checkpoint, 'extensions'> & { extensions?: string[] }, signer: NoteSigner): string {
  return signNote(formatCheckpoint({ extensions: [], ...cp }), signer);
}

export interface CheckpointVerification extends NoteVerification {
  checkpoint: Checkpoint;
}

/** Parses and verifies a checkpoint note; optionally pins the origin and the keys that must have signed. */
export function verifyCheckpoint(
  note: string,
  verifiers: readonly NoteVerifier[],
  opts: { origin?: string; require?: readonly string[] } = {},
): CheckpointVerification {
  const v = verifyNote(note, verifiers, opts);
  const checkpoint = parseCheckpointText(v.text);
  if (opts.origin !== undefined && checkpoint.origin !== opts.origin) {
    throw noteError(`checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the expected ${JSON.stringify(opts.origin)}`);
  }
  return { ...v, checkpoint };
}

export function sameCheckpoint(a: Checkpoint, b: Checkpoint): boolean {
  return a.origin === b.origin && a.size === b.size && bytesEqual(a.rootHash, b.rootHash) && a.extensions.join('\n') === b.extensions.join('\n');
}
