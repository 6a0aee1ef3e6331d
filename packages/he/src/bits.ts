// Bit packing of unsigned integers below 2^64, held as (lo, hi) uint32 pairs, little-endian bit order.
// A value of `bits` bits is written as a low field of min(bits, 32) bits then a high field of the rest;
// the stream is produced 32 bits at a time with integer operations (this is on the aggregator's hot path).

/** Bytes needed for `count` values of `bits` bits each. */
export function packedSize(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Packs `count` values (src[2i] = low 32 bits, src[2i+1] = high bits) into out[offset..]; returns the end offset. */
export function packBits(src: Uint32Array, count: number, bits: number, out: Uint8Array, offset: number): number {
  if (bits < 1 || bits > 64) throw new RangeError(`cannot write ${bits}-bit values`);
  const end = offset + packedSize(count, bits);
  if (end > out.length) throw new RangeError('packed data runs past the buffer');
  const words = wordView(out, offset, end);
  if (words) {
    packWords(src, count, bits, words);
    return end;
  }
  // unaligned or not whole words (tests, odd buffers): pack into aligned words, then copy the bytes
  const tmp = new Uint32Array(Math.ceil((end - offset) / 4));
  packWords(src, count, bits, tmp);
  out.set(new Uint8Array(tmp.buffer, 0, end - offset), offset);
  tmp.fill(0); // the caller may be packing a secret
  return end;
}

/** Inverse of packBits: reads `count` values into dst as (lo, hi) pairs; returns the end offset. */
export function unpackBits(src: Uint8Array, offset: number, count: number, bits: number, dst: Uint32Array): number {
  const end = offset + packedSize(count, bits);
  if (end > src.length) throw new RangeError('packed data runs past the buffer');
  if ((bits & 7) === 0) return unpackBytes(src, offset, count, bits >> 3, dst);
  const loBits = bits < 32 ? bits : 32;
  const hiBits = bits - loBits;
  let acc = 0; // unread bits in the low `nb` bits
  let nb = 0;
  let p = offset;
  for (let i = 0; i < count; i++) {
    for (let part = 0; part < 2; part++) {
      const k = part === 0 ? loBits : hiBits;
      if (k === 0) {
        dst[2 * i + 1] = 0;
        break;
      }
      let v: number;
      if (nb >= k) {
        v = k === 32 ? acc : acc & ((1 << k) - 1);
        acc = k === 32 ? 0 : acc >>> k;
        nb -= k;
      } else {
        // Bytes past `end` read as 0 (undefined | 0); they never reach a value.
        const w = p + 3 < end ? src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24) : tail(src, p, end);
        p += 4;
        const merged = acc | (w << nb);
        v = k === 32 ? merged : merged & ((1 << k) - 1);
        const used = k - nb; // bits of w consumed, 1..32
        acc = used === 32 ? 0 : w >>> used;
        nb = 32 - used;
      }
      dst[2 * i + part] = v;
    }
  }
  return end;
}

function unpackBytes(src: Uint8Array, offset: number, count: number, bytes: number, dst: Uint32Array): number {
  let p = offset;
  const hiBytes = bytes - 4;
  for (let i = 0; i < count; i++) {
    let lo = src[p];
    if (bytes > 1) lo |= src[p + 1] << 8;
    if (bytes > 2) lo |= src[p + 2] << 16;
    if (bytes > 3) lo |= src[p + 3] << 24;
    let hi = 0;
    for (let k = 0; k < hiBytes; k++) hi |= src[p + 4 + k] << (8 * k);
    dst[2 * i] = lo >>> 0;
    dst[2 * i + 1] = hi >>> 0;
    p += bytes;
  }
  return p;
}

function tail(src: Uint8Array, p: number, end: number): number {
  let w = 0;
  for (let j = 0; j < 4 && p + j < end; j++) w |= src[p + j] << (8 * j);
  return w;
}

