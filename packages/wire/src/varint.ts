/**
 * Unsigned LEB128 varints (the multiformats/protobuf length prefix), limited to safe integers
 * so a length can never silently lose precision.
 */

/** Longest varint we accept: 8 bytes carry 56 bits, enough for any Number.MAX_SAFE_INTEGER. */
export const MAX_VARINT_BYTES = 8;

export function varintLength(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

export function encodeVarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint value must be a non-negative safe integer, got ${value}`);
  const out = new Uint8Array(varintLength(value));
  let v = value;
  let i = 0;
  // Division instead of >>> because lengths may exceed 2^31.
  while (v >= 0x80) {
    out[i++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[i] = v;
  return out;
}

/**
 * Decode a varint from the front of `bytes`. Returns undefined when more bytes are needed,
 * throws RangeError when the prefix is longer than MAX_VARINT_BYTES or not minimal.
 */
export function decodeVarint(bytes: Uint8Array): { value: number; length: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < bytes.length; i++) {
    if (i >= MAX_VARINT_BYTES) throw new RangeError('varint too long');
    const b = bytes[i];
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      // A trailing zero byte means a non-minimal encoding: reject so each length has one form.
      if (b === 0 && i > 0) throw new RangeError('varint not minimally encoded');
      if (!Number.isSafeInteger(value)) throw new RangeError('varint exceeds safe integer range');
      return { value, length: i + 1 };
    }
    scale *= 128;
  }
  if (bytes.length >= MAX_VARINT_BYTES) throw new RangeError('varint too long');
  return undefined;
}
