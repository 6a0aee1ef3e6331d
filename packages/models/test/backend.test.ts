import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend, isWasmMatmulFixInstalled } from '../src/index.ts';
import { isFedtwinError } from '@fedtwin/errors';

describe('initBackend', () => {
  const saved = process.env.FEDTWIN_BACKEND;
  afterEach(() => {
    if (saved === undefined) delete process.env.FEDTWIN_BACKEND;
    else process.env.FEDTWIN_BACKEND = saved;
  });

  it('auto picks a native or wasm backend and reports it', async () => {
    delete process.env.FEDTWIN_BACKEND;
    const info = await initBackend('auto');
    expect(['tensorflow', 'wasm']).toContain(info.name);
    expect(tf.getBackend()).toBe(info.name);
    expect(currentBackend()).toBe(info.name);
    expect(info.detail.length).toBeGreaterThan(0);
  });

  it('wasm uses SIMD and installs the matmul fix by default; idempotent', async () => {
    delete process.env.FEDTWIN_BACKEND;
    const a = await initBackend('wasm');
    const b = await initBackend('wasm');
    expect(a).toEqual(b);
    expect(a.name).toBe('wasm');
    expect(a.detail).toMatch(/SIMD/);
    expect(isWasmMatmulFixInstalled()).toBe(true);
    const off = await initBackend('wasm', { matmulFix: false });
    expect(off.detail).toMatch(/fix off/);
    expect(isWasmMatmulFixInstalled()).toBe(false);
    await initBackend('wasm');
    expect(isWasmMatmulFixInstalled()).toBe(true);
  });

  it('cpu can be selected and FEDTWIN_BACKEND overrides the argument', async () => {
    delete process.env.FEDTWIN_BACKEND;
    expect((await initBackend('cpu')).name).toBe('cpu');
    process.env.FEDTWIN_BACKEND = 'wasm';
    expect((await initBackend('cpu')).name).toBe('wasm');
    process.env.FEDTWIN_BACKEND = 'CPU ';
    expect((await initBackend('wasm')).name).toBe('cpu');
  });

  it('rejects unknown names and reports an unavailable explicit backend', async () => {
    process.env.FEDTWIN_BACKEND = 'gpu';
    await expect(initBackend()).rejects.toSatisfy((e: unknown) => isFedtwinError(e, 'MODELS_BAD_BACKEND'));
    delete process.env.FEDTWIN_BACKEND;
    // tfjs-node is optional: either it works, or asking for it explicitly fails with a typed error.
    try {
      expect((await initBackend('node')).name).toBe('tensorflow');
    } catch (e) {
      expect(isFedtwinError(e, 'MODELS_BACKEND_UNAVAILABLE')).toBe(true);
    }
    await initBackend('wasm');
  });
});
