// fedtwin's HE wire form: fixed-size chunks (one ciphertext each) inside an update container.
// Every field is checked before SEAL sees a byte; sizes are exact, so nothing is allocated from
// an attacker-chosen length.
import { FedtwinError } from '@fedtwin/errors';
import type { HeContext } from './context.ts';
import { packedSize } from './bits.ts';
import { MEMBER_HASH_BYTES, NONCE_BYTES, ROUND_TAG_BYTES } from './mask.ts';

export const WIRE_VERSION = 4;
/**
 * Chunk kinds: a fresh ciphertext from a member (c0 only: c1 is the round's common a, derived from the round
 * tag), or the aggregator's compact sum, c0 rounded within the noise budget left by its addends (final:
 * members decrypt it, nobody adds to it). Kind 2 (a full-width re-addable sum) was retired with wire v3.
 */
export const KIND_FRESH = 1;
export const KIND_SUM_COMPACT = 3;
export type ChunkKind = typeof KIND_FRESH | typeof KIND_SUM_COMPACT;
const isKind = (k: number): k is ChunkKind => k === KIND_FRESH || k === KIND_SUM_COMPACT;

const CHUNK_MAGIC = 0x45485446; // "FTHE" little-endian
const UPDATE_MAGIC = 0x55485446; // "FTHU"
/** magic 4 | version 1 | kind 1 | reserved 2 | paramsId 32 | index u32 | slots u32 | addends u32 */
export const CHUNK_HEADER_BYTES = 52;
/** magic 4 | version 1 | kind 1 | reserved 2 | paramsId 32 | valueCount u32 | chunkCount u32 | addends u32 | round tag 32 */
export const UPDATE_HEADER_BYTES = 52 + ROUND_TAG_BYTES;
/**
 * One row of the participant table that follows the fixed header (wire v4), one per addend in addition order:
 * member-id hash 16 | encryption nonce 16. A fresh update has one row; a sum of K updates has K.
 */
export const PARTICIPANT_ENTRY_BYTES = MEMBER_HASH_BYTES + NONCE_BYTES;

/** Bytes before the first chunk: the fixed header and the participant table. */
export function updateHeaderSize(addends: number): number {
  return UPDATE_HEADER_BYTES + addends * PARTICIPANT_ENTRY_BYTES;
}

/** A row of the participant table: who encrypted an addend (hash of its member id) and with which nonce. */
export interface ParticipantEntry {
  memberHash: Uint8Array;
  nonce: Uint8Array;
}

export interface ChunkHeader {
  kind: ChunkKind;
  index: number;
  slots: number;
  addends: number;
}

export interface UpdateHeader {
  kind: ChunkKind;
  valueCount: number;
  chunkCount: number;
  addends: number;
  /** The round tag naming the common polynomial a every addend used. */
  tag: Uint8Array;
  /** The participant table, one row per addend in addition order (wire v4). */
  entries: ParticipantEntry[];
  /** Offset of the first chunk (after the participant table). */
  bodyOffset: number;
}

function malformed(message: string, details?: Record<string, unknown>): never {
  throw new FedtwinError('HE_MALFORMED_CIPHERTEXT', message, {
    hint: 'the sender is buggy, malicious, or uses other HE parameters; drop this message',
    details,
  });
}

/** One packed polynomial in a chunk body: `bits` bits per coefficient holding floor(c / 2^drop), c < q. */
export interface FieldLayout {
  bits: number;
  drop: number;
  /** One past the largest valid packed value as (lo, hi) words, or null when every bit pattern is valid. */
  bound: readonly [number, number] | null;
}

/** The field of a chunk body: c0 (c1 never travels: it is the round's common a). */
export interface ChunkLayout {
  c0: FieldLayout;
}

function field(ctx: HeContext, bits: number, drop: number): FieldLayout {
  const maxOut = (ctx.q - 1n) >> BigInt(drop);
  const bound = maxOut === (1n << BigInt(bits)) - 1n ? null : ([Number((maxOut + 1n) % 4294967296n), Number((maxOut + 1n) >> 32n)] as const);
  return { bits, drop, bound };
}

const layouts = new WeakMap<HeContext, Map<string, ChunkLayout>>();

/**
 * Field width of a chunk of this kind (cached per context): fresh c0 at c0Bits; compact sums at
 * ceil(log2 q) minus what compactSumDropBits(addends) drops.
 */
export function chunkLayout(ctx: HeContext, kind: ChunkKind, addends: number): ChunkLayout {
  let byCtx = layouts.get(ctx);
  if (!byCtx) layouts.set(ctx, (byCtx = new Map()));
  const k = kind === KIND_SUM_COMPACT ? `${kind}:${addends}` : String(kind);
  let L = byCtx.get(k);
  if (!L) {
    if (kind === KIND_FRESH) L = { c0: field(ctx, ctx.c0Bits, ctx.params.c0DropBits) };
    else {
      const d = ctx.compactDropBits(addends);
      L = { c0: field(ctx, ctx.qBits - d, d) };
    }
    byCtx.set(k, L);
  }
  return L;
}

