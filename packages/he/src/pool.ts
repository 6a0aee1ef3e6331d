// A pool of worker threads (one SEAL instance each) for encryption, decryption and aggregation.
// Work is split by contiguous chunk ranges, so results are byte-identical to the single-thread API
// for the same quantization seed (the ciphertext randomness aside).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { FedtwinError } from '@fedtwin/errors';
import { createHeContext } from './context.ts';
import type { HeContext } from './context.ts';
import type { HeParamsInit } from './params.ts';
import type { HeSecretKey } from './keys.ts';
import { keyState } from './keys.ts';
import { MAX_PREPARED_CHUNKS, assembleUpdate, participantEntry, resolveParticipants } from './scheme.ts';
import type { DecryptedIntegers, EncryptOptions, EncryptResult } from './scheme.ts';
import { randomSeed } from './quantize.ts';
import { checkMember, checkNonce, checkTag, freshNonce } from './mask.ts';
import { chunkSize, readUpdateHeader } from './wire.ts';
import type { ChunkKind } from './wire.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';
import type { CkksKeys } from './ckks.ts';
import { CKKS_SLOTS } from './ckks.ts';

export interface HePoolInit {
  /** Worker threads (default: available parallelism, at most 8). */
  threads?: number;
  params?: HeParamsInit;
}

export interface CkksPoolBaseline {
  setKeys(keys: CkksKeys): Promise<void>;
  encrypt(values: Float32Array | Float64Array): Promise<Uint8Array[]>;
  createAccumulator(): { add(cts: readonly Uint8Array[]): Promise<void>; result(): Promise<Uint8Array[]>; dispose(): Promise<void> };
  decrypt(cts: readonly Uint8Array[], valueCount: number): Promise<Float64Array>;
}

export interface HePool {
  readonly ctx: HeContext;
  readonly threads: number;
  encrypt(key: HeSecretKey, values: Float32Array | Float64Array | Int32Array, opts: EncryptOptions): Promise<EncryptResult>;
  /**
   * Offline phase: chooses the nonce of (member, tag)'s next encryption and has each worker make the masks its
   * share of a `valueCount`-value update will need under it, so the next encrypt() for (member, tag) only adds
   * and packs; with `sum`, also the part of that round's decryption masks that does not depend on the
   * participants' nonces (the expanded a's: the products with Σ s_i wait for the sum's participant table).
   * Resolves to the number of chunks ready to encrypt. Call it while the update is being computed (training
   * leaves the workers idle).
   */
  prepare(key: HeSecretKey, valueCount: number, opts: { member: string; tag: Uint8Array; sum?: boolean }): Promise<number>;
  /** Decrypts a sum of the updates of `participants` (member ids, as they encrypted); HE_PARTICIPANTS_MISMATCH unless its table names exactly them. */
  decryptIntegers(key: HeSecretKey, sum: Uint8Array, participants: readonly string[]): Promise<DecryptedIntegers>;
  decrypt(key: HeSecretKey, sum: Uint8Array, participants: readonly string[], count?: number): Promise<Float64Array>;
  /** CKKS with NVIDIA FLARE's defaults, for benchmarks only. */
  readonly ckks: CkksPoolBaseline;
  close(): Promise<void>;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

class PoolWorker {
  readonly worker: Worker;
  #next = 1;
  #pending = new Map<number, Pending>();
  #dead: Error | undefined;

  constructor() {
    this.worker = new Worker(new URL('./worker.ts', import.meta.url));
    this.worker.on('message', (r: WorkerReply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(new FedtwinError(r.error.code ?? 'HE_POOL', r.error.message, { hint: r.error.hint, details: r.error.details }));
    });
    const fail = (err: Error): void => {
      this.#dead = err;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.worker.on('error', (err) => fail(new FedtwinError('HE_POOL', `HE worker crashed: ${err.message}`, { hint: 'see the cause; the pool must be recreated', cause: err })));
    this.worker.on('exit', (code) => fail(new FedtwinError('HE_POOL', `HE worker exited (code ${code})`, { hint: 'the pool was closed or a worker died; recreate it' })));
  }

  call<T>(req: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, req }, transfer);
    });
  }
}

/** Contiguous chunk ranges, one per worker (empty ranges dropped). */
function ranges(chunkCount: number, workers: number): Array<{ w: number; first: number; count: number }> {
  const per = Math.ceil(chunkCount / workers);
  const out: Array<{ w: number; first: number; count: number }> = [];
  for (let w = 0; w < workers; w++) {
    const first = w * per;
    const count = Math.min(per, chunkCount - first);
    if (count > 0) out.push({ w, first, count });
  }
  return out;
}

