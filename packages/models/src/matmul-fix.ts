// tfjs-backend-wasm 4.22 runs matMul with transposeA/transposeB ~7–10× slower than the plain
// product (its XNNPACK path only covers the untransposed layout), and every backward pass of a
// dense layer asks for exactly those (dA = dy·Wᵀ, dW = aᵀ·dy). We re-register the wasm
// BatchMatMul and _FusedMatMul kernels with wrappers that transpose explicitly (an O(size) copy)
// and then call the original kernel with transpose flags off.

import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo, NamedAttrMap } from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';

const KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
const BACKEND = 'wasm';

/** Original configs while the fix is installed (null = not installed). */
let saved: KernelConfig[] | null = null;

interface DisposingBackend { disposeData(dataId: object, force?: boolean): boolean }

function wrap(orig: KernelConfig, transpose: KernelFunc): KernelFunc {
  const inner = orig.kernelFunc;
  return (args) => {
    const attrs = args.attrs as NamedAttrMap & { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return inner(args);
    const inputs = { ...args.inputs };
    const temps: TensorInfo[] = [];
    const swapLast2 = (t: TensorInfo): TensorInfo => {
      const r = t.shape.length;
      const perm = Array.from({ length: r }, (_, i) => i);
      perm[r - 2] = r - 1;
      perm[r - 1] = r - 2;
      const out = transpose({ inputs: { x: t }, backend: args.backend, attrs: { perm } }) as TensorInfo;
      temps.push(out);
      return out;
    };
    if (attrs.transposeA) inputs.a = swapLast2(inputs.a as TensorInfo);
    if (attrs.transposeB) inputs.b = swapLast2(inputs.b as TensorInfo);
    try {
      return inner({ inputs, backend: args.backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      // Kernel-internal temporaries are freed on the backend directly, as the wasm kernels do.
      const be = args.backend as unknown as DisposingBackend;
      for (const t of temps) be.disposeData(t.dataId);
    }
  };
}

/** Re-register the wasm matMul kernels with the explicit-transpose wrappers. Idempotent.
 *  Works before or after the wasm backend is initialised (the original setup functions are kept). */
export function installWasmMatmulFix(): void {
  if (saved !== null) return;
  const transposeCfg = tf.getKernel('Transpose', BACKEND);
  const origs = KERNELS.map((k) => tf.getKernel(k, BACKEND));
  if (transposeCfg === undefined || origs.some((c) => c === undefined)) {
    throw new FedtwinError('MODELS_BACKEND_UNAVAILABLE', 'the wasm backend kernels are not registered', {
      hint: "import '@tensorflow/tfjs-backend-wasm' (initBackend('wasm') does) before installing the matmul fix",
    });
  }
  const originals = origs as KernelConfig[];
  for (const orig of originals) {
    tf.unregisterKernel(orig.kernelName, BACKEND);
    tf.registerKernel({ ...orig, kernelFunc: wrap(orig, transposeCfg.kernelFunc) });
  }
  saved = originals;
}

/** Restore the stock wasm kernels (for benchmarks). Idempotent. */
export function uninstallWasmMatmulFix(): void {
  if (saved === null) return;
  for (const orig of saved) {
    tf.unregisterKernel(orig.kernelName, BACKEND);
    tf.registerKernel(orig);
  }
  saved = null;
}

export function isWasmMatmulFixInstalled(): boolean {
  return saved !== null;
}
