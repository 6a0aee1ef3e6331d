import * as tf from '@tensorflow/tfjs-core';
import { createRng, createTwinVae, initBackend } from './src/index.ts';
import { getVaeCore } from './src/vae.ts';
import { forwardBackward, paramGrads, perExampleSqNormsJs } from './src/vae-grad.ts';
import type { Segment } from './src/index.ts';
await initBackend('wasm');
const F = 30, H = 128, Z = 16, C = 2;
const segments: Segment[] = Array.from({ length: F }, (_, j) => ({ column: `f${j}`, kind: 'numeric', offset: j, width: 1 }));
const m = createTwinVae({ width: F, segments, classes: ['a','b'] as unknown as number, latentDim: Z, hidden: H, seed: 1 } as never);
const core = getVaeCore(m);
const rng = createRng(1);
const mk = (rows: number) => ({
  x: tf.tensor2d(Float32Array.from({ length: rows * F }, () => rng.uniform()), [rows, F]),
  y: tf.tensor2d(Float32Array.from({ length: rows * C }, (_, i) => (i % 2)), [rows, C]),
  e: tf.tensor2d(Float32Array.from({ length: rows * Z }, () => rng.normal()), [rows, Z]),
});
const T: Record<string, number> = {};
const t = (k: string, f: () => void) => { const s = performance.now(); f(); T[k] = (T[k] ?? 0) + performance.now() - s; };
const N = 400;
for (let it = 0; it < N + 50; it++) {
  if (it === 50) for (const k in T) T[k] = 0;
  const rows = process.env.FIXED ? 64 : 64 + (it % 2 ? 0 : (it % 7) - 3) * 2;
  const { x, y, e } = mk(rows);
  tf.tidy(() => {
    let fb!: ReturnType<typeof forwardBackward>;
    t('fb', () => { fb = forwardBackward(core, x, y, e, 1); });
    let g!: Record<string, tf.Tensor>;
    t('pg-plain', () => { g = paramGrads(core, fb); for (const v of Object.values(g)) v.dataSync(); });
    let sq!: Float64Array;
    t('norms-js', () => { sq = perExampleSqNormsJs(core, fb); });
    let s!: tf.Tensor2D;
    t('s-upload', () => { const a = new Float32Array(sq.length); for (let i=0;i<a.length;i++) a[i]=Math.min(1, 1/Math.sqrt(sq[i])); s = tf.tensor2d(a, [a.length, 1]); });
    t('pg-dp', () => { g = paramGrads(core, fb, s); for (const v of Object.values(g)) v.dataSync(); });
  });
  tf.dispose([x, y, e]);
  const buf = new Float32Array(core.vars.reduce((a, v) => a + v.size, 0));
  t('noise', () => rng.normals(buf));
}
for (const k in T) console.log(k.padEnd(10), (T[k] / N).toFixed(3), 'ms');
console.log('params', core.vars.reduce((a, v) => a + v.size, 0));
