// Encrypt (members), add (aggregator, keyless), decrypt (members): the vector-level API.
import { FedtwinError } from '@fedtwin/errors';
import type { Ciphertext } from 'node-seal';
import type { HeContext, KeyState } from './context.ts';
import { SEAL_CT_DATA_OFFSET, SEAL_PT_DATA_OFFSET, SEAL_SEED_BYTES, sealPrngTypeOffset } from './context.ts';
import { expandMidpointPairs, firstAtOrAbove, packBits, packedSize, shiftRightPairs, unpackBits } from './bits.ts';
import { quantize } from './quantize.ts';
import type { QuantSeed } from './quantize.ts';
import { keyState } from './keys.ts';
import type { HeSecretKey } from './keys.ts';
import {
  CHUNK_HEADER_BYTES, KIND_FRESH, KIND_SUM, KIND_SUM_COMPACT, PRNG_BLAKE2XB, UPDATE_HEADER_BYTES,
  chunkLayout, chunkSize, readUpdateHeader, writeChunkHeader, writeUpdateHeader,
} from './wire.ts';
import type { ChunkKind, FieldLayout, UpdateHeader } from './wire.ts';
import { sealCall } from './seal.ts';

const TWO32 = 4294967296;

export interface EncryptOptions {
  /** Seed of the stochastic rounding (tests); random when omitted. */
  seed?: QuantSeed;
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
  pairs2: Uint32Array;
}

const scratchFor = new WeakMap<HeContext, Scratch>();
function scratch(ctx: HeContext): Scratch {
  let s = scratchFor.get(ctx);
  if (!s) {
    const n = ctx.slotCount;
    s = { pairs: new Uint32Array(2 * n), pairs2: new Uint32Array(4 * n) };
    scratchFor.set(ctx, s);
  }
  return s;
}

/** Copies 8·count bytes at an arbitrary offset into an aligned (lo, hi) pair array. */
function readU64Pairs(bytes: Uint8Array, off: number, count: number, dst: Uint32Array): void {
  new Uint8Array(dst.buffer, dst.byteOffset, count * 8).set(bytes.subarray(off, off + count * 8));
}

/**
 * Encrypts ints[start, start+slots) as chunk `index` into out[off..]. Values are the plaintext polynomial's
 * coefficients (m_i = v_i mod t): sums only ever add ciphertexts, and coefficient-wise addition is all
 * they need, so SEAL's batching (an NTT mod t each way) is skipped. SEAL encrypts zero under the secret key
 * with a seed for c1 (its fast path); we add round(q·m/t) to c0 in float64 and drop c0DropBits low bits —
 * both errors are within the noise bound used to choose c0DropBits.
 */
function encryptChunk(ctx: HeContext, keyId: string, ks: KeyState, ints: Int32Array, start: number, slots: number, index: number, out: Uint8Array, off: number): void {
  const { slotCount: n } = ctx;
  const c0 = scratch(ctx).pairs;
  const seed = takeZero(ctx, keyId, ks, c0);

  const qd = Number(ctx.q);
  const qOverT = qd / Number(ctx.t);
  const div = 2 ** ctx.params.c0DropBits;
  const maxOut = Number((ctx.q - 1n) >> BigInt(ctx.params.c0DropBits));
  const t = Number(ctx.t);
  for (let i = 0; i < n; i++) {
    const v = i < slots ? ints[start + i] : 0;
    const m = v < 0 ? v + t : v; // plaintext coefficient v mod t
    let x = c0[2 * i + 1] * TWO32 + c0[2 * i] + m * qOverT;
    if (x >= qd) x -= qd;
    let o = Math.floor(x / div);
    if (o > maxOut) o = maxOut;
    c0[2 * i] = o >>> 0; // ToUint32 is o mod 2^32, exact for integers below 2^53
    c0[2 * i + 1] = (o / TWO32) >>> 0;
  }
  writeChunkHeader(ctx, out, off, { kind: KIND_FRESH, index, slots, addends: 1 });
  let p = packBits(c0, n, ctx.c0Bits, out, off + CHUNK_HEADER_BYTES);
  out[p++] = PRNG_BLAKE2XB;
  out.set(seed, p);
}

