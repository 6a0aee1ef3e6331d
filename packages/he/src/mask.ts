// The RLWE masks of fedtwin's aggregation: a round-common uniform polynomial `a` per chunk, and per-member
// secrets derived from the consortium key. A member's ciphertext is c0 = −a·s_i + e + Δm; the aggregator
// adds c0s; a member decrypts with the mask a·Σ_{i∈P} s_i. The products a·s run in SEAL (NTT domain).
import { createCipheriv, createHash, hkdfSync, randomBytes, randomFillSync } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import type { Plaintext } from 'node-seal';
import type { HeContext } from './context.ts';
import { SEAL_CT_DATA_OFFSET, SEAL_PT_DATA_OFFSET } from './context.ts';
import type { HeSecretKey } from './keys.ts';
import { keyState } from './keys.ts';
import { sealCall } from './seal.ts';

const TWO32 = 4294967296;
/** Byte offset of the ciphertext's is_ntt_form flag in SEAL's serialization (after header 16 and parms_id 32). */
const SEAL_CT_NTT_FLAG_OFFSET = 48;
export const ROUND_TAG_BYTES = 32;
/** Bytes of the per-encryption nonce that enters a member's secret (wire v4). */
export const NONCE_BYTES = 16;
/** Bytes of a member id's hash in an update's participant table (wire v4). */
export const MEMBER_HASH_BYTES = 16;
/** Largest member id accepted (UTF-8 bytes); libp2p peer ids are ~52 characters. */
export const MAX_MEMBER_ID_BYTES = 256;

function badArg(message: string, hint: string): never {
  throw new FedtwinError('HE_BAD_ARGUMENT', message, { hint });
}

export function checkTag(tag: unknown): Uint8Array {
  if (!(tag instanceof Uint8Array) || tag.length !== ROUND_TAG_BYTES) badArg(`the round tag must be ${ROUND_TAG_BYTES} bytes`, 'derive it with roundTag()');
  return tag;
}

export function checkMember(member: unknown): string {
  if (typeof member !== 'string' || member.length === 0 || Buffer.byteLength(member) > MAX_MEMBER_ID_BYTES) {
    badArg(`member id must be a non-empty string of at most ${MAX_MEMBER_ID_BYTES} bytes`, 'use the member\'s peer id');
  }
  return member;
}

export function checkNonce(nonce: unknown): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) badArg(`the encryption nonce must be ${NONCE_BYTES} bytes`, 'leave it out: encrypt() draws a fresh one from the OS CSPRNG');
  return nonce;
}

/** A fresh encryption nonce from the OS CSPRNG. */
export function freshNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/** The 16-byte label of a member id in an update's participant table: SHA-256("fedtwin/he/member-id/v1\0" ‖ id), truncated. */
export function memberHash(member: string): Uint8Array {
  checkMember(member);
  return new Uint8Array(createHash('sha256').update('fedtwin/he/member-id/v1\0').update(member, 'utf8').digest().subarray(0, MEMBER_HASH_BYTES));
}

/** One addend of a sum: whose secret, and the nonce it was derived with. */
export interface SecretRef {
  member: string;
  nonce: Uint8Array;
}

/**
 * The round tag that names a round's common polynomial a: H(key id, round, base model hash). Every member of
 * a round derives the same tag, and a member never encrypts two different updates under one tag (a round
 * number and base are contributed to once; see docs/he.md §2 on reuse).
 */
export function roundTag(init: { keyId: string; round: number; baseHash: string }): Uint8Array {
  if (!Number.isSafeInteger(init.round) || init.round < 0) badArg(`round must be a non-negative integer, got ${init.round}`, 'pass the task\'s round');
  return new Uint8Array(createHash('sha256').update('fedtwin/he/round-tag/v1\0').update(init.keyId).update('\0').update(String(init.round)).update('\0').update(init.baseHash).digest());
}

