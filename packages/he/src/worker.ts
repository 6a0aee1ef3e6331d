// Worker thread of createHePool: owns its own SEAL WASM instance and running sums for its share of chunks.
import { parentPort } from 'node:worker_threads';
import type { Ciphertext } from 'node-seal';
import { FedtwinError } from '@fedtwin/errors';
import { createHeContext } from './context.ts';
import type { HeContext } from './context.ts';
import type { HeParams } from './params.ts';
import type { HeSecretKey } from './keys.ts';
import { decryptChunks, encryptChunkRange, prepareMasks, toIntegers } from './scheme.ts';
import type { ChunkKind } from './wire.ts';
import { loadCkksBaseline } from './ckks.ts';
import type { CkksKeys } from './ckks.ts';
import type { QuantSeed } from './quantize.ts';

export type WorkerRequest =
  | { op: 'init'; params: HeParams; paramsId: string }
  | { op: 'encrypt'; values: Float32Array | Float64Array | Int32Array; offset: number; firstChunk: number; totalValues: number; seed: QuantSeed; key: HeSecretKey; member: string; tag: Uint8Array }
  | { op: 'prepare'; key: HeSecretKey; member: string; tag: Uint8Array; firstChunk: number; count: number; participants?: string[] }
  | { op: 'decrypt'; key: HeSecretKey; participants: string[]; tag: Uint8Array; bytes: Uint8Array; kind: ChunkKind; count: number; firstChunk: number; valueCount: number; addends: number }
  | { op: 'acc-free'; acc: number }
  | { op: 'ckks-keys'; keys: Partial<CkksKeys> }
  | { op: 'ckks-encrypt'; values: Float32Array | Float64Array }
  | { op: 'ckks-add'; acc: number; cts: Uint8Array[] }
  | { op: 'ckks-result'; acc: number }
  | { op: 'ckks-decrypt'; cts: Uint8Array[]; valueCount: number };

export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { code?: string; message: string; hint?: string; details?: Record<string, unknown> } };

let ctx: HeContext | undefined;
const ckksSums = new Map<number, Ciphertext[]>();

function context(): HeContext {
  if (!ctx) throw new FedtwinError('HE_POOL', 'worker used before init', { hint: 'internal: createHePool initializes workers' });
  return ctx;
}

async function handle(m: WorkerRequest): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> {
  switch (m.op) {
    case 'init': {
      ctx = await createHeContext(m.params);
      if (ctx.paramsIdHex !== m.paramsId) throw new FedtwinError('HE_POOL', 'worker derived another parameters id', { hint: 'internal: SEAL differs between threads' });
      return { value: null };
    }
    case 'encrypt': {
      const c = context();
      const { ints, clipped } = toIntegers(c, m.values, m.seed, m.offset);
      const bytes = encryptChunkRange(c, m.key, m.member, m.tag, ints, m.firstChunk, m.totalValues);
      return { value: { bytes, clipped }, transfer: [bytes.buffer as ArrayBuffer] };
    }
    case 'prepare':
      return { value: prepareMasks(context(), m.key, { member: m.member, tag: m.tag, firstChunk: m.firstChunk, count: m.count, participants: m.participants }) };
    case 'decrypt': {
      const c = context();
      const out = new Int32Array(Math.min(m.count * c.slotCount, m.valueCount - m.firstChunk * c.slotCount));
      decryptChunks(c, m.key, m.participants, m.tag, m.bytes, 0, m.kind, m.count, m.firstChunk, m.valueCount, m.addends, out, 0);
      return { value: out, transfer: [out.buffer as ArrayBuffer] };
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
