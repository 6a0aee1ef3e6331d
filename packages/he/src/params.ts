// Parameter choice and the headroom / noise arithmetic behind it (docs/he.md explains each number).
import { FedtwinError } from '@fedtwin/errors';

/** What a caller may choose; everything else is derived. */
export interface HeParamsInit {
  /** Ring dimension N (slots per ciphertext). 4096 is the default and the measured sweet spot. */
  polyModulusDegree?: 4096 | 8192;
  /** Bit size of the single ciphertext prime q (≤ 60, SEAL's limit for one prime). */
  coeffModulusBits?: number;
  /** Signed fixed-point width of one quantized value, sign included (default 16). */
  quantBits?: number;
  /** Values are clipped to [-clip, clip] before quantization (default 1). */
  clip?: number;
  /** Largest consortium whose sum must not overflow the plaintext modulus (default 1024). */
  maxParticipants?: number;
  /** Low bits of c0 dropped on the wire; default: the most the noise bound allows. */
  c0DropBits?: number;
  /** Cap on values per update, checked before allocating (default 2^26). */
  maxValues?: number;
}

/** Fully resolved parameters; part of the parameters id, so both sides must agree on all of them. */
export interface HeParams {
  scheme: 'bfv';
  polyModulusDegree: 4096 | 8192;
  coeffModulusBits: number;
  plainModulusBits: number;
  quantBits: number;
  clip: number;
  maxParticipants: number;
  c0DropBits: number;
  maxValues: number;
}

export const DEFAULTS = {
  polyModulusDegree: 4096,
  coeffModulusBits: 60,
  quantBits: 16,
  clip: 1,
  maxParticipants: 1024,
  maxValues: 1 << 26,
} as const;

/**
 * Worst-case |noise| of one fresh SEAL BFV encryption of zero: SEAL 4 samples e from a centred binomial
 * (|e| ≤ 21) or a clipped Gaussian (|e| ≤ 19.2); 64 leaves room for either.
 */
export const SEAL_FRESH_NOISE_BOUND = 64;
/** Worst-case error of adding round(q·m/t) to c0 in float64 (two roundings of numbers < 2^61: ≤ 2^9 each). */
export const ENCODE_ERROR_BOUND = 2 ** 11;
/** Bits of slack kept below the decryption bound q/(2t) (covers SEAL's RNS decryption rounding). */
export const SAFETY_BITS = 2;

function bad(field: string, message: string, hint: string): never {
  throw new FedtwinError('HE_BAD_PARAMS', `${field}: ${message}`, { hint, details: { field } });
}

function intIn(field: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) bad(field, `must be an integer in [${lo}, ${hi}], got ${v}`, `set ${field} within [${lo}, ${hi}]`);
  return v;
}

/** Bit length of a positive safe integer. */
export function bitLength(x: number): number {
  return x <= 0 ? 0 : Math.trunc(x).toString(2).length;
}

/** Largest |quantized value|: 2^(quantBits-1) - 1, so the encoding is symmetric. */
export function quantMax(quantBits: number): number {
  return 2 ** (quantBits - 1) - 1;
}

/**
 * Plaintext modulus bits: the sum of maxParticipants values in [-qmax, qmax] must lie in the centred range
 * (-(t-1)/2, (t-1)/2]. SEAL's batching primes of `bits` bits are ≥ 2^(bits-1), so bits = bitlength(2·M·qmax) + 1.
 */
export function plainModulusBitsFor(quantBits: number, maxParticipants: number): number {
  return bitLength(2 * maxParticipants * quantMax(quantBits)) + 1;
}

