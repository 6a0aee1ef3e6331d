// Encrypt (members), add (aggregator, keyless), decrypt (members): the vector-level API.
import { FedtwinError } from '@fedtwin/errors';
import type { Ciphertext } from 'node-seal';
import type { HeContext, KeyState } from './context.ts';
import { SEAL_CT_DATA_OFFSET, SEAL_PT_DATA_OFFSET, SEAL_SEED_BYTES } from './context.ts';
import { firstAtOrAbove, packBits, unpackBits } from './bits.ts';
import { quantize } from './quantize.ts';
import type { QuantSeed } from './quantize.ts';
import { keyState } from './keys.ts';
import type { HeSecretKey } from './keys.ts';
import {
  CHUNK_HEADER_BYTES, KIND_FRESH, KIND_SUM, PRNG_BLAKE2XB, UPDATE_HEADER_BYTES,
  chunkSize, readUpdateHeader, writeChunkHeader, writeUpdateHeader,
} from './wire.ts';
import type { ChunkKind, UpdateHeader } from './wire.ts';
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
  big: BigInt64Array;
  bigWords: Int32Array;
  pairs: Uint32Array;
  pairs2: Uint32Array;
}

const scratchFor = new WeakMap<HeContext, Scratch>();
function scratch(ctx: HeContext): Scratch {
  let s = scratchFor.get(ctx);
  if (!s) {
    const n = ctx.slotCount;
    const big = new BigInt64Array(n);
    s = { big, bigWords: new Int32Array(big.buffer), pairs: new Uint32Array(2 * n), pairs2: new Uint32Array(4 * n) };
    scratchFor.set(ctx, s);
  }
  return s;
}

/** Copies 8·count bytes at an arbitrary offset into an aligned (lo, hi) pair array. */
function readU64Pairs(bytes: Uint8Array, off: number, count: number, dst: Uint32Array): void {
  new Uint8Array(dst.buffer, dst.byteOffset, count * 8).set(bytes.subarray(off, off + count * 8));
}

/**
 * Encrypts ints[start, start+slots) as chunk `index` into out[off..]. SEAL encrypts zero under the secret
 * key with a seed for c1 (its fast path); we add round(q·m/t) to c0 in float64 and drop c0DropBits low
 * bits — both errors are within the noise bound used to choose c0DropBits.
 */
function encryptChunk(ctx: HeContext, ks: KeyState, ints: Int32Array, start: number, slots: number, index: number, out: Uint8Array, off: number): void {
  const { seal, slotCount: n } = ctx;
  const s = scratch(ctx);
  const w = s.bigWords;
  for (let i = 0; i < slots; i++) {
    const v = ints[start + i];
    w[2 * i] = v;
    w[2 * i + 1] = v >> 31;
  }
  w.fill(0, 2 * slots);
  ctx.encoder.encode(s.big, ctx.scratchPt);
  const ptBytes = ctx.scratchPt.saveToArray(seal.ComprModeType.none) as Uint8Array;
  const m = s.pairs2; // plaintext coefficients (< t < 2^31): low words only
  readU64Pairs(ptBytes, SEAL_PT_DATA_OFFSET, n, m);

  const ser = ks.encryptor.encryptSymmetricSerializable(ctx.zeroPlain);
  const ctBytes = ser.saveToArray(seal.ComprModeType.none) as Uint8Array;
  ser.delete();
  const c0 = s.pairs;
  readU64Pairs(ctBytes, SEAL_CT_DATA_OFFSET, n, c0);
  const prngOff = SEAL_CT_DATA_OFFSET + n * 8 + 16;
  if (ctBytes[prngOff] !== PRNG_BLAKE2XB) throw new FedtwinError('HE_SEAL_LAYOUT', `SEAL used PRNG type ${ctBytes[prngOff]}`, { hint: 'node-seal changed its default PRNG' });

  const qd = Number(ctx.q);
  const qOverT = qd / Number(ctx.t);
  const div = 2 ** ctx.params.c0DropBits;
  const maxOut = Number((ctx.q - 1n) >> BigInt(ctx.params.c0DropBits));
  for (let i = 0; i < n; i++) {
    let x = c0[2 * i + 1] * TWO32 + c0[2 * i] + m[2 * i] * qOverT;
    if (x >= qd) x -= qd;
    let o = Math.floor(x / div);
    if (o > maxOut) o = maxOut;
    c0[2 * i] = o >>> 0; // ToUint32 is o mod 2^32, exact for integers below 2^53
    c0[2 * i + 1] = (o / TWO32) >>> 0;
  }
  writeChunkHeader(ctx, out, off, { kind: KIND_FRESH, index, slots, addends: 1 });
  let p = packBits(c0, n, ctx.c0Bits, out, off + CHUNK_HEADER_BYTES);
  out[p++] = PRNG_BLAKE2XB;
  out.set(ctBytes.subarray(prngOff + 1, prngOff + 1 + SEAL_SEED_BYTES), p);
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
    encryptChunk(ctx, ks, ints, c * n, slots, index, out, c * size);
  }
  return out;
}