/** AES key of the round's a-stream: H(params ‖ tag). */
export function aStreamKey(ctx: HeContext, tag: Uint8Array): Buffer {
  return createHash('sha256').update('fedtwin/he/a/v1\0').update(ctx.paramsId).update(tag).digest();
}

const zeroBlocks = new Map<number, Buffer>();
function zeros(bytes: number): Buffer {
  let z = zeroBlocks.get(bytes);
  if (!z) zeroBlocks.set(bytes, (z = Buffer.alloc(bytes)));
  return z;
}

/**
 * The common polynomials a of chunks [first, first + count) (count 1 or 2), uniform mod q in the NTT domain
 * (a uniform polynomial is uniform in either domain): AES-256-CTR under aStreamKey, chunk c's coefficients at
 * counter c·N/2 onward, 8 bytes each masked to q's bit length; a value ≥ q is redrawn from chunk c's own spare
 * stream (counter 2^127 + c·2^32). Writes (lo, hi) pairs into dst.
 */
export function expandA(ctx: HeContext, aesKey: Buffer, first: number, count: number, dst: Uint32Array, stream?: AStream): void {
  const n = ctx.slotCount;
  const bytes = (stream ?? aStream(ctx, aesKey, first)).next(first, count);
  new Uint8Array(dst.buffer, dst.byteOffset, count * n * 8).set(bytes);
  bytes.fill(0);
  const [qLo, qHi] = ctx.qWords;
  const hiMask = 2 ** (ctx.qBits - 32) - 1;
  for (let i = 0; i < count * n; i++) {
    const hi = dst[2 * i + 1] & hiMask;
    dst[2 * i + 1] = hi;
    if (hi > qHi || (hi === qHi && dst[2 * i] >= qLo)) redraw(ctx, aesKey, first + Math.floor(i / n), dst, i, hiMask);
  }
}

/**
 * The a-stream from chunk `first` on: one AES-CTR cipher serves consecutive chunks (chunk c's bytes start at
 * counter c·N/2), so a run of chunks pays for one key schedule. Asking for a chunk out of order is an error.
 */
export interface AStream {
  next(first: number, count: number): Buffer;
}

export function aStream(ctx: HeContext, aesKey: Buffer, first: number): AStream {
  const n = ctx.slotCount;
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(first * (n / 2), 12); // N·8 bytes = N/2 AES blocks per chunk; below 2^32 for maxValues ≤ 2^31
  const aes = createCipheriv('aes-256-ctr', aesKey, iv);
  let at = first;
  return {
    next(chunk, count) {
      if (chunk !== at) throw new FedtwinError('HE_INTERNAL', `a-stream asked for chunk ${chunk}, it is at ${at}`);
      at += count;
      return aes.update(zeros(count * n * 8));
    },
  };
}

/** Probability (2^bits − q)/2^bits per coefficient (~1e-14 for the default q): draw on from the chunk's spare stream. */
function redraw(ctx: HeContext, aesKey: Buffer, chunk: number, dst: Uint32Array, i: number, hiMask: number): void {
  const [qLo, qHi] = ctx.qWords;
  const iv = Buffer.alloc(16);
  iv[0] = 0x80;
  iv.writeUInt32BE(chunk, 8);
  const aes = createCipheriv('aes-256-ctr', aesKey, iv);
  for (;;) {
    const w = u32(aes.update(zeros(64)));
    for (let k = 0; k < w.length; k += 2) {
      const hi = w[k + 1] & hiMask;
      if (hi < qHi || (hi === qHi && w[k] < qLo)) {
        dst[2 * i] = w[k];
        dst[2 * i + 1] = hi;
        return;
      }
    }
  }
}