/** Validates the caller's choices and fills defaults (q- and t-dependent checks happen in createHeContext). */
export function resolveParamsInit(init: HeParamsInit = {}): Omit<HeParams, 'c0DropBits'> & { c0DropBits: number | undefined } {
  if (init === null || typeof init !== 'object') bad('params', 'must be an object', 'pass an object such as { maxParticipants: 64 }');
  const n = init.polyModulusDegree ?? DEFAULTS.polyModulusDegree;
  if (n !== 4096 && n !== 8192) bad('polyModulusDegree', `must be 4096 or 8192, got ${String(n)}`, 'use 4096 (default)');
  const coeffModulusBits = intIn('coeffModulusBits', init.coeffModulusBits ?? DEFAULTS.coeffModulusBits, 40, 60);
  const quantBits = intIn('quantBits', init.quantBits ?? DEFAULTS.quantBits, 2, 24);
  const maxParticipants = intIn('maxParticipants', init.maxParticipants ?? DEFAULTS.maxParticipants, 1, 1 << 16);
  const clip = init.clip ?? DEFAULTS.clip;
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0) bad('clip', `must be a finite number > 0, got ${String(clip)}`, 'set clip to the DP clipping bound of one coordinate');
  const maxValues = intIn('maxValues', init.maxValues ?? DEFAULTS.maxValues, 1, 2 ** 31 - 1);
  const plainModulusBits = plainModulusBitsFor(quantBits, maxParticipants);
  // The decoded centred sum must fit an int32 (we read SEAL's int64 output through an Int32Array view).
  if (plainModulusBits > 31) bad('maxParticipants', `quantBits ${quantBits} with ${maxParticipants} participants needs a ${plainModulusBits}-bit plaintext modulus (max 31)`, 'lower quantBits or maxParticipants');
  const c0DropBits = init.c0DropBits === undefined ? undefined : intIn('c0DropBits', init.c0DropBits, 0, coeffModulusBits - 1);
  return { scheme: 'bfv', polyModulusDegree: n, coeffModulusBits, plainModulusBits, quantBits, clip, maxParticipants, c0DropBits, maxValues };
}

/**
 * Float64 errors of the aggregator's sum (exact integer limbs, one rounded reduction mod q at the end) and of
 * the member's decryption (mask added and reduced in float64; a compact sum wider than 53 bits is read
 * rounded, ≤ 2^6): values below 2^61 carry at most 2^8 of rounding per operation. Charged per addend for the sum (its magnitude grows with the addends) and once for
 * decryption, with room to spare.
 */
export const SUM_FLOAT_ERROR_BOUND = 2 ** 10;
export const DECRYPT_FLOAT_ERROR_BOUND = 2 ** 10;

/** q/(2t)/2^SAFETY_BITS less the decryption's own float error: what all noise of a sum must stay under. */
function noiseBudget(q: bigint, t: bigint): number {
  return Number(q / (2n * t)) / 2 ** SAFETY_BITS - DECRYPT_FLOAT_ERROR_BOUND;
}

/** Worst-case noise one fresh update brings to a sum, before its c0 is rounded. */
const PER_ADDEND_FIXED = SEAL_FRESH_NOISE_BOUND + ENCODE_ERROR_BOUND + SUM_FLOAT_ERROR_BOUND;

/**
 * Decryption of a sum of M fresh ciphertexts is exact while its noise stays below q/(2t). Each fresh
 * ciphertext contributes at most E_fresh + E_encode + E_sum + 2^(b-1) (dropping b low bits of c0 and
 * re-inserting the midpoint). Returns the largest b that keeps M times that under the budget.
 */
export function maxC0DropBits(q: bigint, t: bigint, maxParticipants: number): number {
  const budget = noiseBudget(q, t) / maxParticipants - PER_ADDEND_FIXED;
  if (budget < 0) return -1;
  let b = 0;
  while (b < 61 && 2 ** b <= budget) b++; // dropping b+1 bits costs 2^b per ciphertext
  return b;
}

/**
 * Low bits dropped from a compact (final) sum of `addends` updates. The sum's noise is at most
 * addends·(E_fresh + E_encode + E_sum + 2^(c0DropBits−1)); rounding c0 to a multiple of 2^b (midpoint
 * re-inserted) adds at most 2^(b−1), so b is the largest with that under what is left of the budget.
 * There is no c1 to round: it is the round's common a, which every member derives from the round tag.
 * Worst-case bounds, like maxC0DropBits.
 */
export function compactSumDropBits(q: bigint, t: bigint, c0DropBits: number, addends: number): number {
  const room = noiseBudget(q, t) - addends * (PER_ADDEND_FIXED + 2 ** (c0DropBits - 1));
  const qBits = bitLength(Number(q));
  if (!(room >= 1)) return 0;
  let b = 0;
  while (b < qBits - 1 && 2 ** b <= room) b++; // dropping b+1 bits costs 2^b
  return b;
}