/** Wraps fresh chunk bytes (in index order) into an update container. */
export function assembleUpdate(ctx: HeContext, valueCount: number, parts: readonly Uint8Array[], kind: ChunkKind = KIND_FRESH, addends = 1): Uint8Array {
  const chunkCount = Math.ceil(valueCount / ctx.slotCount);
  const total = parts.reduce((a, p) => a + p.length, 0);
  if (total !== chunkCount * chunkSize(ctx, kind)) badArg('chunk bytes do not add up to the update size', 'internal: check the pool split');
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

/**
 * Unpacks chunk i of a validated update into SEAL's byte layout and loads it into `target`.
 * Coefficients are range-checked here, before SEAL parses them.
 */
function loadChunk(ctx: HeContext, bytes: Uint8Array, off: number, kind: ChunkKind, target: Ciphertext): void {
  const n = ctx.slotCount;
  const s = scratch(ctx);
  const body = off + CHUNK_HEADER_BYTES;
  if (kind === KIND_FRESH) {
    const c0 = s.pairs;
    const end = unpackBits(bytes, body, n, ctx.c0Bits, c0);
    const b = ctx.params.c0DropBits;
    const maxOut = (ctx.q - 1n) >> BigInt(b);
    if (maxOut !== (1n << BigInt(ctx.c0Bits)) - 1n) {
      const bad = firstAtOrAbove(c0, n, Number((maxOut + 1n) % 4294967296n), Number((maxOut + 1n) >> 32n));
      if (bad >= 0) malformedCoeff(bad);
    }
    // Re-insert the dropped bits at their midpoint: c0 = o·2^b + 2^(b-1) (8 ≤ b ≤ 32), reduced mod q exactly.
    const half = 2 ** (b - 1);
    const qLo = Number(ctx.q % 4294967296n);
    const qHi = Number(ctx.q >> 32n);
    for (let i = 0; i < n; i++) {
      const olo = c0[2 * i];
      let lo = b === 32 ? half : (((olo << b) >>> 0) + half);
      let hi = b === 32 ? olo : ((olo >>> (32 - b)) | (c0[2 * i + 1] << b)) >>> 0;
      if (hi > qHi || (hi === qHi && lo >= qLo)) {
        lo -= qLo;
        hi -= qHi;
        if (lo < 0) {
          lo += TWO32;
          hi -= 1;
        }
      }
      c0[2 * i] = lo;
      c0[2 * i + 1] = hi;
    }
    if (bytes[end] !== PRNG_BLAKE2XB) malformedCoeff(-1, `unsupported PRNG type ${bytes[end]} in the seed`);
    const tpl = ctx.seededTemplate;
    tpl.set(new Uint8Array(c0.buffer, 0, n * 8), SEAL_CT_DATA_OFFSET);
    const prngOff = SEAL_CT_DATA_OFFSET + n * 8 + 16;
    tpl[prngOff] = PRNG_BLAKE2XB;
    tpl.set(bytes.subarray(end + 1, end + 1 + SEAL_SEED_BYTES), prngOff + 1);
    sealCall('HE_MALFORMED_CIPHERTEXT', 'SEAL rejected a validated ciphertext', () => target.loadFromArray(ctx.sealContext, tpl));
  } else {
    const c = s.pairs2;
    const mid = unpackBits(bytes, body, n, ctx.qBits, c);
    unpackBits(bytes, mid, n, ctx.qBits, c.subarray(2 * n));
    const bad = firstAtOrAbove(c, 2 * n, Number(ctx.q % 4294967296n), Number(ctx.q >> 32n));
    if (bad >= 0) malformedCoeff(bad);
    const tpl = ctx.fullTemplate;
    tpl.set(new Uint8Array(c.buffer, 0, 2 * n * 8), SEAL_CT_DATA_OFFSET);
    sealCall('HE_MALFORMED_CIPHERTEXT', 'SEAL rejected a validated ciphertext', () => target.loadFromArray(ctx.sealContext, tpl));
  }
}

function malformedCoeff(index: number, message?: string): never {
  throw new FedtwinError('HE_MALFORMED_CIPHERTEXT', message ?? `ciphertext coefficient ${index} is not below the modulus q`, {
    hint: 'the sender is buggy or malicious; drop this message',
    details: { index },
  });
}

/** True when every packed c0 pattern is below the bound, so fresh chunks cannot carry an out-of-range coefficient. */
export function freshRangeIsVacuous(ctx: HeContext): boolean {
  return (ctx.q - 1n) >> BigInt(ctx.params.c0DropBits) === (1n << BigInt(ctx.c0Bits)) - 1n;
}

/** Range-checks `count` chunks laid out back to back from `off` (headers already checked). */
export function validateChunks(ctx: HeContext, bytes: Uint8Array, off: number, kind: ChunkKind, count: number): void {
  const n = ctx.slotCount;
  const size = chunkSize(ctx, kind);
  const s = scratch(ctx);
  for (let i = 0; i < count; i++) {
    const body = off + i * size + CHUNK_HEADER_BYTES;
    if (kind === KIND_FRESH) {
      const end = unpackBits(bytes, body, n, ctx.c0Bits, s.pairs);
      const maxOut = (ctx.q - 1n) >> BigInt(ctx.params.c0DropBits);
      const bad = firstAtOrAbove(s.pairs, n, Number((maxOut + 1n) % 4294967296n), Number((maxOut + 1n) >> 32n));
      if (bad >= 0) malformedCoeff(bad);
      if (bytes[end] !== PRNG_BLAKE2XB) malformedCoeff(-1, `unsupported PRNG type ${bytes[end]} in the seed`);
    } else {
      const mid = unpackBits(bytes, body, n, ctx.qBits, s.pairs2);
      unpackBits(bytes, mid, n, ctx.qBits, s.pairs2.subarray(2 * n));
      const bad = firstAtOrAbove(s.pairs2, 2 * n, Number(ctx.q % 4294967296n), Number(ctx.q >> 32n));
      if (bad >= 0) malformedCoeff(bad);
    }
  }
}

/** Checks a whole update (header, exact length, every chunk header and coefficient) without SEAL. */
export function validateCiphertext(ctx: HeContext, bytes: Uint8Array): { kind: ChunkKind; valueCount: number; addends: number } {
  const h = readUpdateHeader(ctx, bytes);
  validateChunks(ctx, bytes, UPDATE_HEADER_BYTES, h.kind, h.chunkCount);
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

  /** Adds `count` chunks laid out back to back from bytes[off]. */
  add(bytes: Uint8Array, off: number, kind: ChunkKind, count: number): void {
    const ctx = this.ctx;
    const size = chunkSize(ctx, kind);
    if (this.#sums.length !== 0 && this.#sums.length !== count) throw new FedtwinError('HE_SHAPE_MISMATCH', `got ${count} chunks, the sum has ${this.#sums.length}`, { hint: 'every member must send the same shared sub-model' });
    const first = this.#sums.length === 0;
    for (let i = 0; i < count; i++) {
      if (first) {
        const ct = new ctx.seal.Ciphertext();
        loadChunk(ctx, bytes, off + i * size, kind, ct);
        this.#sums.push(ct);
      } else {
        loadChunk(ctx, bytes, off + i * size, kind, this.#tmp);
        ctx.evaluator.addInplace(this.#sums[i], this.#tmp);
      }
    }
  }

  /** Sum chunks (kind "sum") for this range, chunk indices from firstChunk. */
  save(firstChunk: number, valueCount: number, addends: number): Uint8Array {
    const ctx = this.ctx;
    const n = ctx.slotCount;
    const size = chunkSize(ctx, KIND_SUM);
    const out = new Uint8Array(this.#sums.length * size);
    const c = scratch(ctx).pairs2;
    for (let i = 0; i < this.#sums.length; i++) {
      const bytes = this.#sums[i].saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;
      readU64Pairs(bytes, SEAL_CT_DATA_OFFSET, 2 * n, c);
      const index = firstChunk + i;
      writeChunkHeader(ctx, out, i * size, { kind: KIND_SUM, index, slots: Math.min(n, valueCount - index * n), addends });
      const mid = packBits(c, n, ctx.qBits, out, i * size + CHUNK_HEADER_BYTES);
      packBits(c.subarray(2 * n), n, ctx.qBits, out, mid);
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
    if (h.kind === KIND_SUM || !freshRangeIsVacuous(ctx)) validateChunks(ctx, update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount);
    this.#range.add(update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount);
    this.#valueCount = h.valueCount;
    this.#addends += h.addends;
  }

  /** The encrypted sum as an update container of kind "sum" (both polynomials packed to ceil(log2 q) bits). */
  result(): Uint8Array {
    if (this.#valueCount === undefined) throw new FedtwinError('HE_EMPTY_SUM', 'no update has been added', { hint: 'add at least one update before taking the result' });
    const body = this.#range.save(0, this.#valueCount, this.#addends);
    return assembleUpdate(this.ctx, this.#valueCount, [body], KIND_SUM, this.#addends);
  }

  /** Frees the WASM memory of the running sum. */
  dispose(): void {
    this.#range.dispose();
  }
}

/** Header checks shared by both accumulators: shape, and headroom for maxParticipants. */
export function checkAddable(ctx: HeContext, update: Uint8Array, valueCount: number | undefined, addends: number): UpdateHeader {
  const h = readUpdateHeader(ctx, update);
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
  const size = chunkSize(ctx, kind);
  const limit = addends * ctx.quantMax;
  const ct = ctx.scratchCt;
  const pt = ctx.scratchPt;
  for (let i = 0; i < count; i++) {
    loadChunk(ctx, bytes, off + i * size, kind, ct);
    ks.decryptor.decrypt(ct, pt);
    const words = new Int32Array((ctx.encoder.decodeBigInt64(pt) as BigInt64Array).buffer);
    const index = firstChunk + i;
    const slots = Math.min(n, valueCount - index * n);
    const base = outOffset + i * n;
    for (let j = 0; j < slots; j++) {
      const v = words[2 * j];
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

