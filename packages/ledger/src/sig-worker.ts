// Worker thread for bulk Ed25519 verification (verifyLedgerDir). Dependency-free on purpose: it only
// needs node:crypto. Receives packed messages, returns the position of the first bad signature or -1.
import { parentPort } from 'node:worker_threads';
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

export interface SigJob {
  id: number;
  /** concatenated signed messages */
  data: Uint8Array;
  /** n+1 offsets into data */
  offsets: Uint32Array;
  /** n * 64 signature bytes */
  sigs: Uint8Array;
  /** k * 32 raw public keys */
  keys: Uint8Array;
  /** n indices into keys */
  keyIdx: Uint16Array;
}

const cache = new Map<string, KeyObject>();
function keyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw).toString('base64url');
  let k = cache.get(id);
  if (!k) {
    k = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: id } });
    if (cache.size > 10_000) cache.clear();
    cache.set(id, k);
  }
  return k;
}

parentPort?.on('message', (job: SigJob) => {
  const keys: KeyObject[] = [];
  for (let j = 0; j * 32 < job.keys.length; j++) keys.push(keyObject(job.keys.subarray(j * 32, j * 32 + 32)));
  let bad = -1;
  const n = job.keyIdx.length;
  for (let i = 0; i < n; i++) {
    const msg = job.data.subarray(job.offsets[i], job.offsets[i + 1]);
    if (!verify(null, msg, keys[job.keyIdx[i]], job.sigs.subarray(i * 64, i * 64 + 64))) {
      bad = i;
      break;
    }
  }
  parentPort?.postMessage({ id: job.id, bad });
});