// ---------------------------------------------------------------------------------------------
// Offline phase. An encryption of zero does not depend on the data, so a member can make them
// before its update exists (while it trains: tfjs-wasm uses one core, the HE workers the other)
// and the online encryption is then only the float add and the bit packing. Each prepared
// ciphertext is used once and only under the key that made it; they live in this thread's memory.

interface PreparedZero {
  /** c0 as (lo, hi) pairs */
  c0: Uint32Array;
  /** SEAL's 64-byte seed of c1 */
  seed: Uint8Array;
}

const prepared = new WeakMap<HeContext, { keyId: string; zeros: PreparedZero[] }>();
/** Upper bound on prepared ciphertexts per thread (33 KiB each): 2048 ≈ 68 MiB, 8M values. */
export const MAX_PREPARED_ZEROS = 2048;

/** A fresh seeded encryption of zero: c0 into `c0` (pairs), returns the seed. */
function freshZero(ctx: HeContext, ks: KeyState, c0: Uint32Array): Uint8Array {
  const { seal, slotCount: n } = ctx;
  const ser = ks.encryptor.encryptSymmetricSerializable(ctx.zeroPlain);
  const ctBytes = ser.saveToArray(seal.ComprModeType.none) as Uint8Array;
  ser.delete();
  readU64Pairs(ctBytes, SEAL_CT_DATA_OFFSET, n, c0);
  const prngOff = sealPrngTypeOffset(n);
  if (ctBytes[prngOff] !== PRNG_BLAKE2XB) throw new FedtwinError('HE_SEAL_LAYOUT', `SEAL used PRNG type ${ctBytes[prngOff]}`, { hint: 'node-seal changed its default PRNG' });
  return ctBytes.slice(prngOff + 1, prngOff + 1 + SEAL_SEED_BYTES);
}

/** Uses a prepared encryption of zero under this key if there is one (removing it), else makes one. */
function takeZero(ctx: HeContext, keyId: string, ks: KeyState, c0: Uint32Array): Uint8Array {
  const pool = prepared.get(ctx);
  const z = pool?.keyId === keyId ? pool.zeros.pop() : undefined;
  if (!z) return freshZero(ctx, ks, c0);
  c0.set(z.c0);
  z.c0.fill(0); // the c0 of a used encryption of zero is as sensitive as the update it hid
  return z.seed;
}

/** Prepares up to `count` more encryptions of zero under `key` on this thread; returns how many are ready. */
export function prepareZeros(ctx: HeContext, key: HeSecretKey, count: number): number {
  const ks = keyState(ctx, key);
  let pool = prepared.get(ctx);
  if (!pool || pool.keyId !== key.keyId) {
    for (const z of pool?.zeros ?? []) z.c0.fill(0);
    pool = { keyId: key.keyId, zeros: [] };
    prepared.set(ctx, pool);
  }
  const want = Math.min(MAX_PREPARED_ZEROS, Math.max(0, Math.floor(count)));
  const n = ctx.slotCount;
  while (pool.zeros.length < want) {
    const c0 = new Uint32Array(2 * n);
    const seed = freshZero(ctx, ks, c0);
    pool.zeros.push({ c0, seed });
  }
  return pool.zeros.length;
}

/**
 * Encrypts chunks [firstChunk, firstChunk + ceil(ints.length / N)) of a vector of totalValues values;
 * ints[0] is value firstChunk·N. Returns their concatenated wire bytes (used by the worker pool).
 */