/** An aligned copy of a Buffer's bytes as 32-bit words (a Buffer may sit at any offset of a shared pool). */
function u32(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/**
 * Member `member`'s ternary secret for one encryption, s_i = derive(consortium key, member id, nonce) (uniform
 * in {−1, 0, 1}, like SEAL's keys): HKDF-SHA256(secret key bytes, info = params ‖ nonce ‖ member id) keys an
 * AES-CTR stream, bytes ≥ 255 rejected. The nonce is fresh per encryption (wire v4), so two encryptions by one
 * member under one round tag never share −a·s_i, even after the member lost every record of the first.
 * Only holders of the consortium key can compute it; to the aggregator the s_i are independent secrets.
 */
export function memberSecret(ctx: HeContext, key: HeSecretKey, member: string, nonce: Uint8Array): Int8Array {
  checkMember(member);
  checkNonce(nonce);
  const n = ctx.slotCount;
  const ikm = key.sealKey.subarray(SEAL_PT_DATA_OFFSET);
  // params (32 bytes) and nonce (16) have fixed lengths, so the member id needs no length prefix
  const info = Buffer.concat([Buffer.from(ctx.paramsId), nonce, Buffer.from(member, 'utf8')]);
  const okm = Buffer.from(hkdfSync('sha256', ikm, 'fedtwin/he/member-secret/v2', info, 32));
  const aes = createCipheriv('aes-256-ctr', okm, Buffer.alloc(16));
  const out = new Int8Array(n);
  let bytes = aes.update(zeros(n + 64));
  let p = 0;
  for (let i = 0; i < n; ) {
    if (p >= bytes.length) {
      bytes = aes.update(zeros(256));
      p = 0;
    }
    const b = bytes[p++];
    if (b < 255) out[i++] = (b % 3) - 1;
  }
  bytes.fill(0);
  okm.fill(0);
  return out;
}

/** Cached NTT-form plaintexts of Σ s_i for a member set (per context; SEAL objects, freed with the context). */
const plainCache = new WeakMap<HeContext, Map<string, Plaintext>>();
const PLAIN_CACHE_MAX = 8;

/** Canonical id of a set of (member, nonce) addends (sorted, so order does not matter). */
export function membersDigest(members: readonly SecretRef[]): string {
  const h = createHash('sha256').update('fedtwin/he/members/v2\0');
  for (const m of [...members].map((r) => `${Buffer.from(r.nonce).toString('hex')}|${r.member}`).sort()) h.update(m).update('\0');
  return h.digest('hex');
}

/**
 * Σ_{i∈members} s_i(nonce_i) as an NTT-form SEAL plaintext: summed as small integers in the coefficient domain,
 * then transformed once by SEAL (loaded as c0 of a coefficient-form ciphertext, transformed to NTT).
 */
export function secretSumPlain(ctx: HeContext, key: HeSecretKey, members: readonly SecretRef[]): Plaintext {
  if (members.length < 1 || members.length > ctx.params.maxParticipants) badArg(`a member set must have 1..${ctx.params.maxParticipants} members, got ${members.length}`, 'pass the round\'s participants');
  if (new Set(members.map((m) => m.member)).size !== members.length) badArg('member ids repeat', 'each participant counts once');
  keyState(ctx, key); // checks the key belongs to ctx
  const id = `${key.keyId}|${membersDigest(members)}`;
  let cache = plainCache.get(ctx);
  if (!cache) plainCache.set(ctx, (cache = new Map()));
  const hit = cache.get(id);
  if (hit) return hit;
  const n = ctx.slotCount;
  const sum = new Int32Array(n);
  for (const m of members) {
    const s = memberSecret(ctx, key, m.member, m.nonce);
    for (let i = 0; i < n; i++) sum[i] += s[i];
  }
  // c0 = sum mod q as (lo, hi) pairs
  const [qLo, qHi] = ctx.qWords;
  const tpl = new Uint8Array(ctx.fullTemplate);
  const data = new Uint32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const v = sum[i];
    if (v >= 0) {
      data[2 * i] = v;
    } else {
      // q + v with |v| < 2^17: borrow from the high word when the low word is smaller
      const lo = qLo + v;
      data[2 * i] = lo < 0 ? lo + TWO32 : lo;
      data[2 * i + 1] = lo < 0 ? qHi - 1 : qHi;
    }
  }
  sum.fill(0);
  data.copyWithin(2 * n, 0, 2 * n); // c1 = c0: SEAL refuses to transform a ciphertext with c1 = 0 (transparent)
  tpl.set(new Uint8Array(data.buffer), SEAL_CT_DATA_OFFSET);
  data.fill(0);
  const ct = new ctx.seal.Ciphertext();
  let ptBytes: Uint8Array;
  try {
    sealCall('HE_SEAL_LAYOUT', 'SEAL rejected a key-derived polynomial', () => ct.loadFromArray(ctx.sealContext, tpl));
    ctx.evaluator.cipherTransformToNttInplace(ct);
    const ntt = ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;
    // The secret key's own serialization is an NTT-form plaintext of N coefficients: use it as the layout.
    ptBytes = new Uint8Array(key.sealKey);
    ptBytes.set(ntt.subarray(SEAL_CT_DATA_OFFSET, SEAL_CT_DATA_OFFSET + n * 8), SEAL_PT_DATA_OFFSET);
    ntt.fill(0);
  } finally {
    ct.delete();
    tpl.fill(0);
  }
  const pt = new ctx.seal.Plaintext();
  sealCall('HE_SEAL_LAYOUT', 'SEAL rejected a key-derived plaintext', () => pt.loadFromArray(ctx.sealContext, ptBytes));
  ptBytes.fill(0);
  if (cache.size >= PLAIN_CACHE_MAX) {
    const [oldest, old] = cache.entries().next().value as [string, Plaintext];
    old.delete();
    cache.delete(oldest);
  }
  cache.set(id, pt);
  return pt;
}

