// Shamir t-of-n secret sharing over GF(p), p = 2^521 − 1 (a Mersenne prime): any 32-byte secret is one
// field element, x-coordinates are small positive integers, and no share count limit below p applies.
import { randomBytes } from 'node:crypto';
import { secaggError } from './errors.ts';

export const FIELD_PRIME = (1n << 521n) - 1n;
/** Bytes of one share value (big-endian, 521 bits). */
export const SHARE_BYTES = 66;

const mod = (a: bigint): bigint => {
  const r = a % FIELD_PRIME;
  return r < 0n ? r + FIELD_PRIME : r;
};

/** a^e mod p by square-and-multiply (e ≥ 0). */
function powMod(a: bigint, e: bigint): bigint {
  let r = 1n, b = mod(a);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % FIELD_PRIME;
    b = (b * b) % FIELD_PRIME;
    e >>= 1n;
  }
  return r;
}

/** Inverse by Fermat (p prime); a ≠ 0. */
const inv = (a: bigint): bigint => powMod(a, FIELD_PRIME - 2n);

/** A uniform field element: 521 random bits, redrawn when ≥ p (probability 2^-521). */
export function randomFieldElement(): bigint {
  for (;;) {
    const b = randomBytes(SHARE_BYTES);
    b[0] &= 0x01;
    const v = BigInt('0x' + b.toString('hex'));
    if (v < FIELD_PRIME) return v;
  }
}

export function bytesToField(bytes: Uint8Array): bigint {
  if (bytes.length > 65) throw secaggError('SECAGG_BAD_ARGUMENT', `a secret has at most 65 bytes, got ${bytes.length}`, 'share 32-byte seeds and keys');
  return bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'));
}

/** The field element as `length` big-endian bytes (it must fit: a reconstructed secret that does not is garbage). */
export function fieldToBytes(v: bigint, length: number): Uint8Array {
  const hex = v.toString(16).padStart(length * 2, '0');
  if (hex.length > length * 2) throw secaggError('SECAGG_RECONSTRUCTION_FAILED', `reconstructed value does not fit in ${length} bytes`, 'the shares are inconsistent (a wrong or tampered share)');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function shareToBytes(y: bigint): Uint8Array {
  return fieldToBytes(y, SHARE_BYTES);
}

export function shareFromBytes(b: Uint8Array): bigint {
  if (b.length !== SHARE_BYTES) throw secaggError('SECAGG_BAD_MESSAGE', `a share has ${SHARE_BYTES} bytes, got ${b.length}`, 'the share message is malformed');
  const v = BigInt('0x' + Buffer.from(b).toString('hex'));
  if (v >= FIELD_PRIME) throw secaggError('SECAGG_BAD_MESSAGE', 'share value ≥ p', 'the share message is malformed');
  return v;
}

function checkXs(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isSafeInteger(x) || x < 1 || seen.has(x)) throw secaggError('SECAGG_BAD_ARGUMENT', `share x-coordinates must be distinct positive integers, got ${x}`, 'use member index + 1');
    seen.add(x);
  }
}

/**
 * Shares `secret` so that any `threshold` of the points (x, f(x)), x ∈ xs, give it back and fewer give
 * nothing: f has degree threshold − 1, f(0) = secret, the other coefficients uniform.
 */
export function split(secret: bigint, threshold: number, xs: readonly number[]): bigint[] {
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw secaggError('SECAGG_BAD_ARGUMENT', `threshold ${threshold} must be in [1, ${xs.length}]`, 'a threshold above the share count could never be met');
  }
  if (secret < 0n || secret >= FIELD_PRIME) throw secaggError('SECAGG_BAD_ARGUMENT', 'secret outside the field', 'share at most 65 bytes');
  checkXs(xs);
  const coeffs = [secret];
  for (let i = 1; i < threshold; i++) coeffs.push(randomFieldElement());
  // Horner's rule per point
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) y = (y * bx + coeffs[i]) % FIELD_PRIME;
    return y;
  });
}

const lagrangeCache = new Map<string, bigint[]>();

/**
 * Lagrange coefficients at 0 for the points xs: λ_j = Π_{m≠j} x_m / (x_m − x_j). One field inversion for
 * all of them (Montgomery's trick: a 521-bit inversion costs ≈ 1 ms in BigInt, a product µs), cached by
 * point set, since in the full graph every member's shares come from the same holders.
 */
export function lagrangeAtZero(xs: readonly number[]): bigint[] {
  const key = xs.join(',');
  const hit = lagrangeCache.get(key);
  if (hit) return hit;
  checkXs(xs);
  const nums: bigint[] = [], dens: bigint[] = [];
  for (let j = 0; j < xs.length; j++) {
    let num = 1n, den = 1n;
    for (let m = 0; m < xs.length; m++) {
      if (m === j) continue;
      num = (num * BigInt(xs[m])) % FIELD_PRIME;
      den = mod(den * BigInt(xs[m] - xs[j]));
    }
    nums.push(num);
    dens.push(den);
  }
  // prefix products, one inverse, then walk back
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const d of dens) { prefix.push(acc); acc = (acc * d) % FIELD_PRIME; }
  let invAcc = inv(acc);
  const out = new Array<bigint>(xs.length);
  for (let j = xs.length - 1; j >= 0; j--) {
    out[j] = (nums[j] * ((invAcc * prefix[j]) % FIELD_PRIME)) % FIELD_PRIME;
    invAcc = (invAcc * dens[j]) % FIELD_PRIME;
  }
  if (lagrangeCache.size > 4096) lagrangeCache.clear();
  lagrangeCache.set(key, out);
  return out;
}

/**
 * f(0) from exactly the given points. With fewer than `threshold` points the result is a uniformly random
 * field element, unrelated to the secret: callers must supply at least threshold points to get it.
 */
export function combine(points: readonly { x: number; y: bigint }[]): bigint {
  if (points.length === 0) throw secaggError('SECAGG_NOT_ENOUGH_SHARES', 'no shares to combine', 'collect threshold shares first');
  const lambdas = lagrangeAtZero(points.map((p) => p.x));
  let s = 0n;
  for (let j = 0; j < points.length; j++) s = (s + lambdas[j] * points[j].y) % FIELD_PRIME;
  return s;
}
