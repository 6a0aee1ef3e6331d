// Worker thread of createHePool: owns its own SEAL WASM instance and running sums for its share of chunks.
import { parentPort } from 'node:worker_threads';
import type { Ciphertext } from 'node-seal';
import { FedtwinError } from '@fedtwin/errors';
import { createHeContext } from './context.ts';
import type { HeContext } from './context.ts';
import type { HeParams } from './params.ts';
import type { HeSecretKey } from './keys.ts';
import { Accumulator, assembleUpdate, decryptChunks, encryptChunkRange, participantEntry, prepareMasks, resolveParticipants, toIntegers } from './scheme.ts';
import { freshNonce } from './mask.ts';
import type { SecretRef } from './mask.ts';
import { generateKeys } from './keys.ts';
import { KIND_SUM_COMPACT, readUpdateHeader } from './wire.ts';
import type { ChunkKind } from './wire.ts';
import { loadCkksBaseline } from './ckks.ts';
import type { CkksKeys } from './ckks.ts';
import type { QuantSeed } from './quantize.ts';

export type WorkerRequest =
  | { op: 'init'; params: HeParams; paramsId: string }
  | { op: 'encrypt'; values: Float32Array | Float64Array | Int32Array; offset: number; firstChunk: number; totalValues: number; seed: QuantSeed; key: HeSecretKey; member: string; tag: Uint8Array; nonce: Uint8Array }
  | { op: 'prepare'; key: HeSecretKey; member: string; tag: Uint8Array; nonce: Uint8Array; firstChunk: number; count: number; sum: boolean }
  | { op: 'decrypt'; key: HeSecretKey; addends: SecretRef[]; tag: Uint8Array; bytes: Uint8Array; kind: ChunkKind; count: number; firstChunk: number; valueCount: number; out: Float64Array; divisor: number }
  | { op: 'acc-free'; acc: number }
  | { op: 'ckks-keys'; keys: Partial<CkksKeys> }
  | { op: 'ckks-encrypt'; values: Float32Array | Float64Array }
  | { op: 'ckks-add'; acc: number; cts: Uint8Array[] }
  | { op: 'ckks-result'; acc: number }
  | { op: 'ckks-decrypt'; cts: Uint8Array[]; valueCount: number };

export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { code?: string; message: string; hint?: string; details?: Record<string, unknown> } };

let ctx: HeContext | undefined;
const ckksSums = new Map<number, Ciphertext[]>();

/**
 * Runs the hot paths (masks, quantization, encryption, summing, decryption) on a few chunks of throwaway data
 * under a throwaway key, so the first real round does not run them in V8's interpreter: a daemon's worker
 * sees only a handful of calls per round, and each thread has its own JIT.
 */
function warmUp(c: HeContext): void {
  const key = generateKeys(c);
  const n = c.slotCount;
  const chunks = 8;
  const members = ['warm-up-a', 'warm-up-b'];
  const values = Float32Array.from({ length: chunks * n }, (_, i) => Math.sin(i) * 0.5);
  // V8 optimizes a function after enough calls and loop iterations: three small rounds get there (~0.1 s, once).
  for (let round = 0; round < 3; round++) {
    const tag = new Uint8Array(32).fill(round + 1);
    const nonces = members.map(() => freshNonce());
    members.forEach((member, i) => prepareMasks(c, key, { member, tag, nonce: nonces[i], firstChunk: 0, count: chunks, sum: true }));
    const acc = new Accumulator(c);
    members.forEach((member, i) => {
      const { ints } = toIntegers(c, values, [1, round]);
      acc.add(assembleUpdate(c, values.length, tag, [encryptChunkRange(c, key, member, tag, nonces[i], ints, 0, values.length)], [participantEntry(member, nonces[i])]));
    });
    const sum = acc.result();
    acc.dispose();
    const h = readUpdateHeader(c, sum);
    decryptChunks(c, key, resolveParticipants(h, members), tag, sum, h.bodyOffset, KIND_SUM_COMPACT, chunks, 0, values.length, new Float64Array(values.length), 0, c.scale);
  }
}

function context(): HeContext {
  if (!ctx) throw new FedtwinError('HE_POOL', 'worker used before init', { hint: 'internal: createHePool initializes workers' });
  return ctx;
}

async function handle(m: WorkerRequest): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> {
  switch (m.op) {
    case 'init': {
      ctx = await createHeContext(m.params);
      if (ctx.paramsIdHex !== m.paramsId) throw new FedtwinError('HE_POOL', 'worker derived another parameters id', { hint: 'internal: SEAL differs between threads' });
      warmUp(ctx);
      return { value: null };
    }
    case 'encrypt': {
      const c = context();
      const { ints, clipped } = toIntegers(c, m.values, m.seed, m.offset);
      const bytes = encryptChunkRange(c, m.key, m.member, m.tag, m.nonce, ints, m.firstChunk, m.totalValues);
      return { value: { bytes, clipped }, transfer: [bytes.buffer as ArrayBuffer] };
    }
    case 'prepare':
      return { value: prepareMasks(context(), m.key, { member: m.member, tag: m.tag, nonce: m.nonce, firstChunk: m.firstChunk, count: m.count, sum: m.sum }) };
    case 'decrypt': {
      const c = context();
      // Writes straight into the caller's shared output (no copy back).
      decryptChunks(c, m.key, m.addends, m.tag, m.bytes, 0, m.kind, m.count, m.firstChunk, m.valueCount, m.out, m.firstChunk * c.slotCount, m.divisor);
      return { value: null };
    }
    case 'acc-free':
      for (const c of ckksSums.get(m.acc) ?? []) c.delete();
      ckksSums.delete(m.acc);
      return { value: null };
    case 'ckks-keys':
      (await loadCkksBaseline()).useKeys(m.keys);
      return { value: null };
    case 'ckks-encrypt': {
      const cts = (await loadCkksBaseline()).encrypt(m.values);
      return { value: cts, transfer: cts.map((c) => c.buffer as ArrayBuffer) };
    }
    case 'ckks-add': {
      let s = ckksSums.get(m.acc);
      if (!s) ckksSums.set(m.acc, (s = []));
      (await loadCkksBaseline()).add(s, m.cts);
      return { value: null };
    }
    case 'ckks-result':
      return { value: (await loadCkksBaseline()).save(ckksSums.get(m.acc) ?? []) };
    case 'ckks-decrypt': {
      const out = (await loadCkksBaseline()).decrypt(m.cts, m.valueCount);
      return { value: out, transfer: [out.buffer as ArrayBuffer] };
    }
  }
}

// Requests are handled one at a time, in order: SEAL objects here are not re-entrant.
let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (msg: { id: number; req: WorkerRequest }) => {
  queue = queue.then(async () => {
    try {
      const { value, transfer } = await handle(msg.req);
      parentPort!.postMessage({ id: msg.id, ok: true, value } satisfies WorkerReply, transfer ?? []);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown; hint?: unknown; details?: unknown };
      const error = err instanceof FedtwinError
        ? { code: err.code, message: err.message, hint: err.hint, details: err.details }
        : { message: typeof e?.message === 'string' ? e.message : Array.isArray(e?.message) ? e.message.join(': ') : String(err) };
      parentPort!.postMessage({ id: msg.id, ok: false, error } satisfies WorkerReply);
    }
  });
});