/**
 * Bytes of one chunk of this kind under ctx's parameters (the body never depends on the data; a compact
 * sum's depends on its addends, and is largest at maxParticipants, the default).
 */
export function chunkSize(ctx: HeContext, kind: ChunkKind, addends = ctx.params.maxParticipants): number {
  const L = chunkLayout(ctx, kind, addends);
  const n = ctx.slotCount;
  return CHUNK_HEADER_BYTES + packedSize(n, L.c0.bits);
}

export function writeChunkHeader(ctx: HeContext, out: Uint8Array, off: number, h: ChunkHeader): void {
  const dv = new DataView(out.buffer, out.byteOffset + off, CHUNK_HEADER_BYTES);
  dv.setUint32(0, CHUNK_MAGIC, true);
  dv.setUint8(4, WIRE_VERSION);
  dv.setUint8(5, h.kind);
  dv.setUint16(6, 0, true);
  out.set(ctx.paramsId, off + 8);
  dv.setUint32(40, h.index, true);
  dv.setUint32(44, h.slots, true);
  dv.setUint32(48, h.addends, true);
}

function samePrefix(a: Uint8Array, aOff: number, id: Uint8Array): boolean {
  for (let i = 0; i < id.length; i++) if (a[aOff + i] !== id[i]) return false;
  return true;
}