/** Frees the cached plaintexts of ctx (called by HeContext.dispose through disposeMasks). */
export function disposeMasks(ctx: HeContext): void {
  for (const pt of plainCache.get(ctx)?.values() ?? []) pt.delete();
  plainCache.delete(ctx);
}

/**
 * a_c·S_k for chunks [first, first + count) under tag and each plaintext S_k, in the coefficient domain, as
 * float64 values in [0, q) (rounded to float: every use of a mask tolerates the bounded error, see params.ts).
 * Two chunks per SEAL call: their a's fill c0 and c1 of one NTT-form ciphertext, which is multiplied by S_k
 * and transformed back; each a is expanded once for all plaintexts.
 */
export function maskProducts(ctx: HeContext, tag: Uint8Array, first: number, count: number, plains: readonly Plaintext[], out: (k: number, chunk: number, values: Float64Array) => void,
  prepared?: Map<number, Uint32Array>): void {
  const n = ctx.slotCount;
  const aesKey = aStreamKey(ctx, tag);
  const tpl = new Uint8Array(ctx.fullTemplate);
  tpl[SEAL_CT_NTT_FLAG_OFFSET] = 1;
  const words = new Uint32Array(4 * n);
  const w = new Uint32Array(4 * n);
  const ct = new ctx.seal.Ciphertext();
  let stream: AStream | undefined;
  let streamAt = -1;
  try {
    for (let c = 0; c < count; c += 2) {
      const two = c + 1 < count;
      const pa = prepared?.get(first + c);
      const pb = two ? prepared?.get(first + c + 1) : undefined;
      if (pa && (!two || pb)) {
        // expanded ahead (the a's are public and do not depend on who takes part): released as used
        words.set(pa, 0);
        if (pb) words.set(pb, 2 * n);
        prepared!.delete(first + c);
        if (two) prepared!.delete(first + c + 1);
      } else {
        if (streamAt !== first + c) stream = aStream(ctx, aesKey, first + c);
        expandA(ctx, aesKey, first + c, two ? 2 : 1, words, stream);
        streamAt = first + c + (two ? 2 : 1);
      }
      // an odd chunk out: c1 must not be zero (SEAL refuses transparent results); its product is discarded
      if (!two) words.copyWithin(2 * n, 0, 2 * n);
      tpl.set(new Uint8Array(words.buffer), SEAL_CT_DATA_OFFSET);
      for (let k = 0; k < plains.length; k++) {
        sealCall('HE_SEAL_LAYOUT', 'SEAL rejected a mask polynomial', () => ct.loadFromArray(ctx.sealContext, tpl));
        ctx.evaluator.multiplyPlainInplace(ct, plains[k]);
        ctx.evaluator.cipherTransformFromNttInplace(ct);
        const bytes = ct.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array;
        new Uint8Array(w.buffer).set(bytes.subarray(SEAL_CT_DATA_OFFSET, SEAL_CT_DATA_OFFSET + 2 * n * 8));
        bytes.fill(0);
        for (let j = 0; j < (two ? 2 : 1); j++) {
          const v = takeMaskArray(ctx);
          for (let i = 0; i < n; i++) v[i] = w[2 * (j * n + i) + 1] * TWO32 + w[2 * (j * n + i)];
          out(k, first + c + j, v);
        }
      }
    }
  } finally {
    ct.delete();
    w.fill(0);
    words.fill(0);
    tpl.fill(0);
  }
}

