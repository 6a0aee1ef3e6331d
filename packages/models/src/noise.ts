// Gaussian noise for DP-SGD, one step's worth at a time.
//
// Secure noise (the default outside simulations) is drawn from the OS CSPRNG (crypto.randomFillSync)
// through the DP sampler (normalsFrom: ziggurat with the untruncated tail of gaussian.ts), on a worker
// thread that keeps the next steps' noise ready in a small ring of shared buffers: the training thread
// only waits if the worker falls behind. On 2 cores this takes ~0.3 ms per step of ~48k parameters off
// tfjs-wasm's single training thread, which is most of the gap between DP-SGD and plain SGD. Seeded
// noise (simulations) stays on the training thread, drawn from the training stream by the same sampler
// (Rng.dpNormals), so seeded runs are reproducible.
import { Worker } from 'node:worker_threads';
import { randomFillSync } from 'node:crypto';
import { normalsFrom, type Rng } from './rng.ts';

export interface NoiseSource {
  /** `n` fresh N(0, 1) draws for one step; the view is valid until the next call. */
  next(n: number): Float32Array;
  readonly kind: 'seeded' | 'os-csprng' | 'os-csprng-worker';
}

/** Noise from a seeded stream, on this thread (reproducible; not private against whoever knows the seed):
 *  the same DP sampler as the secure sources (Rng.dpNormals = normalsFrom over the stream). */
export function seededNoise(rng: Rng): NoiseSource {
  let buf = new Float32Array(0);
  return {
    kind: 'seeded',
    next(n) {
      if (buf.length < n) buf = new Float32Array(n);
      return rng.dpNormals(buf.subarray(0, n));
    },
  };
}

/** A u32 stream straight from the OS CSPRNG, refilled 64 KiB at a time. */
export function osRandomU32(): () => number {
  const pool = new Uint32Array(16384);
  let pos = pool.length;
  return () => {
    if (pos === pool.length) {
      randomFillSync(pool);
      pos = 0;
    }
    return pool[pos++];
  };
}

/** OS-CSPRNG noise drawn on this thread (fallback when a worker cannot start). */
export function osNoise(): NoiseSource {
  const u32 = osRandomU32();
  let buf = new Float32Array(0);
  return {
    kind: 'os-csprng',
    next(n) {
      if (buf.length < n) buf = new Float32Array(n);
      return normalsFrom(u32, buf.subarray(0, n));
    },
  };
}

const SLOTS = 3;
const WAIT_MS = 10_000;

/** Ring of SLOTS buffers of n floats + one Int32 flag per slot (0 empty, 1 full) + a stop flag. */
class WorkerNoise implements NoiseSource {
  readonly kind = 'os-csprng-worker' as const;
  readonly n: number;
  #worker: Worker;
  #ctrl: Int32Array;
  #slots: Float32Array[];
  #cur = 0;
  #held = -1;
  #fallback: NoiseSource | undefined;

  constructor(n: number) {
    this.n = n;
    const sab = new SharedArrayBuffer(SLOTS * n * 4 + (SLOTS + 1) * 4);
    this.#slots = Array.from({ length: SLOTS }, (_, i) => new Float32Array(sab, i * n * 4, n));
    this.#ctrl = new Int32Array(sab, SLOTS * n * 4, SLOTS + 1);
    this.#worker = new Worker(new URL('./noise-worker.ts', import.meta.url), { workerData: { sab, n, slots: SLOTS } });
    this.#worker.unref();
    this.#worker.on('error', () => {
      this.#fallback ??= osNoise();
    });
  }

  next(n: number): Float32Array {
    if (n !== this.n) throw new RangeError(`noise source makes ${this.n} values per step, asked for ${n}`);
    if (this.#fallback) return this.#fallback.next(n);
    const ctrl = this.#ctrl;
    if (this.#held >= 0) {
      Atomics.store(ctrl, this.#held, 0);
      Atomics.notify(ctrl, this.#held);
      this.#held = -1;
    }
    const i = this.#cur;
    if (Atomics.load(ctrl, i) !== 1 && Atomics.wait(ctrl, i, 0, WAIT_MS) === 'timed-out' && Atomics.load(ctrl, i) !== 1) {
      // The worker is gone or starved: keep training with noise drawn here (same distribution).
      this.#fallback = osNoise();
      return this.#fallback.next(n);
    }
    this.#cur = (i + 1) % SLOTS;
    this.#held = i;
    return this.#slots[i];
  }

  stop(): void {
    Atomics.store(this.#ctrl, SLOTS, 1);
    for (let i = 0; i < SLOTS; i++) {
      Atomics.store(this.#ctrl, i, 0);
      Atomics.notify(this.#ctrl, i);
    }
    void this.#worker.terminate();
  }
}

// One worker per step size, kept for the life of the process (a trainer calls trainEpochs repeatedly
// with the same model); at most a few sizes are kept.
const workers = new Map<number, WorkerNoise>();
const MAX_WORKERS = 2;

/** OS-CSPRNG noise prepared ahead on a worker thread; falls back to this thread if no worker can start. */
export function secureNoise(n: number): NoiseSource {
  const have = workers.get(n);
  if (have) return have;
  try {
    const w = new WorkerNoise(n);
    if (workers.size >= MAX_WORKERS) {
      const [oldest, src] = workers.entries().next().value as [number, WorkerNoise];
      src.stop();
      workers.delete(oldest);
    }
    workers.set(n, w);
    return w;
  } catch {
    return osNoise();
  }
}
