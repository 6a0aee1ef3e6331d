// Encrypt (members), add (aggregator, keyless), decrypt (members): the vector-level API.
import { FedtwinError } from '@fedtwin/errors';
import type { HeContext } from './context.ts';
import { firstAtOrAbove, packBits, unpackBits, unpackNumbers } from './bits.ts';
import { quantize } from './quantize.ts';
import type { QuantSeed } from './quantize.ts';
import { keyState } from './keys.ts';
import type { HeSecretKey } from './keys.ts';
import { addFreshNoise, checkMember, checkNonce, checkTag, freshNonce, maskProducts, memberHash, prepareA, recycleMaskArray, secretSumPlain } from './mask.ts';
import type { SecretRef } from './mask.ts';
import {
  CHUNK_HEADER_BYTES, KIND_FRESH, KIND_SUM_COMPACT,
  chunkLayout, chunkSize, readUpdateHeader, updateHeaderSize, writeChunkHeader, writeUpdateHeader,
} from './wire.ts';
import type { ChunkKind, FieldLayout, ParticipantEntry, UpdateHeader } from './wire.ts';

const TWO32 = 4294967296;

export interface EncryptOptions {
  /** This member's id (its peer id): selects the secret derived for it from the consortium key. */
  member: string;
  /** The round tag (roundTag()): names the common polynomial a. Never encrypt twice under one tag. */
  tag: Uint8Array;
  /** Seed of the stochastic rounding (tests, simulations); random when omitted. */
  seed?: QuantSeed;
  /**
   * The 16-byte nonce that enters this encryption's secret (wire v4). Leave it out: a fresh one is drawn from the
   * OS CSPRNG (the pool uses the one it chose in prepare()). Reusing a nonce under one tag brings back the leak
   * it exists to prevent; tests only.
   */
  nonce?: Uint8Array;
}

export interface EncryptResult {
  /** The update container (header + one fresh chunk per slotCount values). */
  update: Uint8Array;
  valueCount: number;
  /** Inputs outside [-clip, clip] that were clipped (0 for integer input). */
  clipped: number;
}

function badArg(message: string, hint: string): never {
  throw new FedtwinError('HE_BAD_ARGUMENT', message, { hint });
}

/** Quantizes float input with ctx's scale/clip; integer input must already lie in [-quantMax, quantMax]. */
export function toIntegers(ctx: HeContext, values: Float32Array | Float64Array | Int32Array, seed: QuantSeed | undefined, offset = 0): { ints: Int32Array; clipped: number } {
  if (values instanceof Int32Array) {
    const m = ctx.quantMax;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v > m || v < -m) badArg(`integer value ${offset + i} = ${v} is outside [-${m}, ${m}]`, 'quantize with the context scale first, or pass floats');
    }
    return { ints: values, clipped: 0 };
  }
  if (!(values instanceof Float32Array) && !(values instanceof Float64Array)) badArg('values must be a Float32Array, Float64Array or Int32Array', 'convert the update to a typed array');
  const q = quantize(values, { scale: ctx.scale, clip: ctx.params.clip, seed, offset });
  return { ints: q.values, clipped: q.clipped };
}

function checkValueCount(ctx: HeContext, n: number): void {
  if (n < 1 || n > ctx.params.maxValues) badArg(`update has ${n} values, allowed [1, ${ctx.params.maxValues}]`, 'raise maxValues in the HE parameters or split the model');
}

/** Reusable buffers for one thread's chunk work. */
interface Scratch {
  pairs: Uint32Array;
  numbers: Float64Array;
}