/** Parses and checks a chunk header at `off`; the caller has checked the buffer holds a whole chunk. */
export function readChunkHeader(ctx: HeContext, bytes: Uint8Array, off: number): ChunkHeader {
  if (bytes.length - off < CHUNK_HEADER_BYTES) malformed(`chunk truncated: ${bytes.length - off} bytes, header alone is ${CHUNK_HEADER_BYTES}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off, CHUNK_HEADER_BYTES);
  if (dv.getUint32(0, true) !== CHUNK_MAGIC) malformed('not a fedtwin HE chunk (bad magic)');
  if (dv.getUint8(4) !== WIRE_VERSION) malformed(`unsupported chunk version ${dv.getUint8(4)}`);
  const kind = dv.getUint8(5);
  if (!isKind(kind)) malformed(`unknown chunk kind ${kind}`);
  if (dv.getUint16(6, true) !== 0) malformed('reserved chunk bits set');
  if (!samePrefix(bytes, off + 8, ctx.paramsId)) {
    malformed('chunk was made under other HE parameters (parameters id mismatch)', { expected: ctx.paramsIdHex });
  }
  const index = dv.getUint32(40, true);
  const slots = dv.getUint32(44, true);
  const addends = dv.getUint32(48, true);
  if (slots < 1 || slots > ctx.slotCount) malformed(`chunk slot count ${slots} outside [1, ${ctx.slotCount}]`);
  if (addends < 1 || addends > ctx.params.maxParticipants) malformed(`chunk sums ${addends} updates, outside [1, ${ctx.params.maxParticipants}]`);
  if (kind === KIND_FRESH && addends !== 1) malformed('a fresh chunk must have addends = 1');
  return { kind, index, slots, addends };
}

export function writeUpdateHeader(ctx: HeContext, out: Uint8Array, h: Omit<UpdateHeader, 'bodyOffset'>): void {
  const dv = new DataView(out.buffer, out.byteOffset, UPDATE_HEADER_BYTES);
  dv.setUint32(0, UPDATE_MAGIC, true);
  dv.setUint8(4, WIRE_VERSION);
  dv.setUint8(5, h.kind);
  dv.setUint16(6, 0, true);
  out.set(ctx.paramsId, 8);
  dv.setUint32(40, h.valueCount, true);
  dv.setUint32(44, h.chunkCount, true);
  dv.setUint32(48, h.addends, true);
  if (!(h.tag instanceof Uint8Array) || h.tag.length !== ROUND_TAG_BYTES) throw new FedtwinError('HE_BAD_ARGUMENT', 'round tag must be 32 bytes', { hint: 'derive it with roundTag()' });
  out.set(h.tag, 52);
  if (h.entries.length !== h.addends) throw new FedtwinError('HE_BAD_ARGUMENT', `${h.entries.length} participant entries for ${h.addends} addends`, { hint: 'internal: one entry per addend' });
  let o = UPDATE_HEADER_BYTES;
  for (const e of h.entries) {
    if (e.memberHash.length !== MEMBER_HASH_BYTES || e.nonce.length !== NONCE_BYTES) throw new FedtwinError('HE_BAD_ARGUMENT', 'bad participant entry', { hint: 'internal: memberHash() and a 16-byte nonce' });
    out.set(e.memberHash, o);
    out.set(e.nonce, o + MEMBER_HASH_BYTES);
    o += PARTICIPANT_ENTRY_BYTES;
  }
}

/** Size of a whole update container; lets callers cap a download before reading it (see chunkSize for `addends`). */
export function updateSize(ctx: HeContext, kind: ChunkKind, valueCount: number, addends?: number): number {
  const k = kind === KIND_FRESH ? 1 : addends ?? ctx.params.maxParticipants;
  return updateHeaderSize(k) + Math.ceil(valueCount / ctx.slotCount) * chunkSize(ctx, kind, addends);
}

/**
 * Checks an update container's header and exact length (no allocation), and every chunk header.
 * Coefficient ranges are checked when the chunk is unpacked (see scheme.ts).
 */
export function readUpdateHeader(ctx: HeContext, bytes: Uint8Array, expectKind?: ChunkKind): UpdateHeader {
  if (!(bytes instanceof Uint8Array)) malformed('update must be a Uint8Array');
  if (bytes.length < UPDATE_HEADER_BYTES) malformed(`update truncated: ${bytes.length} bytes, header alone is ${UPDATE_HEADER_BYTES}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, UPDATE_HEADER_BYTES);
  if (dv.getUint32(0, true) !== UPDATE_MAGIC) malformed('not a fedtwin HE update (bad magic)');
  if (dv.getUint8(4) !== WIRE_VERSION) malformed(`unsupported update version ${dv.getUint8(4)}`);
  const kind = dv.getUint8(5);
  if (!isKind(kind)) malformed(`unknown update kind ${kind}`);
  if (expectKind !== undefined && kind !== expectKind) malformed(`expected a ${expectKind === KIND_FRESH ? 'fresh update' : 'sum'}, got kind ${kind}`);
  if (dv.getUint16(6, true) !== 0) malformed('reserved update bits set');
  if (!samePrefix(bytes, 8, ctx.paramsId)) malformed('update was made under other HE parameters (parameters id mismatch)', { expected: ctx.paramsIdHex });
  const valueCount = dv.getUint32(40, true);
  const chunkCount = dv.getUint32(44, true);
  const addends = dv.getUint32(48, true);
  if (valueCount < 1 || valueCount > ctx.params.maxValues) malformed(`update declares ${valueCount} values, outside [1, ${ctx.params.maxValues}]`);
  if (chunkCount !== Math.ceil(valueCount / ctx.slotCount)) malformed(`update declares ${chunkCount} chunks for ${valueCount} values`);
  if (addends < 1 || addends > ctx.params.maxParticipants) malformed(`update sums ${addends} updates, outside [1, ${ctx.params.maxParticipants}]`);
  if (kind === KIND_FRESH && addends !== 1) malformed('a fresh update must have addends = 1');
  const expected = updateSize(ctx, kind, valueCount, addends);
  if (bytes.length !== expected) malformed(`update is ${bytes.length} bytes, expected exactly ${expected}`, { expected, actual: bytes.length });
  const size = chunkSize(ctx, kind, addends);
  const bodyOffset = updateHeaderSize(addends);
  for (let i = 0; i < chunkCount; i++) {
    const h = readChunkHeader(ctx, bytes, bodyOffset + i * size);
    const slots = i === chunkCount - 1 ? valueCount - i * ctx.slotCount : ctx.slotCount;
    if (h.kind !== kind || h.index !== i || h.slots !== slots || h.addends !== addends) {
      malformed(`chunk ${i} header disagrees with the update header`, { chunk: h });
    }
  }
  const entries: ParticipantEntry[] = [];
  for (let i = 0, o = UPDATE_HEADER_BYTES; i < addends; i++, o += PARTICIPANT_ENTRY_BYTES) {
    entries.push({ memberHash: bytes.slice(o, o + MEMBER_HASH_BYTES), nonce: bytes.slice(o + MEMBER_HASH_BYTES, o + PARTICIPANT_ENTRY_BYTES) });
  }
  return { kind, valueCount, chunkCount, addends, tag: bytes.slice(52, 52 + ROUND_TAG_BYTES), entries, bodyOffset };
}

/** Views of the chunks of a validated update (no copy). */
export function splitUpdate(ctx: HeContext, bytes: Uint8Array): Uint8Array[] {
  const h = readUpdateHeader(ctx, bytes);
  const size = chunkSize(ctx, h.kind, h.addends);
  const out: Uint8Array[] = [];
  for (let i = 0; i < h.chunkCount; i++) out.push(bytes.subarray(h.bodyOffset + i * size, h.bodyOffset + (i + 1) * size));
  return out;
}
