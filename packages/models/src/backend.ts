// Choosing the tfjs backend. Order for 'auto': tfjs-node (native libtensorflow, optional and often
// absent) → wasm (SIMD; ~4× the pure-JS cpu backend on our MLPs, with the matmul fix) → cpu.
// FEDTWIN_BACKEND=node|wasm|cpu|auto overrides what the caller asks for.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { installWasmMatmulFix, isWasmMatmulFixInstalled, uninstallWasmMatmulFix } from './matmul-fix.ts';

export type BackendPreference = 'node' | 'wasm' | 'cpu' | 'auto';
export interface BackendInfo {
  /** tfjs backend name actually active: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  name: string;
  /** One human line: what runs and how (SIMD, threads, matmul fix). */
  detail: string;
}
export interface InitBackendOptions {
  /** Install (true, default) or remove (false) the wasm transposed-matmul fix. */
  matmulFix?: boolean;
}

const PREFS: readonly BackendPreference[] = ['node', 'wasm', 'cpu', 'auto'];

let wasmRegistered: Promise<boolean> | null = null;
let nodeRegistered: Promise<boolean> | null = null;
let prodSet = false;

function resolvePreference(prefer: BackendPreference | undefined): BackendPreference {
  const env = process.env.FEDTWIN_BACKEND?.trim().toLowerCase();
  const p = env !== undefined && env !== '' ? env : (prefer ?? 'auto');
  if (!(PREFS as readonly string[]).includes(p)) {
    throw new FedtwinError('MODELS_BAD_BACKEND', `unknown backend "${p}"${env ? ' (from FEDTWIN_BACKEND)' : ''}`, {
      hint: 'use one of node, wasm, cpu, auto',
    });
  }
  return p as BackendPreference;
}

/** Register the wasm backend once, pointing it at the package's own .wasm files. */
function registerWasm(): Promise<boolean> {
  wasmRegistered ??= (async () => {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const req = createRequire(import.meta.url);
      const dir = path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm'));
      // Multi-threaded wasm needs blob: workers, which Node's worker_threads reject (tfjs#3830),
      // so the backend picks the SIMD (or plain) single-threaded binary itself.
      wasm.setWasmPaths(dir + path.sep);
      return true;
    } catch {
      return false;
    }
  })();
  return wasmRegistered;
}

function registerNode(): Promise<boolean> {
  nodeRegistered ??= (async () => {
    try {
      // Optional dependency; a variable specifier keeps bundlers and tsc from requiring it.
      const spec = '@tensorflow/tfjs-node';
      await import(spec);
      return tf.findBackendFactory('tensorflow') !== null;
    } catch {
      return false;
    }
  })();
  return nodeRegistered;
}

async function activate(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

function describe(name: string): string {
  if (name === 'wasm') {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    return `wasm (${simd ? 'SIMD' : 'no SIMD'}, single-threaded; transposed-matmul fix ${isWasmMatmulFixInstalled() ? 'on' : 'off'})`;
  }
  if (name === 'tensorflow') return 'tensorflow (native libtensorflow via @tensorflow/tfjs-node)';
  if (name === 'cpu') return 'cpu (pure JavaScript kernels)';
  return name;
}

/** Select and initialise a tfjs backend. Idempotent; calling again with another preference
 *  switches the active backend (tensors created on the old one must be disposed by then). */
export async function initBackend(prefer?: BackendPreference, opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const p = resolvePreference(prefer);
  if (!prodSet) {
    // PROD skips per-op NaN debug checks and the "install tfjs-node" console banner of the cpu backend.
    tf.env().set('PROD', true);
    prodSet = true;
  }
  const tryNode = async (): Promise<boolean> => (await registerNode()) && activate('tensorflow');
  const tryWasm = async (): Promise<boolean> => {
    if (!(await registerWasm())) return false;
    if (opts.matmulFix ?? true) installWasmMatmulFix();
    else uninstallWasmMatmulFix();
    return activate('wasm');
  };
  let ok = false;
  if (p === 'node') ok = await tryNode();
  else if (p === 'wasm') ok = await tryWasm();
  else if (p === 'cpu') ok = await activate('cpu');
  else ok = (await tryNode()) || (await tryWasm()) || (await activate('cpu'));
  if (!ok) {
    throw new FedtwinError('MODELS_BACKEND_UNAVAILABLE', `tfjs backend "${p}" could not be initialised`, {
      hint: p === 'node'
        ? '@tensorflow/tfjs-node is optional and not installed here; use FEDTWIN_BACKEND=wasm or auto'
        : 'use FEDTWIN_BACKEND=auto to fall back to another backend',
    });
  }
  const name = tf.getBackend();
  return { name, detail: describe(name) };
}

/** Name of the active backend, or null before initBackend. */
export function currentBackend(): string | null {
  try {
    return tf.engine().backendName ?? null;
  } catch {
    return null;
  }
}