const scratchFor = new WeakMap<HeContext, Scratch>();
function scratch(ctx: HeContext): Scratch {
  let s = scratchFor.get(ctx);
  if (!s) {
    s = { pairs: new Uint32Array(2 * ctx.slotCount), numbers: new Float64Array(ctx.slotCount) };
    scratchFor.set(ctx, s);
  }
  return s;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// Masks, made ahead. A member's encryption mask −a·s_i + e and its decryption mask a·Σ_{i∈P} s_i do not
// depend on the data, so a member makes them while it trains (tfjs-wasm uses one core, the HE workers
// the other); online, encryption is a float add and bit packing, decryption an add and a rounding.
// Each encryption mask is used once; masks live in this thread's memory only.

interface MaskStore {
  /** `${keyId}|${member}|${tag}|${nonce}` → chunk → −a·s_i + e (float64 in about [0, q]) */
  enc: Map<string, Map<number, Float64Array>>;
  /**
   * `${tag}` → chunk → the round's a, expanded ahead for the sum's decryption masks. a·Σ s_i itself depends on the
   * participants' nonces, which arrive with the sum, so only the expansion of a can be done ahead (public data).
   */
  a: Map<string, Map<number, Uint32Array>>;
  /** `${keyId}|${member}|${tag}#${chunk}` already encrypted on this thread: refused a second time (defence in depth). */
  used: Set<string>;
}

const stores = new WeakMap<HeContext, MaskStore>();
/** Mask sets kept per kind (older ones are wiped): the current round's and one more. */
const MAX_MASK_SETS = 2;
/** Upper bound on remembered (tag, chunk) uses per thread; the oldest are forgotten first. */
const MAX_USED = 1 << 18;
/** Upper bound on chunks prepared per call (8M values at N = 4096). */
export const MAX_PREPARED_CHUNKS = 2048;

function store(ctx: HeContext): MaskStore {
  let s = stores.get(ctx);
  if (!s) stores.set(ctx, (s = { enc: new Map(), a: new Map(), used: new Set() }));
  return s;
}

function maskSet(ctx: HeContext, map: Map<string, Map<number, Float64Array>>, id: string): Map<number, Float64Array> {
  let m = map.get(id);
  if (!m) {
    while (map.size >= MAX_MASK_SETS) {
      const [oldId, old] = map.entries().next().value as [string, Map<number, Float64Array>];
      for (const v of old.values()) recycleMaskArray(ctx, v);
      map.delete(oldId);
    }
    map.set(id, (m = new Map()));
  }
  return m;
}

const usedId = (key: HeSecretKey, member: string, tag: Uint8Array): string => `${key.keyId}|${member}|${hex(tag)}`;
const encId = (key: HeSecretKey, member: string, tag: Uint8Array, nonce: Uint8Array): string => `${usedId(key, member, tag)}|${hex(nonce)}`;

function aSet(st: MaskStore, tag: Uint8Array): Map<number, Uint32Array> {
  const id = hex(tag);
  let m = st.a.get(id);
  if (!m) {
    while (st.a.size >= MAX_MASK_SETS) st.a.delete(st.a.keys().next().value as string);
    st.a.set(id, (m = new Map()));
  }
  return m;
}

function checkRange(firstChunk: number, count: number, limit = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(firstChunk) || firstChunk < 0 || !Number.isInteger(count) || count < 0 || count > limit) {
    badArg(`chunk range [${firstChunk}, +${count}) is invalid${limit < Number.MAX_SAFE_INTEGER ? ` (at most ${limit} chunks a call)` : ''}`, 'pass the update\'s chunk range');
  }
}

/** Masks missing at use are made this many chunks at a time (bounded memory for any model size). */
const MASK_BATCH_CHUNKS = 64;

/** What one mask computation fills: a set, the plaintext (Σ of secrets) behind it, and whether it is an encryption mask. */
interface MaskJob {
  set: Map<number, Float64Array>;
  plain: ReturnType<typeof secretSumPlain>;
  forEncryption: boolean;
}

/** Computes the masks missing from any job's set for chunks [first, first+count) and stores them (encryption masks negated, noised). */
function fillMasks(ctx: HeContext, tag: Uint8Array, first: number, count: number, jobs: MaskJob[], prepared?: Map<number, Uint32Array>): void {
  let lo = -1;
  let hi = -1;
  for (let c = first; c < first + count; c++) {
    if (jobs.every((j) => j.set.has(c))) continue;
    if (lo < 0) lo = c;
    hi = c;
  }
  if (lo < 0) return;
  const qd = Number(ctx.q);
  const n = ctx.slotCount;
  // a job whose masks are all there costs nothing (each plaintext is one SEAL product per chunk pair)
  const todo: MaskJob[] = [];
  for (const j of jobs) {
    for (let c = lo; c <= hi; c++) {
      if (!j.set.has(c)) {
        todo.push(j);
        break;
      }
    }
  }
  maskProducts(ctx, tag, lo, hi - lo + 1, todo.map((j) => j.plain), (k, c, v) => {
    const job = todo[k];
    if (job.set.has(c)) {
      recycleMaskArray(ctx, v);
      return;
    }
    if (job.forEncryption) {
      for (let i = 0; i < n; i++) v[i] = v[i] === 0 ? 0 : qd - v[i]; // −a·s mod q
      addFreshNoise(v, n);
    }
    job.set.set(c, v);
  }, prepared);
}