/** Index of the first pair ≥ bound (bound given as lo/hi), or -1 if all values are below it. */
export function firstAtOrAbove(vals: Uint32Array, count: number, boundLo: number, boundHi: number): number {
  for (let i = 0; i < count; i++) {
    const hi = vals[2 * i + 1];
    if (hi > boundHi || (hi === boundHi && vals[2 * i] >= boundLo)) return i;
  }
  return -1;
}

/**
 * Reads `count` values of `bits` bits (1..64) at `offset` as numbers: into dst[dstOff + i], or added to it
 * with `accumulate` (the aggregator's running sum). Same layout as packBits. Exact up to 53 bits; wider
 * values are rounded to the nearest float64 (a compact sum can keep up to ceil(log2 q) bits). Returns the end offset.
 */
export function unpackNumbers(src: Uint8Array, offset: number, count: number, bits: number, dst: Float64Array, dstOff: number, accumulate: boolean): number {
  const end = offset + packedSize(count, bits);
  if (end > src.length) throw new RangeError('packed data runs past the buffer');
  if (bits > 64 || bits < 1) throw new RangeError(`cannot read ${bits}-bit values`);
  const words = wordView(src, offset, end);
  if (words && bits <= 53) {
    // whole 32-bit words (chunk bodies are 4-byte aligned): one or two loads a value instead of five
    // reading is adding to zeros: one more pass over a chunk's worth of floats, one loop per width class
    if (!accumulate) dst.fill(0, dstOff, dstOff + count);
    if (bits <= 32) addWords32(words, count, bits, dst, dstOff);
    else if (bits === 40) addWords40(words, count, dst, dstOff);
    else addWords53(words, count, bits, dst, dstOff);
    return end;
  }
  if ((bits & 7) === 0 && bits >= 32) {
    // whole bytes: 4 low bytes as one word, the rest as a small high part
    const bytes = bits >> 3;
    let p = offset;
    for (let i = 0; i < count; i++) {
      let hi = 0;
      for (let k = bytes - 1; k >= 4; k--) hi = hi * 256 + src[p + k];
      const v = ((src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24)) >>> 0) + hi * 4294967296;
      if (accumulate) dst[dstOff + i] += v;
      else dst[dstOff + i] = v;
      p += bytes;
    }
    return end;
  }
  if (bits < 32) {
    // a value spans at most 5 bytes from its first: read a 32-bit window and the next byte
    const mask = 2 ** bits - 1;
    let bitPos = 0;
    for (let i = 0; i < count; i++) {
      const b = offset + (bitPos >>> 3);
      const sh = bitPos & 7;
      let v = (src[b] | (src[b + 1] << 8) | (src[b + 2] << 16) | (src[b + 3] << 24)) >>> sh;
      if (sh + bits > 32) v |= src[b + 4] << (32 - sh); // bytes past the buffer read as 0 and are masked off anyway
      v &= mask;
      if (accumulate) dst[dstOff + i] += v;
      else dst[dstOff + i] = v;
      bitPos += bits;
    }
    return end;
  }
  // other widths: through (lo, hi) pairs (one correctly rounded addition beyond 53 bits)
  const pairs = new Uint32Array(2 * count);
  unpackBits(src, offset, count, bits, pairs);
  for (let i = 0; i < count; i++) {
    const v = pairs[2 * i + 1] * 4294967296 + pairs[2 * i];
    if (accumulate) dst[dstOff + i] += v;
    else dst[dstOff + i] = v;
  }
  return end;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** src[offset, end) as 32-bit words, when it is 4-byte aligned and whole words long (little-endian hosts). */
function wordView(src: Uint8Array, offset: number, end: number): Uint32Array | undefined {
  const at = src.byteOffset + offset;
  if (!LITTLE_ENDIAN || (at & 3) !== 0 || ((end - offset) & 3) !== 0) return undefined;
  return new Uint32Array(src.buffer, at, (end - offset) >> 2);
}

// One function per width class keeps each loop monomorphic (a shared loop with flags ran several times slower).
// A value at bit p lies in word p>>>5 from bit p&31; the next word is read only when the value reaches into it.

