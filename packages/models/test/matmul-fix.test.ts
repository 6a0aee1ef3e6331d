import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, installWasmMatmulFix, uninstallWasmMatmulFix, isWasmMatmulFixInstalled } from '../src/index.ts';
import { registerModelGradients } from '../src/gradients.ts';

/** Reference (batched) product in float64 JS: C[b] = op(A[b]) · op(B[b]). */
function refMatMul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, ta: boolean, tb: boolean): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) {
          const av = ta ? a[p * k * m + t * m + i] : a[p * m * k + i * k + t];
          const bv = tb ? b[p * n * k + j * k + t] : b[p * k * n + t * n + j];
          s += av * bv;
        }
        out[p * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

function backendDataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

describe('wasm transposed-matmul fix', () => {
  const envBackend = process.env.FEDTWIN_BACKEND;
  beforeAll(async () => {
    delete process.env.FEDTWIN_BACKEND; // these tests are about the wasm kernels specifically
    await initBackend('wasm');
    registerModelGradients();
  });
  afterAll(() => {
    if (envBackend !== undefined) process.env.FEDTWIN_BACKEND = envBackend;
  });

  it('replaces the registered kernels and restores them', () => {
    installWasmMatmulFix();
    const fixed = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    uninstallWasmMatmulFix();
    expect(isWasmMatmulFixInstalled()).toBe(false);
    const stock = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    expect(fixed).not.toBe(stock);
    installWasmMatmulFix();
    installWasmMatmulFix(); // idempotent
    expect(isWasmMatmulFixInstalled()).toBe(true);
    uninstallWasmMatmulFix();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(stock);
    installWasmMatmulFix();
  });

  it('matMul and fused matMul equal the reference for every transpose combination (property)', () => {
    installWasmMatmulFix();
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }),
      fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
      (batch, m, k, n, ta, tb, seed) => {
        let s = seed;
        const rnd = (len: number): Float32Array => Float32Array.from({ length: len }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
        const a = rnd(batch * m * k), b = rnd(batch * k * n), bias = rnd(n);
        const ref = refMatMul(a, b, batch, m, k, n, ta, tb);
        const before = backendDataIds();
        const [plain, fused] = tf.tidy(() => {
          const A = tf.tensor3d(a, ta ? [batch, k, m] : [batch, m, k]);
          const B = tf.tensor3d(b, tb ? [batch, n, k] : [batch, k, n]);
          return [
            tf.matMul(A, B, ta, tb).dataSync(),
            // Stock wasm _FusedMatMul adds the bias wrongly when batch > 1 (rows after the first of
            // each later batch); dense layers are rank 2 (batch 1), so check the fused path there.
            tf.fused.matMul({ a: tf.slice(A, [0, 0, 0], [1, -1, -1]),
              b: tf.slice(B, [0, 0, 0], [1, -1, -1]), transposeA: ta, transposeB: tb, bias: tf.tensor1d(bias) }).dataSync(),
          ];
        });
        // The wrapper's transposed temporaries are freed on the backend.
        expect(backendDataIds()).toBe(before);
        expect(fused.length).toBe(m * n);
        for (let i = 0; i < ref.length; i++) {
          expect(plain[i]).toBeCloseTo(ref[i], 4);
          if (i < m * n) expect(fused[i]).toBeCloseTo(ref[i] + bias[i % n], 4);
        }
      }), { numRuns: 60 });
  });

  it('gradients through matMul are the same with and without the fix', () => {
    const run = (): Float32Array[] => tf.tidy(() => {
      const x = tf.tensor2d(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]);
      const w = tf.tensor2d(Float32Array.from({ length: 20 }, (_, i) => Math.cos(i)), [4, 5]);
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p, q))))([x, w]);
      return g.map((t) => t.dataSync() as Float32Array);
    });
    installWasmMatmulFix();
    const withFix = run();
    uninstallWasmMatmulFix();
    const without = run();
    installWasmMatmulFix();
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < withFix[t].length; i++) expect(withFix[t][i]).toBeCloseTo(without[t][i], 4);
    }
  });
});
