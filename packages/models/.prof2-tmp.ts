import { createRng } from './src/rng.ts';
import { createRng as createOld } from './.rng-orig-tmp.ts';
const n = createRng(1), o = createOld(1);
const buf = new Float32Array(48446);
const best = { new: 1e9, old: 1e9 };
for (let k = 0; k < 40; k++) {
  for (const [name, r] of [['new', n], ['old', o]] as const) {
    const s = performance.now();
    for (let i = 0; i < 20; i++) r.normals(buf);
    best[name] = Math.min(best[name], (performance.now() - s) / 20);
  }
}
console.log(best);