export function encryptChunkRange(ctx: HeContext, key: HeSecretKey, ints: Int32Array, firstChunk: number, totalValues: number): Uint8Array {
  const ks = keyState(ctx, key);
  const n = ctx.slotCount;
  const chunks = Math.ceil(ints.length / n);
  const size = chunkSize(ctx, KIND_FRESH);
  const out = new Uint8Array(chunks * size);
  for (let c = 0; c < chunks; c++) {
    const index = firstChunk + c;
    const slots = Math.min(n, totalValues - index * n);
    if (slots < 1 || c * n + slots > ints.length) badArg('chunk range does not match the vector length', 'internal: check the pool split');
    encryptChunk(ctx, key.keyId, ks, ints, c * n, slots, index, out, c * size);
  }
  return out;
}

/** Wraps fresh chunk bytes (in index order) into an update container. */
export function assembleUpdate(ctx: HeContext, valueCount: number, parts: readonly Uint8Array[], kind: ChunkKind = KIND_FRESH, addends = 1): Uint8Array {
  const chunkCount = Math.ceil(valueCount / ctx.slotCount);
  const total = parts.reduce((a, p) => a + p.length, 0);
  if (total !== chunkCount * chunkSize(ctx, kind, addends)) badArg('chunk bytes do not add up to the update size', 'internal: check the pool split');
  const out = new Uint8Array(UPDATE_HEADER_BYTES + total);
  writeUpdateHeader(ctx, out, { kind, valueCount, chunkCount, addends });
  let o = UPDATE_HEADER_BYTES;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Quantizes (floats) and encrypts a whole update on this thread. See createHePool for the parallel version. */
export function encryptVector(ctx: HeContext, key: HeSecretKey, values: Float32Array | Float64Array | Int32Array, opts: EncryptOptions = {}): EncryptResult {
  checkValueCount(ctx, values.length);
  const { ints, clipped } = toIntegers(ctx, values, opts.seed);
  const body = encryptChunkRange(ctx, key, ints, 0, values.length);
  return { update: assembleUpdate(ctx, values.length, [body]), valueCount: values.length, clipped };
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

/**
 * Unpacks chunk i of a validated update into SEAL's byte layout and loads it into `target`.
 * Coefficients are range-checked here, before SEAL parses them; dropped low bits come back at their midpoint.
 */
function loadChunk(ctx: HeContext, bytes: Uint8Array, off: number, kind: ChunkKind, addends: number, target: Ciphertext): void {
  const n = ctx.slotCount;
  const s = scratch(ctx);
  const body = off + CHUNK_HEADER_BYTES;
  const [qLo, qHi] = ctx.qWords;
  const L = chunkLayout(ctx, kind, addends);
  if (!L.c1) {
    const c0 = s.pairs;
    const end = unpackChecked(ctx, bytes, body, L.c0, c0, 0);
    expandMidpointPairs(c0, n, L.c0.drop, qLo, qHi);
    if (bytes[end] !== PRNG_BLAKE2XB) malformedCoeff(-1, `unsupported PRNG type ${bytes[end]} in the seed`);
    const tpl = ctx.seededTemplate;
    tpl.set(new Uint8Array(c0.buffer, 0, n * 8), SEAL_CT_DATA_OFFSET);
    const prngOff = sealPrngTypeOffset(n);
    tpl[prngOff] = PRNG_BLAKE2XB;
    tpl.set(bytes.subarray(end + 1, end + 1 + SEAL_SEED_BYTES), prngOff + 1);
    sealCall('HE_MALFORMED_CIPHERTEXT', 'SEAL rejected a validated ciphertext', () => target.loadFromArray(ctx.sealContext, tpl));
  } else {
    const c = s.pairs2;
    const mid = unpackChecked(ctx, bytes, body, L.c0, c, 0);
    unpackChecked(ctx, bytes, mid, L.c1, c.subarray(2 * n), n);
    expandMidpointPairs(c, n, L.c0.drop, qLo, qHi);
    expandMidpointPairs(c.subarray(2 * n), n, L.c1.drop, qLo, qHi);
    const tpl = ctx.fullTemplate;
    tpl.set(new Uint8Array(c.buffer, 0, 2 * n * 8), SEAL_CT_DATA_OFFSET);
    sealCall('HE_MALFORMED_CIPHERTEXT', 'SEAL rejected a validated ciphertext', () => target.loadFromArray(ctx.sealContext, tpl));
  }
}

function notAddable(): never {
  throw new FedtwinError('HE_SUM_FINAL', 'a compact sum cannot be added to: its rounding used up the noise budget of its addends', {
    hint: 'add full-width sums (Accumulator.result() without compact) for tree aggregation; publish the compact one only to members',
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
 * every bit pattern is valid (e.g. a fresh c0 under the default parameters) is not unpacked at all.
 */
export function validateChunks(ctx: HeContext, bytes: Uint8Array, off: number, kind: ChunkKind, count: number, addends = 1): void {
  const n = ctx.slotCount;
  const size = chunkSize(ctx, kind, addends);
  const s = scratch(ctx);
  const L = chunkLayout(ctx, kind, addends);
  for (let i = 0; i < count; i++) {
    const body = off + i * size + CHUNK_HEADER_BYTES;
    const mid = body + packedSize(n, L.c0.bits);
    if (L.c0.bound) unpackChecked(ctx, bytes, body, L.c0, s.pairs2, 0);
    if (!L.c1) {
      if (bytes[mid] !== PRNG_BLAKE2XB) malformedCoeff(-1, `unsupported PRNG type ${bytes[mid]} in the seed`);
    } else if (L.c1.bound) {
      unpackChecked(ctx, bytes, mid, L.c1, s.pairs2.subarray(2 * n), n);
    }
  }
}

/** Checks a whole update (header, exact length, every chunk header and coefficient) without SEAL. */
export function validateCiphertext(ctx: HeContext, bytes: Uint8Array): { kind: ChunkKind; valueCount: number; addends: number } {
  const h = readUpdateHeader(ctx, bytes);
  validateChunks(ctx, bytes, UPDATE_HEADER_BYTES, h.kind, h.chunkCount, h.addends);
  return { kind: h.kind, valueCount: h.valueCount, addends: h.addends };
}

/**
 * Running sums of a contiguous range of chunks (the whole vector, or one worker's share of it).
 * Chunk headers must have been checked by the caller; coefficients are checked in loadChunk.
 */
export class ChunkRangeSum {
  readonly ctx: HeContext;
  #sums: Ciphertext[] = [];
  #tmp: Ciphertext;

  constructor(ctx: HeContext) {
    this.ctx = ctx;
    this.#tmp = new ctx.seal.Ciphertext();
  }

  /** Adds `count` chunks laid out back to back from bytes[off] (fresh, or full-width sums of `addends`). */
  add(bytes: Uint8Array, off: number, kind: ChunkKind, count: number, addends = 1): void {
    const ctx = this.ctx;
    if (kind === KIND_SUM_COMPACT) notAddable();
    const size = chunkSize(ctx, kind, addends);
    if (this.#sums.length !== 0 && this.#sums.length !== count) throw new FedtwinError('HE_SHAPE_MISMATCH', `got ${count} chunks, the sum has ${this.#sums.length}`, { hint: 'every member must send the same shared sub-model' });
    const first = this.#sums.length === 0;
    for (let i = 0; i < count; i++) {
      if (first) {
        const ct = new ctx.seal.Ciphertext();
        loadChunk(ctx, bytes, off + i * size, kind, addends, ct);
        this.#sums.push(ct);
      } else {
        loadChunk(ctx, bytes, off + i * size, kind, addends, this.#tmp);
        ctx.evaluator.addInplace(this.#sums[i], this.#tmp);
      }
    }
  }

  /** Sum chunks for this range, chunk indices from firstChunk: full width, or compact (final; see params.ts). */
  save(firstChunk: number, valueCount: number, addends: number, compact = false): Uint8Array {
    const ctx = this.ctx;
    const n = ctx.slotCount;
    const kind = compact ? KIND_SUM_COMPACT : KIND_SUM;
    const size = chunkSize(ctx, kind, addends);
    const { c0: f0, c1: f1 } = chunkLayout(ctx, kind, addends) as { c0: FieldLayout; c1: FieldLayout };
    const out = new Uint8Array(this.#sums.length * size);
    const c = scratch(ctx).pairs2;
    for (let i = 0; i < this.#sums.length; i++) {
      const bytes = this.#sums[i].saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;
      readU64Pairs(bytes, SEAL_CT_DATA_OFFSET, 2 * n, c);
      const index = firstChunk + i;
      writeChunkHeader(ctx, out, i * size, { kind, index, slots: Math.min(n, valueCount - index * n), addends });
      const c1 = c.subarray(2 * n);
      shiftRightPairs(c, n, f0.drop, c);
      shiftRightPairs(c1, n, f1.drop, c1);
      const mid = packBits(c, n, f0.bits, out, i * size + CHUNK_HEADER_BYTES);
      packBits(c1, n, f1.bits, out, mid);
    }
    return out;
  }

  dispose(): void {
    for (const ct of this.#sums) ct.delete();
    this.#sums = [];
    this.#tmp.delete();
  }
}

/**
 * The aggregator's running sum (on this thread; createHePool offers one spread over workers). Holds
 * one SEAL ciphertext per chunk and no key: adding needs only the public parameters. Accepts fresh
 * updates and sums (for tree aggregation).
 */
export class Accumulator {
  readonly ctx: HeContext;
  #range: ChunkRangeSum;
  #valueCount: number | undefined;
  #addends = 0;

  constructor(ctx: HeContext) {
    this.ctx = ctx;
    this.#range = new ChunkRangeSum(ctx);
  }

  /** Updates summed so far (a sum counts as its own addends). */
  get addends(): number {
    return this.#addends;
  }

  get valueCount(): number | undefined {
    return this.#valueCount;
  }

  /** Validates then adds one update; on any error the running sum is unchanged. */
  add(update: Uint8Array): void {
    const ctx = this.ctx;
    const h = checkAddable(ctx, update, this.#valueCount, this.#addends);
    // Range checks must finish before the first addition so a bad chunk cannot leave a half-added sum.
    validateChunks(ctx, update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount, h.addends);
    this.#range.add(update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount, h.addends);
    this.#valueCount = h.valueCount;
    this.#addends += h.addends;
  }

  /**
   * The encrypted sum as an update container: full width (kind "sum", both polynomials at ceil(log2 q)
   * bits, can be added again) or, with `compact`, rounded within the noise budget its addends leave (what
   * members download; final).
   */
  result(opts: { compact?: boolean } = {}): Uint8Array {
    if (this.#valueCount === undefined) throw new FedtwinError('HE_EMPTY_SUM', 'no update has been added', { hint: 'add at least one update before taking the result' });
    const compact = opts.compact === true;
    const body = this.#range.save(0, this.#valueCount, this.#addends, compact);
    return assembleUpdate(this.ctx, this.#valueCount, [body], compact ? KIND_SUM_COMPACT : KIND_SUM, this.#addends);
  }

  /** Frees the WASM memory of the running sum. */
  dispose(): void {
    this.#range.dispose();
  }
}

/** Header checks shared by both accumulators: shape, and headroom for maxParticipants. */
export function checkAddable(ctx: HeContext, update: Uint8Array, valueCount: number | undefined, addends: number): UpdateHeader {
  const h = readUpdateHeader(ctx, update);
  if (h.kind === KIND_SUM_COMPACT) notAddable();
  if (valueCount !== undefined && h.valueCount !== valueCount) {
    throw new FedtwinError('HE_SHAPE_MISMATCH', `update has ${h.valueCount} values, the sum has ${valueCount}`, { hint: 'every member must send the same shared sub-model' });
  }
  if (addends + h.addends > ctx.params.maxParticipants) {
    throw new FedtwinError('HE_HEADROOM_EXCEEDED', `adding ${h.addends} more update(s) to ${addends} exceeds maxParticipants ${ctx.params.maxParticipants}`, {
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
 * Decrypts `count` chunks laid out from bytes[off] (headers already checked) into out[outOffset..].
 * Chunk i of the range is chunk firstChunk + i of a vector of valueCount values summing `addends` updates.
 */
export function decryptChunks(ctx: HeContext, key: HeSecretKey, bytes: Uint8Array, off: number, kind: ChunkKind, count: number,
  firstChunk: number, valueCount: number, addends: number, out: Int32Array, outOffset: number): void {
  const ks = keyState(ctx, key);
  const n = ctx.slotCount;
  const size = chunkSize(ctx, kind, addends);
  const limit = addends * ctx.quantMax;
  const t = Number(ctx.t);
  const halfT = (t - 1) / 2;
  const ct = ctx.scratchCt;
  const pt = ctx.scratchPt;
  for (let i = 0; i < count; i++) {
    loadChunk(ctx, bytes, off + i * size, kind, addends, ct);
    ks.decryptor.decrypt(ct, pt);
    // The plaintext's coefficients are the values mod t (SEAL trims trailing zero coefficients).
    const ptBytes = pt.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;
    const dv = new DataView(ptBytes.buffer, ptBytes.byteOffset, ptBytes.byteLength);
    const have = Number(dv.getBigUint64(SEAL_PT_DATA_OFFSET - 8, true));
    if (have > n || ptBytes.length !== SEAL_PT_DATA_OFFSET + have * 8) {
      throw new FedtwinError('HE_SEAL_LAYOUT', `decrypted plaintext has ${have} coefficients in ${ptBytes.length} bytes`, { hint: 'node-seal changed its plaintext serialization' });
    }
    // low 32-bit words of the coefficients (an aligned copy: the u64s sit at offset 88)
    const words = new Uint32Array(ptBytes.buffer.slice(ptBytes.byteOffset + SEAL_PT_DATA_OFFSET, ptBytes.byteOffset + ptBytes.length));
    const index = firstChunk + i;
    const slots = Math.min(n, valueCount - index * n);
    const base = outOffset + i * n;
    for (let j = 0; j < slots; j++) {
      let v = 0;
      if (j < have) {
        const lo = words[2 * j];
        v = lo > halfT ? lo - t : lo; // centred; coefficients are < t < 2^31, so the high word is 0
      }
      // An honest sum lies in [-addends·qmax, addends·qmax]; anything else means a wrong key or a forged sum.
      if (v > limit || v < -limit) {
        throw new FedtwinError('HE_DECRYPT_FAILED', `decrypted value ${index * n + j} = ${v} is outside the possible range ±${limit}`, {
          hint: 'the sum was made under another key, or was corrupted or forged by the aggregator',
        });
      }
      out[base + j] = v;
    }
  }
}

/** Decrypts a sum (or a single update) to the exact integer sum. */
export function decryptSumIntegers(ctx: HeContext, key: HeSecretKey, update: Uint8Array): DecryptedIntegers {
  const h = readUpdateHeader(ctx, update);
  const out = new Int32Array(h.valueCount);
  decryptChunks(ctx, key, update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount, 0, h.valueCount, h.addends, out, 0);
  return { values: out, addends: h.addends };
}

/** Decrypts a sum to real values (sum of the dequantized updates). `count`, if given, must match. */
export function decryptSum(ctx: HeContext, key: HeSecretKey, update: Uint8Array, count?: number): Float64Array {
  const { values } = decryptSumIntegers(ctx, key, update);
  if (count !== undefined && count !== values.length) {
    throw new FedtwinError('HE_SHAPE_MISMATCH', `sum holds ${values.length} values, expected ${count}`, { hint: 'the sum belongs to another model shape' });
  }
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / ctx.scale;
  return out;
}