let accIds = 1;
/** Nonces chosen by prepare() and not yet used, per pool (a few rounds at most). */
const MAX_PENDING_NONCES = 16;

/** Starts `threads` workers, each with its own SEAL instance and the same parameters. */
export async function createHePool(init: HePoolInit = {}): Promise<HePool> {
  const threads = init.threads ?? Math.min(8, availableParallelism());
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new FedtwinError('HE_BAD_ARGUMENT', `threads must be an integer in [1, 64], got ${threads}`, { hint: 'use the number of cores' });
  }
  const ctx = await createHeContext(init.params);
  const workers = Array.from({ length: threads }, () => new PoolWorker());
  const closeAll = async (): Promise<void> => {
    await Promise.all(workers.map((w) => w.worker.terminate()));
  };
  try {
    await Promise.all(workers.map((w) => w.call({ op: 'init', params: ctx.params, paramsId: ctx.paramsIdHex })));
  } catch (err) {
    await closeAll();
    throw err;
  }

  /** Slices the chunks of a validated update per worker (copies, so they can be transferred). */
  const slices = (update: Uint8Array, bodyOffset: number, kind: ChunkKind, chunkCount: number, addends: number) =>
    ranges(chunkCount, threads).map((r) => {
      const size = chunkSize(ctx, kind, addends);
      const start = bodyOffset + r.first * size;
      return { ...r, bytes: update.slice(start, start + r.count * size) };
    });

  /** Decrypts into a Float64Array over shared memory that the workers fill in place; `divisor` 1 gives the integers. */
  const decryptInto = async (key: HeSecretKey, sum: Uint8Array, participants: readonly string[], divisor: number): Promise<{ out: Float64Array; addends: number }> => {
    keyState(ctx, key); // fail fast, on this thread, for a key of other parameters
    const h = readUpdateHeader(ctx, sum);
    const addends = resolveParticipants(h, participants);
    const out = new Float64Array(new SharedArrayBuffer(h.valueCount * 8));
    await Promise.all(slices(sum, h.bodyOffset, h.kind, h.chunkCount, h.addends).map((s) =>
      workers[s.w].call({ op: 'decrypt', key, addends, tag: h.tag, bytes: s.bytes, kind: h.kind, count: s.count, firstChunk: s.first, valueCount: h.valueCount, out, divisor }, [s.bytes.buffer as ArrayBuffer])));
    return { out, addends: h.addends };
  };
  const decryptIntegers = async (key: HeSecretKey, sum: Uint8Array, participants: readonly string[]): Promise<DecryptedIntegers> => {
    const { out, addends } = await decryptInto(key, sum, participants, 1);
    return { values: Int32Array.from(out), addends };
  };

  // The nonce prepare() chose for (key, member, tag): encrypt() uses it (its masks are made under it), once.
  const nonces = new Map<string, Uint8Array>();
  const nonceId = (key: HeSecretKey, member: string, tag: Uint8Array) => `${key.keyId}|${member}|${Buffer.from(tag).toString('hex')}`;

  const pool: HePool = {
    ctx,
    threads,
    async encrypt(key, values, opts) {
      keyState(ctx, key);
      if (opts === null || typeof opts !== 'object') throw new FedtwinError('HE_BAD_ARGUMENT', 'encryption needs { member, tag }', { hint: 'pass the member id and the round tag' });
      const member = checkMember(opts.member);
      const tag = checkTag(opts.tag);
      const n = values.length;
      if (n < 1 || n > ctx.params.maxValues) throw new FedtwinError('HE_BAD_ARGUMENT', `update has ${n} values, allowed [1, ${ctx.params.maxValues}]`, { hint: 'raise maxValues in the HE parameters or split the model' });
      const seed = opts.seed ?? randomSeed();
      const id = nonceId(key, member, tag);
      const nonce = opts.nonce !== undefined ? checkNonce(opts.nonce) : nonces.get(id) ?? freshNonce();
      nonces.delete(id); // one encryption per nonce: a later encrypt() for (member, tag) draws a fresh one
      const chunkCount = Math.ceil(n / ctx.slotCount);
      const parts = await Promise.all(ranges(chunkCount, threads).map((r) => {
        const slice = values.slice(r.first * ctx.slotCount, Math.min(n, (r.first + r.count) * ctx.slotCount));
        return workers[r.w].call<{ bytes: Uint8Array; clipped: number }>(
          { op: 'encrypt', values: slice, offset: r.first * ctx.slotCount, firstChunk: r.first, totalValues: n, seed, key, member, tag, nonce },
          [slice.buffer as ArrayBuffer],
        );
      }));
      return { update: assembleUpdate(ctx, n, tag, parts.map((p) => p.bytes), [participantEntry(member, nonce)]), valueCount: n, clipped: parts.reduce((a, p) => a + p.clipped, 0) };
    },
    async prepare(key, valueCount, opts) {
      keyState(ctx, key);
      if (!Number.isInteger(valueCount) || valueCount < 1 || valueCount > ctx.params.maxValues) {
        throw new FedtwinError('HE_BAD_ARGUMENT', `valueCount must be an integer in [1, ${ctx.params.maxValues}], got ${valueCount}`, { hint: 'pass the model size' });
      }
      const member = checkMember(opts?.member);
      const tag = checkTag(opts?.tag);
      const id = nonceId(key, member, tag);
      let nonce = nonces.get(id);
      if (!nonce) {
        nonce = freshNonce();
        while (nonces.size >= MAX_PENDING_NONCES) nonces.delete(nonces.keys().next().value as string);
        nonces.set(id, nonce);
      }
      // Beyond MAX_PREPARED_CHUNKS per worker (8M values) the rest is made when used, in bounded batches.
      const rs = ranges(Math.ceil(valueCount / ctx.slotCount), threads);
      const ready = await Promise.all(rs.map((r) =>
        workers[r.w].call<number>({ op: 'prepare', key, member, tag, nonce, firstChunk: r.first, count: Math.min(r.count, MAX_PREPARED_CHUNKS), sum: opts.sum === true })));
      return ready.reduce((a, b) => a + b, 0);
    },
    decryptIntegers,
    async decrypt(key, sum, participants, count) {
      if (count !== undefined) {
        const h = readUpdateHeader(ctx, sum);
        if (count !== h.valueCount) throw new FedtwinError('HE_SHAPE_MISMATCH', `sum holds ${h.valueCount} values, expected ${count}`, { hint: 'the sum belongs to another model shape' });
      }
      return (await decryptInto(key, sum, participants, ctx.scale)).out;
    },
    ckks: {
      async setKeys(keys) {
        await Promise.all(workers.map((w) => w.call({ op: 'ckks-keys', keys })));
      },
      async encrypt(values) {
        const chunkCount = Math.ceil(values.length / CKKS_SLOTS);
        const parts = await Promise.all(ranges(chunkCount, threads).map((r) => {
          const slice = values.slice(r.first * CKKS_SLOTS, Math.min(values.length, (r.first + r.count) * CKKS_SLOTS));
          return workers[r.w].call<Uint8Array[]>({ op: 'ckks-encrypt', values: slice }, [slice.buffer as ArrayBuffer]);
        }));
        return parts.flat();
      },
      createAccumulator() {
        const acc = accIds++;
        let count = 0;
        return {
          async add(cts) {
            count = cts.length;
            await Promise.all(ranges(cts.length, threads).map((r) => workers[r.w].call({ op: 'ckks-add', acc, cts: cts.slice(r.first, r.first + r.count) })));
          },
          async result() {
            const parts = await Promise.all(ranges(count, threads).map((r) => workers[r.w].call<Uint8Array[]>({ op: 'ckks-result', acc })));
            return parts.flat();
          },
          async dispose() {
            await Promise.all(workers.map((w) => w.call({ op: 'acc-free', acc })));
          },
        };
      },
      async decrypt(cts, valueCount) {
        const parts = await Promise.all(ranges(cts.length, threads).map((r) =>
          workers[r.w].call<Float64Array>({ op: 'ckks-decrypt', cts: cts.slice(r.first, r.first + r.count), valueCount: Math.min(r.count * CKKS_SLOTS, valueCount - r.first * CKKS_SLOTS) })
            .then((v) => ({ first: r.first, v }))));
        const out = new Float64Array(valueCount);
        for (const p of parts) out.set(p.v, p.first * CKKS_SLOTS);
        return out;
      },
    },
    async close() {
      await closeAll();
      ctx.dispose();
    },
  };
  return pool;
}