/**
 * The common polynomials a of chunks [first, first + count) expanded ahead into `into` (chunk → 2N words),
 * skipping chunks already there: the part of a sum's decryption masks that does not depend on its participants.
 */
export function prepareA(ctx: HeContext, tag: Uint8Array, first: number, count: number, into: Map<number, Uint32Array>): void {
  const n = ctx.slotCount;
  const aesKey = aStreamKey(ctx, tag);
  const two = new Uint32Array(4 * n);
  let stream: AStream | undefined;
  let streamAt = -1;
  for (let c = first; c < first + count; c += 2) {
    const k = Math.min(2, first + count - c);
    if (into.has(c) && (k === 1 || into.has(c + 1))) continue;
    if (streamAt !== c) stream = aStream(ctx, aesKey, c);
    expandA(ctx, aesKey, c, k, two, stream);
    streamAt = c + k;
    for (let j = 0; j < k; j++) if (!into.has(c + j)) into.set(c + j, two.slice(j * 2 * n, (j + 1) * 2 * n));
  }
}

// Mask arrays (N float64 each) are recycled: a round makes hundreds of them per thread, and letting the GC
// reclaim megabytes of typed arrays every round costs more than the masks themselves.
const freeMasks = new WeakMap<HeContext, Float64Array[]>();
/** Arrays kept for reuse per context (about 2 rounds of a 1M-value model per thread). */
const MAX_FREE_MASKS = 1024;

export function takeMaskArray(ctx: HeContext): Float64Array {
  return freeMasks.get(ctx)?.pop() ?? new Float64Array(ctx.slotCount);
}

/** Wipes a used mask and keeps it for reuse. */
export function recycleMaskArray(ctx: HeContext, v: Float64Array): void {
  v.fill(0);
  let free = freeMasks.get(ctx);
  if (!free) freeMasks.set(ctx, (free = []));
  if (free.length < MAX_FREE_MASKS && v.length === ctx.slotCount) free.push(v);
}

/**
 * SEAL's error distribution for fresh encryptions: centred binomial with 21 trials a side (σ ≈ 3.24,
 * |e| ≤ 21), from the OS CSPRNG: e = popcount(21 random bits) − popcount(21 others), one 32-bit word for
 * each side (the spare bits are discarded; fewer bit shuffles than packing 42 bits into 6 bytes). Adds e to
 * each of `count` values in place.
 */
export function addFreshNoise(values: Float64Array, count: number): void {
  let words = noiseWords.get(count);
  if (!words) noiseWords.set(count, (words = new Int32Array(2 * count)));
  randomFillSync(words);
  for (let i = 0; i < count; i++) values[i] += popcount(words[2 * i] & 0x1fffff) - popcount(words[2 * i + 1] & 0x1fffff);
  words.fill(0);
}

const noiseWords = new Map<number, Int32Array>();

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