function addWords32(w: Uint32Array, count: number, bits: number, dst: Float64Array, dstOff: number): void {
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  let p = 0;
  for (let i = 0; i < count; i++) {
    const k = p >>> 5;
    const sh = p & 31;
    let v = w[k] >>> sh;
    if (sh + bits > 32) v |= w[k + 1] << (32 - sh);
    dst[dstOff + i] += (v & mask) >>> 0;
    p += bits;
  }
}

/** 33..53 bits: a low word (32 bits from p) and a high part (bits − 32 from p + 32). */
function addWords53(w: Uint32Array, count: number, bits: number, dst: Float64Array, dstOff: number): void {
  const hiBits = bits - 32;
  const hiMask = (1 << hiBits) - 1;
  let p = 0;
  for (let i = 0; i < count; i++) {
    const k = p >>> 5;
    const sh = p & 31;
    const next = w[k + 1];
    const lo = sh === 0 ? w[k] : (w[k] >>> sh) | (next << (32 - sh));
    let hi = next >>> sh;
    if (sh + hiBits > 32) hi |= w[k + 2] << (32 - sh);
    dst[dstOff + i] += (hi & hiMask) * 4294967296 + (lo >>> 0);
    p += bits;
  }
}

/** packBits into whole 32-bit words: the same bit stream, one store per 32 bits. */
function packWords(src: Uint32Array, count: number, bits: number, w: Uint32Array): void {
  const loBits = bits < 32 ? bits : 32;
  const hiBits = bits - loBits;
  const loMask = loBits === 32 ? -1 : (1 << loBits) - 1;
  const hiMask = hiBits === 32 ? -1 : (1 << hiBits) - 1;
  let acc = 0; // pending bits in the low `nb` bits
  let nb = 0;
  let p = 0;
  // The low and the high field are written by two copies of the same steps: a loop over the two fields
  // ran 40% slower on the encryption's 40-bit values.
  for (let i = 0; i < count; i++) {
    const lo = src[2 * i] & loMask;
    acc |= lo << nb;
    if (nb + loBits >= 32) {
      w[p++] = acc;
      acc = nb === 0 ? 0 : lo >>> (32 - nb);
      nb = nb + loBits - 32;
    } else {
      nb += loBits;
    }
    if (hiBits > 0) {
      const hi = src[2 * i + 1] & hiMask;
      acc |= hi << nb;
      if (nb + hiBits >= 32) {
        w[p++] = acc;
        acc = nb === 0 ? 0 : hi >>> (32 - nb);
        nb = nb + hiBits - 32;
      } else {
        nb += hiBits;
      }
    }
  }
  if (nb > 0) w[p] = acc; // whole words: the last one is only partly filled when count·bits is not a multiple of 32
}

/**
 * 40 bits (a fresh c0 under the default parameters, the aggregator's every addition): four values fill five
 * words exactly, so each group is read with fixed shifts and no per-value branch. A whole-word body of
 * 40-bit values holds a multiple of four (5·count bytes ≡ 0 mod 4), so there is no remainder.
 */
function addWords40(w: Uint32Array, count: number, dst: Float64Array, dstOff: number): void {
  const groups = count >>> 2;
  for (let g = 0; g < groups; g++) {
    const k = 5 * g;
    const w0 = w[k];
    const w1 = w[k + 1];
    const w2 = w[k + 2];
    const w3 = w[k + 3];
    const w4 = w[k + 4];
    const o = dstOff + 4 * g;
    dst[o] += (w1 & 0xff) * 4294967296 + (w0 >>> 0);
    dst[o + 1] += ((w2 >>> 8) & 0xff) * 4294967296 + (((w1 >>> 8) | (w2 << 24)) >>> 0);
    dst[o + 2] += ((w3 >>> 16) & 0xff) * 4294967296 + (((w2 >>> 16) | (w3 << 16)) >>> 0);
    dst[o + 3] += (w4 >>> 24) * 4294967296 + (((w3 >>> 24) | (w4 << 8)) >>> 0);
  }
}
