import { createHash } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';

// Small byte helpers. Strict decoders: a hex or base64 string that does not round-trip is rejected,
// so two different texts can never decode to the same bytes.

const HEX_RE = /^(?:[0-9a-f]{2})*$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string, what = 'hex string'): Uint8Array {
  if (typeof s !== 'string' || !HEX_RE.test(s)) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `${what} is not lowercase hex with an even number of digits`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

export function fromBase64(s: string, what = 'base64 string'): Uint8Array {
  if (typeof s !== 'string' || !B64_RE.test(s)) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `${what} is not canonical base64 (RFC 4648 §4, padded)`);
  }
  const out = new Uint8Array(Buffer.from(s, 'base64'));
  if (toBase64(out) !== s) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `${what} is not canonical base64`);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** 8-byte big-endian unsigned integer; keys sort bytewise, so indices must be fixed width. */
export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `index ${n} is not a non-negative safe integer`);
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, Math.floor(n / 0x1_0000_0000));
  dv.setUint32(4, n >>> 0);
  return out;
}

export function readU64be(b: Uint8Array, offset = 0): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hi = dv.getUint32(offset);
  if (hi > 0x1f_ffff) throw new FedtwinError('LEDGER_CORRUPT', 'stored index exceeds 2^53');
  return hi * 0x1_0000_0000 + dv.getUint32(offset + 4);
}

export const utf8 = new TextEncoder();
export const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** SHA-256 of some bytes as lowercase hex: how entries name a ciphertext or an aggregate (authors and auditors must agree). */
export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
