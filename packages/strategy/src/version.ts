import { createHash } from 'node:crypto';

/** Version hash of a global model: SHA-256 over its float32 bytes (little-endian), hex. Members
 *  compare it to prove they all hold the same weights. */
export function versionHash(weights: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength)).digest('hex');
}
