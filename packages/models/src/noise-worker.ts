// Fills the shared noise ring (see noise.ts) with N(0, 1) draws from the OS CSPRNG, one slot at a time,
// in order; blocks while the next slot is still held by the training thread.
import { workerData } from 'node:worker_threads';
import { normalsFrom } from './rng.ts';
import { osRandomU32 } from './noise.ts';

const { sab, n, slots } = workerData as { sab: SharedArrayBuffer; n: number; slots: number };
const ctrl = new Int32Array(sab, slots * n * 4, slots + 1);
const bufs = Array.from({ length: slots }, (_, i) => new Float32Array(sab, i * n * 4, n));
const u32 = osRandomU32();
for (let i = 0; Atomics.load(ctrl, slots) === 0; i = (i + 1) % slots) {
  while (Atomics.load(ctrl, i) === 1) {
    Atomics.wait(ctrl, i, 1);
    if (Atomics.load(ctrl, slots) !== 0) process.exit(0);
  }
  normalsFrom(u32, bufs[i]);
  Atomics.store(ctrl, i, 1);
  Atomics.notify(ctrl, i);
}
