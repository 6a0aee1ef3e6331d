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
import { assembleUpdate, checkAddable, validateChunks } from './scheme.ts';
import type { DecryptedIntegers, EncryptOptions, EncryptResult } from './scheme.ts';
import { randomSeed } from './quantize.ts';
import { KIND_SUM, KIND_SUM_COMPACT, UPDATE_HEADER_BYTES, chunkSize, readUpdateHeader } from './wire.ts';
import type { ChunkKind } from './wire.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';
import type { CkksKeys } from './ckks.ts';
import { CKKS_SLOTS } from './ckks.ts';

export interface HePoolInit {
  /** Worker threads (default: available parallelism, at most 8). */
  threads?: number;
  params?: HeParamsInit;
}

export interface PooledAccumulator {
  readonly addends: number;
  /** Validates then adds one update across the workers; on a validation error the sum is unchanged. */
  add(update: Uint8Array): Promise<void>;
  /** The sum: full width, or compact (final, what members download); see Accumulator.result. */
  result(opts?: { compact?: boolean }): Promise<Uint8Array>;
  dispose(): Promise<void>;
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
  encrypt(key: HeSecretKey, values: Float32Array | Float64Array | Int32Array, opts?: EncryptOptions): Promise<EncryptResult>;
  /**
   * Offline phase: each worker makes the encryptions of zero its share of a `valueCount`-value update
   * will need, so the next encrypt() under this key only adds and packs. Resolves to the number ready.
   * Call it while the update is being computed (training leaves the workers idle).
   */
  prepare(key: HeSecretKey, valueCount: number): Promise<number>;
  decryptIntegers(key: HeSecretKey, sum: Uint8Array): Promise<DecryptedIntegers>;
  decrypt(key: HeSecretKey, sum: Uint8Array, count?: number): Promise<Float64Array>;
  createAccumulator(): PooledAccumulator;
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
  const slices = (update: Uint8Array, kind: ChunkKind, chunkCount: number, addends: number) =>
    ranges(chunkCount, threads).map((r) => {
      const size = chunkSize(ctx, kind, addends);
      const start = UPDATE_HEADER_BYTES + r.first * size;
      return { ...r, bytes: update.slice(start, start + r.count * size) };
    });

  const decryptIntegers = async (key: HeSecretKey, sum: Uint8Array): Promise<DecryptedIntegers> => {
    keyState(ctx, key); // fail fast, on this thread, for a key of other parameters
    const h = readUpdateHeader(ctx, sum);
    const parts = await Promise.all(slices(sum, h.kind, h.chunkCount, h.addends).map((s) =>
      workers[s.w].call<Int32Array>({ op: 'decrypt', key, bytes: s.bytes, kind: h.kind, count: s.count, firstChunk: s.first, valueCount: h.valueCount, addends: h.addends }, [s.bytes.buffer as ArrayBuffer])
        .then((v) => ({ first: s.first, v }))));
    const values = new Int32Array(h.valueCount);
    for (const p of parts) values.set(p.v, p.first * ctx.slotCount);
    return { values, addends: h.addends };
  };