/**
 * Prepares, on this thread, member `member`'s encryption masks for chunks [firstChunk, firstChunk+count) of a
 * round under its encryption `nonce`, and (with `sum`) the part of that round's decryption masks that does not
 * depend on who takes part (the expanded a's). Returns the number of chunks whose encryption mask is ready.
 */
export function prepareMasks(ctx: HeContext, key: HeSecretKey, opts: { member: string; tag: Uint8Array; nonce: Uint8Array; firstChunk: number; count: number; sum?: boolean }): number {
  const member = checkMember(opts.member);
  const tag = checkTag(opts.tag);
  const nonce = checkNonce(opts.nonce);
  checkRange(opts.firstChunk, opts.count, MAX_PREPARED_CHUNKS);
  const st = store(ctx);
  const uid = usedId(key, member, tag);
  // Chunks already encrypted under this tag get no second mask on this thread.
  const usedBefore = (c: number) => st.used.has(`${uid}#${c}`);
  let anyUnused = false;
  for (let c = opts.firstChunk; c < opts.firstChunk + opts.count && !anyUnused; c++) anyUnused = !usedBefore(c);
  const enc = anyUnused ? maskSet(ctx, st.enc, encId(key, member, tag, nonce)) : undefined;
  if (enc) fillMasks(ctx, tag, opts.firstChunk, opts.count, [{ set: enc, plain: secretSumPlain(ctx, key, [{ member, nonce }]), forEncryption: true }]);
  if (opts.sum) prepareA(ctx, tag, opts.firstChunk, opts.count, aSet(st, tag));
  let ready = 0;
  for (let c = opts.firstChunk; c < opts.firstChunk + opts.count; c++) {
    const stale = enc?.get(c);
    if (stale && usedBefore(c)) { // never keep an encryption mask for a chunk already encrypted under this tag
      recycleMaskArray(ctx, stale);
      enc!.delete(c);
    } else if (stale) ready++;
  }
  return ready;
}

/**
 * Encrypts ints[start, start+slots) as chunk `index` into out[off..] with the encryption mask x0 = −a·s_i + e.
 * Values are the plaintext polynomial's coefficients (m = v mod t): sums only ever add, and coefficient-wise
 * addition is all they need, so there is no batching. c0 = x0 + round(q·m/t) computed in float64, then
 * c0DropBits low bits dropped; both errors are within the noise bound used to choose c0DropBits.
 */
function encryptChunk(ctx: HeContext, x0: Float64Array, ints: Int32Array, start: number, slots: number, index: number, out: Uint8Array, off: number): void {
  const { slotCount: n } = ctx;
  const c0 = scratch(ctx).pairs;
  const qd = Number(ctx.q);
  const qOverT = qd / Number(ctx.t);
  const invDiv = 2 ** -ctx.params.c0DropBits; // exact: a power of two
  const maxOut = Number((ctx.q - 1n) >> BigInt(ctx.params.c0DropBits));
  const t = Number(ctx.t);
  const invQ = 1 / qd;
  for (let i = 0; i < n; i++) {
    const v = i < slots ? ints[start + i] : 0;
    const m = v + t * (v >>> 31); // plaintext coefficient v mod t (no data-dependent branch: signs are coin flips)
    // x in [0, 2q): subtract q by a rounded quotient, then fix the rare misjudged case next to q
    let x = x0[i] + m * qOverT;
    x -= qd * Math.floor(x * invQ);
    if (x < 0) x += qd;
    else if (x >= qd) x -= qd;
    let o = Math.floor(x * invDiv);
    if (o > maxOut) o = maxOut;
    c0[2 * i] = o >>> 0; // ToUint32 is o mod 2^32, exact for integers below 2^53
    c0[2 * i + 1] = (o / TWO32) >>> 0;
  }
  recycleMaskArray(ctx, x0); // wiped: a used mask is as sensitive as the update it hid
  writeChunkHeader(ctx, out, off, { kind: KIND_FRESH, index, slots, addends: 1 });
  packBits(c0, n, ctx.c0Bits, out, off + CHUNK_HEADER_BYTES);
}

/**
 * Encrypts chunks [firstChunk, firstChunk + ceil(ints.length / N)) of a vector of totalValues values;
 * ints[0] is value firstChunk·N. Uses prepared masks where there are some. Returns the chunks' wire bytes.
 */
