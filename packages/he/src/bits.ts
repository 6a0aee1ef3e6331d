// Bit packing of unsigned integers below 2^64, held as (lo, hi) uint32 pairs, little-endian bit order.
// A value of `bits` bits is written as a low field of min(bits, 32) bits then a high field of the rest;
// the stream is produced 32 bits at a time with integer operations (this is on the aggregator's hot path).

/** Bytes needed for `count` values of `bits` bits each. */
export function packedSize(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Packs `count` values (src[2i] = low 32 bits, src[2i+1] = high bits) into out[offset..]; returns the end offset. */
export function packBits(src: Uint32Array, count: number, bits: number, out: Uint8Array, offset: number): number {
  const loBits = bits < 32 ? bits : 32;
  const hiBits = bits - loBits;
  const loMask = loBits === 32 ? -1 : (1 << loBits) - 1;
  const hiMask = hiBits === 32 ? -1 : (1 << hiBits) - 1;
  let acc = 0; // pending bits in the low `nb` bits
  let nb = 0;
  let p = offset;
  for (let i = 0; i < count; i++) {
    for (let part = 0; part < 2; part++) {
      const k = part === 0 ? loBits : hiBits;
      if (k === 0) break;
      const f = part === 0 ? src[2 * i] & loMask : src[2 * i + 1] & hiMask;
      acc |= f << nb;
      if (nb + k >= 32) {
        out[p] = acc & 0xff;
        out[p + 1] = (acc >>> 8) & 0xff;
        out[p + 2] = (acc >>> 16) & 0xff;
        out[p + 3] = acc >>> 24;
        p += 4;
        acc = nb === 0 ? 0 : f >>> (32 - nb);
        nb = nb + k - 32;
      } else {
        nb += k;
      }
    }
  }
  while (nb > 0) {
    out[p++] = acc & 0xff;
    acc >>>= 8;
    nb -= 8;
  }
  return p;
}

/** Inverse of packBits: reads `count` values into dst as (lo, hi) pairs; returns the end offset. */
export function unpackBits(src: Uint8Array, offset: number, count: number, bits: number, dst: Uint32Array): number {
  const end = offset + packedSize(count, bits);
  if (end > src.length) throw new RangeError('packed data runs past the buffer');
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