  const pool: HePool = {
    ctx,
    threads,
    async encrypt(key, values, opts = {}) {
      keyState(ctx, key);
      const n = values.length;
      if (n < 1 || n > ctx.params.maxValues) throw new FedtwinError('HE_BAD_ARGUMENT', `update has ${n} values, allowed [1, ${ctx.params.maxValues}]`, { hint: 'raise maxValues in the HE parameters or split the model' });
      const seed = opts.seed ?? randomSeed();
      const chunkCount = Math.ceil(n / ctx.slotCount);
      const parts = await Promise.all(ranges(chunkCount, threads).map((r) => {
        const slice = values.slice(r.first * ctx.slotCount, Math.min(n, (r.first + r.count) * ctx.slotCount));
        return workers[r.w].call<{ bytes: Uint8Array; clipped: number }>(
          { op: 'encrypt', values: slice, offset: r.first * ctx.slotCount, firstChunk: r.first, totalValues: n, seed, key },
          [slice.buffer as ArrayBuffer],
        );
      }));
      return { update: assembleUpdate(ctx, n, parts.map((p) => p.bytes)), valueCount: n, clipped: parts.reduce((a, p) => a + p.clipped, 0) };
    },
    async prepare(key, valueCount) {
      keyState(ctx, key);
      if (!Number.isInteger(valueCount) || valueCount < 1 || valueCount > ctx.params.maxValues) {
        throw new FedtwinError('HE_BAD_ARGUMENT', `valueCount must be an integer in [1, ${ctx.params.maxValues}], got ${valueCount}`, { hint: 'pass the model size' });
      }
      const ready = await Promise.all(ranges(Math.ceil(valueCount / ctx.slotCount), threads).map((r) =>
        workers[r.w].call<number>({ op: 'prepare', key, count: r.count })));
      return ready.reduce((a, b) => a + b, 0);
    },
    decryptIntegers,
    async decrypt(key, sum, count) {
      const { values } = await decryptIntegers(key, sum);
      if (count !== undefined && count !== values.length) {
        throw new FedtwinError('HE_SHAPE_MISMATCH', `sum holds ${values.length} values, expected ${count}`, { hint: 'the sum belongs to another model shape' });
      }
      const out = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = values[i] / ctx.scale;
      return out;
    },
    createAccumulator() {
      const acc = accIds++;
      let valueCount: number | undefined;
      let addends = 0;
      let broken: Error | undefined;
      let chain: Promise<unknown> = Promise.resolve();
      // Adds run one after another so each is atomic with respect to the others.
      const serial = <T>(fn: () => Promise<T>): Promise<T> => {
        const p = chain.then(fn);
        chain = p.catch(() => {});
        return p;
      };
      return {
        get addends() {
          return addends;
        },
        add(update) {
          return serial(async () => {
            if (broken) throw broken;
            const h = checkAddable(ctx, update, valueCount, addends);
            // Every chunk is checked (seed PRNG ids; coefficient ranges where some bit patterns are invalid)
            // before the first addition, so a bad chunk cannot leave a half-added sum. On this thread: for
            // fresh updates under the default parameters that reads one byte per chunk.
            validateChunks(ctx, update, UPDATE_HEADER_BYTES, h.kind, h.chunkCount, h.addends);
            const parts = slices(update, h.kind, h.chunkCount, h.addends);
            try {
              await Promise.all(parts.map((s) => workers[s.w].call({ op: 'acc-add', acc, bytes: s.bytes, kind: h.kind, count: s.count, addends: h.addends }, [s.bytes.buffer as ArrayBuffer])));
            } catch (err) {
              broken = new FedtwinError('HE_POOL', 'a worker failed while adding a validated update; the running sum is lost', { hint: 'start a new accumulator', cause: err });
              throw broken;
            }
            valueCount = h.valueCount;
            addends += h.addends;
          });
        },
        result(opts = {}) {
          return serial(async () => {
            if (broken) throw broken;
            if (valueCount === undefined) throw new FedtwinError('HE_EMPTY_SUM', 'no update has been added', { hint: 'add at least one update before taking the result' });
            const vc = valueCount;
            const compact = opts.compact === true;
            const parts = await Promise.all(ranges(Math.ceil(vc / ctx.slotCount), threads).map((r) =>
              workers[r.w].call<Uint8Array>({ op: 'acc-result', acc, firstChunk: r.first, valueCount: vc, addends, compact })));
            return assembleUpdate(ctx, vc, parts, compact ? KIND_SUM_COMPACT : KIND_SUM, addends);
          });
        },
        dispose() {
          return serial(async () => {
            await Promise.all(workers.map((w) => w.call({ op: 'acc-free', acc })));
          });
        },
      };
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