export function encryptChunkRange(ctx: HeContext, key: HeSecretKey, member: string, tag: Uint8Array, nonce: Uint8Array, ints: Int32Array, firstChunk: number, totalValues: number): Uint8Array {
  keyState(ctx, key);
  checkMember(member);
  checkTag(tag);
  checkNonce(nonce);
  const n = ctx.slotCount;
  const chunks = Math.ceil(ints.length / n);
  checkRange(firstChunk, chunks);
  const st = store(ctx);
  const uid = usedId(key, member, tag);
  for (let c = firstChunk; c < firstChunk + chunks; c++) {
    if (st.used.has(`${uid}#${c}`)) {
      throw new FedtwinError('HE_TAG_REUSED', `chunk ${c} was already encrypted by member ${member} under this round tag`, {
        hint: 'contribute once per round (a second encryption gets a fresh nonce, so it would not share the first one\'s mask, but a member sends one update per round)',
      });
    }
  }
  const enc = maskSet(ctx, st.enc, encId(key, member, tag, nonce));
  const jobs = [{ set: enc, plain: secretSumPlain(ctx, key, [{ member, nonce }]), forEncryption: true }];
  const end = firstChunk + chunks;
  const size = chunkSize(ctx, KIND_FRESH);
  const out = new Uint8Array(chunks * size);
  for (let c = 0; c < chunks; c++) {
    const index = firstChunk + c;
    const slots = Math.min(n, totalValues - index * n);
    if (slots < 1 || c * n + slots > ints.length) badArg('chunk range does not match the vector length', 'internal: check the pool split');
    if (!enc.has(index)) fillMasks(ctx, tag, index, Math.min(MASK_BATCH_CHUNKS, end - index), jobs);
    const x0 = enc.get(index)!;
    enc.delete(index);
    if (st.used.size >= MAX_USED) st.used.delete(st.used.values().next().value as string);
    st.used.add(`${uid}#${index}`);
    encryptChunk(ctx, x0, ints, c * n, slots, index, out, c * size);
  }
  return out;
}

/** The participant-table row of one fresh encryption. */
export function participantEntry(member: string, nonce: Uint8Array): ParticipantEntry {
  return { memberHash: memberHash(member), nonce: checkNonce(nonce).slice() };
}

