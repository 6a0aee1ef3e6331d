// Word-wise kernels on Z_{2^32} in WebAssembly SIMD (i32x4: four lanes per instruction), for the mask
// loops. A JavaScript loop over a Uint32Array took ≈ 1.4 ms per 1.1M words here, i32x4 ≈ 0.12 ms (plus
// ≈ 0.09 ms to copy the words into the module's memory), so the add is no longer half of a mask stream's
// cost; the AES keystream is most of what remains (docs/he.md §9 "Cost").
//
// The module is a few hundred bytes, assembled below from named opcodes rather than shipped as a blob, so
// a reader can check every instruction. Each function takes byte offsets into the module's own memory
// (the callers copy keystream and inputs in, chunk by chunk) and a byte count that is a multiple of 16.
//
//   add(dst, src, n)            dst[i] += src[i]                     i32x4.add
//   sub(dst, src, n)            dst[i] -= src[i]                     i32x4.sub
//   outside(src, n, bound) → c  c = #{ i : src[i] > bound ∨ src[i] < −bound } (signed)

const I32 = 0x7f, V128 = 0x7b;
const op = {
  block: [0x02, 0x40], loop: [0x03, 0x40], end: [0x0b], br: 0x0c, brIf: 0x0d,
  localGet: 0x20, localSet: 0x21, localTee: 0x22, i32Const: 0x41,
  i32LtU: 0x49, i32GeU: 0x4f, i32Add: 0x6a, i32Sub: 0x6b,
};
/** SIMD opcodes: prefix 0xfd, then the LEB128 sub-opcode. */
const simd = (code: number): number[] => [0xfd, ...uleb(code)];
const v128Load = (offset: number): number[] => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number): number[] => [...simd(0x0b), 4, ...uleb(offset)];
const I32X4_SPLAT = 0x11, I32X4_EXTRACT = 0x1b, I32X4_LT_S = 0x39, I32X4_GT_S = 0x3b, V128_OR = 0x50, I32X4_ADD = 0xae, I32X4_SUB = 0xb1;

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const sleb = (v: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
};
const get = (i: number): number[] => [op.localGet, i];
const set = (i: number): number[] => [op.localSet, i];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...Buffer.from(s)].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** dst[i] ⊕= src[i] over n bytes: four vectors per iteration while ≥ 64 bytes remain, then one at a time (n a multiple of 16). */
function binaryKernel(lane: number): number[] {
  // params: 0 dst, 1 src, 2 n; local: 3 end
  const step = (off: number): number[] => [...get(0), ...get(0), ...v128Load(off), ...get(1), ...v128Load(off), ...simd(lane), ...v128Store(off)];
  const advance = (bytes: number): number[] => [...get(0), op.i32Const, ...sleb(bytes), op.i32Add, ...set(0), ...get(1), op.i32Const, ...sleb(bytes), op.i32Add, ...set(1)];
  // block { loop { if end − dst < bytes: leave the block; steps; advance; continue } }
  const run = (bytes: number, steps: number[]): number[] => [
    ...op.block, ...op.loop,
    ...get(3), ...get(0), op.i32Sub, op.i32Const, ...sleb(bytes), op.i32LtU, op.brIf, 1,
    ...steps, ...advance(bytes), op.br, 0,
    ...op.end, ...op.end,
  ];
  const body = [
    ...get(0), ...get(2), op.i32Add, ...set(3),
    ...run(64, [...step(0), ...step(16), ...step(32), ...step(48)]),
    ...run(16, step(0)),
    ...op.end,
  ];
  return [...vec([[1, I32]]), ...body];
}

function outsideKernel(): number[] {
  // params: 0 src, 1 n, 2 bound; locals: 3 end (i32), 4 +bound, 5 −bound, 6 count, 7 v (v128)
  const body = [
    ...get(0), ...get(1), op.i32Add, ...set(3),
    ...get(2), ...simd(I32X4_SPLAT), ...set(4),
    op.i32Const, 0, ...get(2), op.i32Sub, ...simd(I32X4_SPLAT), ...set(5),
    ...op.block, ...get(0), ...get(3), op.i32GeU, op.brIf, 0,
    ...op.loop,
    ...get(6),
    ...get(0), ...v128Load(0), op.localTee, 7, ...get(4), ...simd(I32X4_GT_S),
    ...get(7), ...get(5), ...simd(I32X4_LT_S), ...simd(V128_OR),
    ...simd(I32X4_SUB), ...set(6), // a true lane is −1: count − (−1)
    ...get(0), op.i32Const, ...sleb(16), op.i32Add, ...set(0),
    ...get(0), ...get(3), op.i32LtU, op.brIf, 0,
    ...op.end,
    ...op.end,
    ...get(6), ...simd(I32X4_EXTRACT), 0, ...get(6), ...simd(I32X4_EXTRACT), 1, op.i32Add,
    ...get(6), ...simd(I32X4_EXTRACT), 2, op.i32Add, ...get(6), ...simd(I32X4_EXTRACT), 3, op.i32Add,
    ...op.end,
  ];
  return [...vec([[1, I32], [4, V128]]), ...body];
}

function assemble(): Uint8Array {
  const fn = (bodyWithLocals: number[]): number[] => [...uleb(bodyWithLocals.length), ...bodyWithLocals];
  const typeSec = vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([])], [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])]]);
  const funcSec = vec([[0], [0], [1]]);
  const memSec = vec([[0x00, 1]]); // one memory, min 1 page, grown by the caller
  const exportSec = vec([[...name('mem'), 0x02, 0], [...name('add'), 0x00, 0], [...name('sub'), 0x00, 1], [...name('outside'), 0x00, 2]]);
  const codeSec = vec([fn(binaryKernel(I32X4_ADD)), fn(binaryKernel(I32X4_SUB)), fn(outsideKernel())]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, typeSec), ...section(3, funcSec), ...section(5, memSec), ...section(7, exportSec), ...section(10, codeSec),
  ]);
}

// The project compiles without the DOM lib, where the WebAssembly declarations live: the few members used.
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

export interface Kernels {
  readonly memory: WasmMemory;
  add(dst: number, src: number, n: number): void;
  sub(dst: number, src: number, n: number): void;
  outside(src: number, n: number, bound: number): number;
}

let kernels: Kernels | undefined;

/** The compiled kernels (one instance per thread, compiled on first use, ≈ 1 ms). */
export function simdKernels(): Kernels {
  if (!kernels) {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
    const e = inst.exports as unknown as { mem: WasmMemory; add: Kernels['add']; sub: Kernels['sub']; outside: Kernels['outside'] };
    kernels = { memory: e.mem, add: e.add, sub: e.sub, outside: e.outside };
  }
  return kernels;
}

/** Grows the kernels' memory to at least `bytes`; returns its current buffer (views must be re-made after a grow). */
export function kernelMemory(bytes: number): ArrayBuffer {
  const k = simdKernels();
  const have = k.memory.buffer.byteLength;
  if (have < bytes) k.memory.grow(Math.ceil((bytes - have) / 65536));
  return k.memory.buffer;
}