/** Wraps chunk bytes (in index order) into an update container with its participant table (one row per addend). */
export function assembleUpdate(ctx: HeContext, valueCount: number, tag: Uint8Array, parts: readonly Uint8Array[], entries: readonly ParticipantEntry[], kind: ChunkKind = KIND_FRESH): Uint8Array {
  const addends = entries.length;
  const chunkCount = Math.ceil(valueCount / ctx.slotCount);
  const total = parts.reduce((a, p) => a + p.length, 0);
  if (total !== chunkCount * chunkSize(ctx, kind, addends)) badArg('chunk bytes do not add up to the update size', 'internal: check the pool split');
  const head = updateHeaderSize(addends);
  const out = new Uint8Array(head + total);
  writeUpdateHeader(ctx, out, { kind, valueCount, chunkCount, addends, tag, entries: [...entries] });
  let o = head;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Quantizes (floats) and encrypts a whole update on this thread. See createHePool for the parallel version. */
export function encryptVector(ctx: HeContext, key: HeSecretKey, values: Float32Array | Float64Array | Int32Array, opts: EncryptOptions): EncryptResult {
  if (opts === null || typeof opts !== 'object') badArg('encryption needs { member, tag }', 'pass the member id and the round tag');
  checkValueCount(ctx, values.length);
  const nonce = opts.nonce === undefined ? freshNonce() : checkNonce(opts.nonce);
  const { ints, clipped } = toIntegers(ctx, values, opts.seed);
  const body = encryptChunkRange(ctx, key, opts.member, opts.tag, nonce, ints, 0, values.length);
  return { update: assembleUpdate(ctx, values.length, opts.tag, [body], [participantEntry(opts.member, nonce)]), valueCount: values.length, clipped };
}

/** Unpacks `n` values of one field at `at`, range-checks them (value index reported as base + i); returns the end offset. */
function unpackChecked(ctx: HeContext, bytes: Uint8Array, at: number, f: FieldLayout, dst: Uint32Array, base: number): number {
  const n = ctx.slotCount;
  const end = unpackBits(bytes, at, n, f.bits, dst);
  if (f.bound) {
    const bad = firstAtOrAbove(dst, n, f.bound[0], f.bound[1]);
    if (bad >= 0) malformedCoeff(base + bad);
  }
  return end;
}

function notAddable(): never {
  throw new FedtwinError('HE_SUM_FINAL', 'a sum cannot be added to: its rounding used up the noise budget of its addends', {
    hint: 'add the members\' fresh updates; the compact sum is what members download and decrypt',
  });
}

function malformedCoeff(index: number, message?: string): never {
  throw new FedtwinError('HE_MALFORMED_CIPHERTEXT', message ?? `ciphertext coefficient ${index} is not below the modulus q`, {
    hint: 'the sender is buggy or malicious; drop this message',
    details: { index },
  });
}

/**
 * Range-checks `count` chunks laid out back to back from `off` (headers already checked). A field whose
 * every bit pattern is valid (a fresh c0 under the default parameters) is not unpacked at all.
 */
export function validateChunks(ctx: HeContext, bytes: Uint8Array, off: number, kind: ChunkKind, count: number, addends = 1): void {
  const size = chunkSize(ctx, kind, addends);
  const f = chunkLayout(ctx, kind, addends).c0;
  if (!f.bound) return;
  const s = scratch(ctx);
  const n = ctx.slotCount;
  if (f.bits > 53) {
    for (let i = 0; i < count; i++) unpackChecked(ctx, bytes, off + i * size + CHUNK_HEADER_BYTES, f, s.pairs, i * n);
    return;
  }
  // up to 53 bits the values are exact as numbers, and unpackNumbers reads aligned bodies a word at a time
  const fieldEnd = f.bound[1] * TWO32 + f.bound[0];
  for (let i = 0; i < count; i++) {
    unpackNumbers(bytes, off + i * size + CHUNK_HEADER_BYTES, n, f.bits, s.numbers, 0, false);
    for (let j = 0; j < n; j++) if (s.numbers[j] >= fieldEnd) malformedCoeff(i * n + j);
  }
}

/** Checks a whole update (header, exact length, every chunk header and coefficient) without SEAL. */
export function validateCiphertext(ctx: HeContext, bytes: Uint8Array): { kind: ChunkKind; valueCount: number; addends: number; tag: Uint8Array } {
  const h = readUpdateHeader(ctx, bytes);
  validateChunks(ctx, bytes, h.bodyOffset, h.kind, h.chunkCount, h.addends);
  return { kind: h.kind, valueCount: h.valueCount, addends: h.addends, tag: h.tag };
}

/**
 * The aggregator's running sum. Holds float64 sums of the members' packed c0 values and no key: the sum of
 * the c0s needs no key and no SEAL (c1 is the round's common a, never sent). The sums are exact integers:
 * one float64 per coefficient while maxParticipants·2^c0Bits ≤ 2^53 (the default: 2^50), else two limbs
 * (low 32 bits and the rest). The one rounding happens when the result is reduced mod q (SUM_FLOAT_ERROR_BOUND).
 * Accepts fresh updates of one round tag only.
 */
export class Accumulator {
  readonly ctx: HeContext;
  /** Σ of the packed values (one limb), or of their low 32 bits (two limbs). */
  #lo: Float64Array | undefined;
  /** Σ of the bits above 32 (two limbs only). */
  #hi: Float64Array | undefined;
  readonly #oneLimb: boolean;
  #valueCount: number | undefined;
  #tag: Uint8Array | undefined;
  #addends = 0;
  /** The addends' participant-table rows, in addition order. */
  #entries: ParticipantEntry[] = [];
  #members = new Set<string>();

  constructor(ctx: HeContext) {
    this.ctx = ctx;
    this.#oneLimb = ctx.params.maxParticipants * 2 ** ctx.c0Bits <= 2 ** 53;
  }

  /** Updates summed so far. */
  get addends(): number {
    return this.#addends;
  }

  get valueCount(): number | undefined {
    return this.#valueCount;
  }

  /** The round tag of the updates summed (after the first add). */
  get tag(): Uint8Array | undefined {
    return this.#tag?.slice();
  }

  /** Validates then adds one update; on any error the running sum is unchanged. */
  add(update: Uint8Array): void {
    const ctx = this.ctx;
    const h = checkAddable(ctx, update, this.#valueCount, this.#addends, this.#tag);
    const entry = h.entries[0]!;
    const who = hex(entry.memberHash);
    if (this.#members.has(who)) {
      throw new FedtwinError('HE_DUPLICATE_MEMBER', 'this sum already holds an update from the member this one names', {
        hint: 'each member contributes once per sum; members decrypt for a set of distinct participants',
      });
    }
    // Range checks finish before the first addition so a bad chunk cannot leave a half-added sum.
    validateChunks(ctx, update, h.bodyOffset, h.kind, h.chunkCount, h.addends);
    const body = h.bodyOffset;
    const n = ctx.slotCount;
    const len = h.chunkCount * n;
    const lo = (this.#lo ??= new Float64Array(len));
    const size = chunkSize(ctx, KIND_FRESH);
    if (this.#oneLimb) {
      // unpack and add in one pass, straight from the wire bytes
      for (let c = 0; c < h.chunkCount; c++) unpackNumbers(update, body + c * size + CHUNK_HEADER_BYTES, n, ctx.c0Bits, lo, c * n, true);
    } else {
      const hi = (this.#hi ??= new Float64Array(len));
      const pairs = scratch(ctx).pairs;
      for (let c = 0; c < h.chunkCount; c++) {
        unpackBits(update, body + c * size + CHUNK_HEADER_BYTES, n, ctx.c0Bits, pairs);
        const base = c * n;
        for (let i = 0; i < n; i++) {
          lo[base + i] += pairs[2 * i];
          hi[base + i] += pairs[2 * i + 1];
        }
      }
    }
    this.#valueCount = h.valueCount;
    this.#tag ??= h.tag;
    this.#addends += 1;
    this.#entries.push({ memberHash: entry.memberHash.slice(), nonce: entry.nonce.slice() });
    this.#members.add(who);
  }

  /** The sum as a compact update container: c0 reduced mod q and rounded within the noise budget its addends leave (final). */
  result(): Uint8Array {
    if (this.#valueCount === undefined) throw new FedtwinError('HE_EMPTY_SUM', 'no update has been added', { hint: 'add at least one update before taking the result' });
    const ctx = this.ctx;
    const n = ctx.slotCount;
    const k = this.#addends;
    const vc = this.#valueCount;
    const chunkCount = Math.ceil(vc / n);
    const size = chunkSize(ctx, KIND_SUM_COMPACT, k);
    const f = chunkLayout(ctx, KIND_SUM_COMPACT, k).c0;
    const out = new Uint8Array(chunkCount * size);
    const lo = this.#lo!;
    const hi = this.#hi;
    const qd = Number(ctx.q);
    const d = 2 ** ctx.params.c0DropBits;
    const mid = k * (d / 2); // each addend's dropped bits come back at their midpoint
    const invDiv = 2 ** -f.drop; // exact: a power of two
    const invQ = 1 / qd;
    const maxOut = Number((ctx.q - 1n) >> BigInt(f.drop));
    const pairs = scratch(ctx).pairs;
    for (let c = 0; c < chunkCount; c++) {
      const base = c * n;
      for (let i = 0; i < n; i++) {
        // z = 2^d·Σu + k·2^(d−1) is exact in float64 (its significand is below 2^53); the reduction rounds
        const z = ((hi ? hi[base + i] * TWO32 : 0) + lo[base + i]) * d + mid;
        let r = z - Math.floor(z * invQ) * qd; // the quotient may be off by one: corrected below
        if (r < 0) r += qd;
        else if (r >= qd) r -= qd;
        let o = Math.floor(r * invDiv);
        if (o > maxOut) o = maxOut;
        else if (o < 0) o = 0;
        pairs[2 * i] = o >>> 0;
        pairs[2 * i + 1] = (o / TWO32) >>> 0;
      }
      writeChunkHeader(ctx, out, c * size, { kind: KIND_SUM_COMPACT, index: c, slots: Math.min(n, vc - c * n), addends: k });
      packBits(pairs, n, f.bits, out, c * size + CHUNK_HEADER_BYTES);
    }
    return assembleUpdate(ctx, vc, this.#tag!, [out], this.#entries, KIND_SUM_COMPACT);
  }

  /** Wipes the running sum. */
  dispose(): void {
    this.#lo?.fill(0);
    this.#hi?.fill(0);
    this.#lo = this.#hi = undefined;
    this.#entries = [];
    this.#members.clear();
  }
}

/** Header checks of the accumulator: kind, shape, round tag, and headroom for maxParticipants. */
export function checkAddable(ctx: HeContext, update: Uint8Array, valueCount: number | undefined, addends: number, tag?: Uint8Array): UpdateHeader {
  const h = readUpdateHeader(ctx, update);
  if (h.kind !== KIND_FRESH) notAddable();
  if (valueCount !== undefined && h.valueCount !== valueCount) {
    throw new FedtwinError('HE_SHAPE_MISMATCH', `update has ${h.valueCount} values, the sum has ${valueCount}`, { hint: 'every member must send the same shared sub-model' });
  }
  if (tag !== undefined && !Buffer.from(tag).equals(Buffer.from(h.tag))) {
    throw new FedtwinError('HE_TAG_MISMATCH', 'update was encrypted for another round (round tag differs from the sum\'s)', { hint: 'members must encrypt with the current round\'s tag' });
  }
  if (addends + 1 > ctx.params.maxParticipants) {
    throw new FedtwinError('HE_HEADROOM_EXCEEDED', `adding one more update to ${addends} exceeds maxParticipants ${ctx.params.maxParticipants}`, {
      hint: 'the plaintext modulus has headroom for maxParticipants updates only; raise it in the HE parameters',
    });
  }
  return h;
}

export interface DecryptedIntegers {
  /** Exact sum of the quantized integers of every addend. */
  values: Int32Array;
  addends: number;
}

/**
 * The (member, nonce) of each addend of a sum, in its table's order, given the member ids the caller decrypts for.
 * Refuses with HE_PARTICIPANTS_MISMATCH unless the table names exactly those members, each once: decrypting with
 * another set would give garbage at best, and the caller must know whose updates the sum holds.
 */
export function resolveParticipants(h: Pick<UpdateHeader, 'entries' | 'addends'>, participants: readonly string[]): SecretRef[] {
  const mismatch = (why: string): never => {
    throw new FedtwinError('HE_PARTICIPANTS_MISMATCH', `the sum's participant table does not match the participants named: ${why}`, {
      hint: 'the aggregate names other participants than the updates it sums (a buggy or malicious aggregator); do not use it',
      details: { addends: h.addends, named: Array.isArray(participants) ? participants.length : null },
    });
  };
  if (!Array.isArray(participants)) mismatch('no participant list');
  if (participants.length !== h.addends) mismatch(`the sum has ${h.addends} addends, ${participants.length} participants were named`);
  const byHash = new Map<string, string>();
  for (const p of participants) {
    const k = hex(memberHash(checkMember(p)));
    if (byHash.has(k)) mismatch(`participant ${p} is named twice`);
    byHash.set(k, p);
  }
  const refs: SecretRef[] = [];
  const seen = new Set<string>();
  for (const e of h.entries) {
    const k = hex(e.memberHash);
    const member = byHash.get(k);
    if (member === undefined) mismatch('the sum holds an update from a member not named');
    if (seen.has(k)) mismatch(`the sum holds two updates from ${member}`);
    seen.add(k);
    refs.push({ member: member!, nonce: e.nonce });
  }
  return refs;
}

/**
 * Decrypts `count` chunks laid out from bytes[off] (headers already checked) into out[outOffset..]: for each
 * coefficient, y = c0 (dropped bits at their midpoint) + (a·Σ_{i∈P} s_i(nonce_i)), then m = round(t·y/q) mod t,
 * centred. `addends` are the sum's (member, nonce) pairs (resolveParticipants). Chunk i of the range is chunk
 * firstChunk + i of a vector of valueCount values.
 */
export function decryptChunks(ctx: HeContext, key: HeSecretKey, addends: readonly SecretRef[], tag: Uint8Array, bytes: Uint8Array, off: number, kind: ChunkKind, count: number,
  firstChunk: number, valueCount: number, out: Float64Array, outOffset: number, divisor = 1): void {
  keyState(ctx, key);
  checkTag(tag);
  if (!Array.isArray(addends) || addends.length < 1) badArg('a sum needs its addends\' (member, nonce) pairs', 'resolve them with resolveParticipants()');
  for (const r of addends) {
    checkMember(r.member);
    checkNonce(r.nonce);
  }
  checkRange(firstChunk, count);
  const k = addends.length;
  const n = ctx.slotCount;
  const size = chunkSize(ctx, kind, k);
  const f = chunkLayout(ctx, kind, k).c0;
  const limit = k * ctx.quantMax;
  const t = Number(ctx.t);
  const qd = Number(ctx.q);
  const div = 2 ** f.drop;
  const half = f.drop === 0 ? 0 : div / 2;
  // Coefficient ranges first (exact), so a malformed sum costs no mask.
  validateChunks(ctx, bytes, off, kind, count, k);
  const st = store(ctx);
  const dec = new Map<number, Float64Array>();
  const prepared = st.a.get(hex(tag));
  const jobs = [{ set: dec, plain: secretSumPlain(ctx, key, addends), forEncryption: false }];
  const vals = scratch(ctx).numbers;
  try {
    for (let i = 0; i < count; i++) {
      const index = firstChunk + i;
      unpackNumbers(bytes, off + i * size + CHUNK_HEADER_BYTES, n, f.bits, vals, 0, false);
      if (!dec.has(index)) fillMasks(ctx, tag, index, Math.min(MASK_BATCH_CHUNKS, firstChunk + count - index), jobs, prepared);
      const mask = dec.get(index)!;
      dec.delete(index); // released as used: masks made here, in batches, stay bounded for any model size
      const slots = Math.min(n, valueCount - index * n);
      const bad = unmaskChunk(vals, mask, slots, div, half, qd, t, limit, divisor, out, outOffset + i * n);
      recycleMaskArray(ctx, mask);
      if (bad >= 0) {
        // An honest sum lies in [-addends·qmax, addends·qmax]; anything else means a wrong key, tag or nonce, or a forged sum.
        throw new FedtwinError('HE_DECRYPT_FAILED', `decrypted value ${index * n + bad} = ${Math.round(out[outOffset + i * n + bad] * divisor)} is outside the possible range ±${limit}`, {
          hint: 'the sum was made under another key or round, lists wrong nonces, or was corrupted or forged by the aggregator',
        });
      }
    }
  } finally {
    for (const m of dec.values()) recycleMaskArray(ctx, m);
  }
}

/**
 * out[base + j] = round(t/q · (c0_j·div + half + mask_j)) centred mod t, / divisor, for j < slots; returns the
 * first j whose value lies outside ±limit (written, then the caller throws), or −1. Branch-free arithmetic
 * (the signs of the values are coin flips, and a mispredicted branch per value cost more than the rest):
 * y in [0, 2q) less q·floor(y/q) is exact; a quotient misjudged next to q leaves y just below 0 or at q,
 * which the reduction mod t of the rounded value absorbs.
 */
function unmaskChunk(c0: Float64Array, mask: Float64Array, slots: number, div: number, half: number, qd: number, t: number, limit: number, divisor: number, out: Float64Array, base: number): number {
  const invQ = 1 / qd;
  const tOverQ = t / qd;
  const invT = 1 / t;
  let bad = 0; // counted, not branched on (an || of two comparisons per value cost a third of the loop)
  for (let j = 0; j < slots; j++) {
    let y = c0[j] * div + half + mask[j];
    y -= qd * Math.floor(y * invQ);
    let v = Math.floor(y * tOverQ + 0.5);
    v -= t * Math.floor(v * invT + 0.5);
    bad += Math.abs(v) > limit ? 1 : 0;
    out[base + j] = v / divisor;
  }
  if (bad === 0) return -1;
  for (let j = 0; j < slots; j++) if (Math.abs(out[base + j] * divisor) > limit + 0.5) return j;
  return 0;
}

/** Decrypts a sum (or a single update: participants = [its member]) to the exact integer sum. */
export function decryptSumIntegers(ctx: HeContext, key: HeSecretKey, update: Uint8Array, participants: readonly string[]): DecryptedIntegers {
  const h = readUpdateHeader(ctx, update);
  const refs = resolveParticipants(h, participants);
  const out = new Float64Array(h.valueCount);
  decryptChunks(ctx, key, refs, h.tag, update, h.bodyOffset, h.kind, h.chunkCount, 0, h.valueCount, out, 0);
  return { values: Int32Array.from(out), addends: h.addends };
}

/** Decrypts a sum to real values (sum of the dequantized updates). `count`, if given, must match. */
export function decryptSum(ctx: HeContext, key: HeSecretKey, update: Uint8Array, participants: readonly string[], count?: number): Float64Array {
  const h = readUpdateHeader(ctx, update);
  if (count !== undefined && count !== h.valueCount) {
    throw new FedtwinError('HE_SHAPE_MISMATCH', `sum holds ${h.valueCount} values, expected ${count}`, { hint: 'the sum belongs to another model shape' });
  }
  const refs = resolveParticipants(h, participants);
  const out = new Float64Array(h.valueCount);
  decryptChunks(ctx, key, refs, h.tag, update, h.bodyOffset, h.kind, h.chunkCount, 0, h.valueCount, out, 0, ctx.scale);
  return out;
}
