import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHePool, decryptSumIntegers, encryptVector, generateKeys, quantize, Accumulator, CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES, chunkSize, KIND_FRESH } from '../src/index.ts';
import type { HePool, HeSecretKey } from '../src/index.ts';

let pool: HePool;
let key: HeSecretKey;

beforeAll(async () => {
  pool = await createHePool({ threads: 2, params: { maxParticipants: 64 } });
  key = generateKeys(pool.ctx);
});
afterAll(async () => {
  await pool?.close();
});

describe('worker pool', () => {
  it('encrypts in workers with the same quantization as one thread, and sums across workers exactly', async () => {
    const ctx = pool.ctx;
    const n = 3 * ctx.slotCount + 123; // uneven split across the two workers
    const xs = [0, 1, 2].map((s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * (s + 1)) * 1.1));
    const acc = pool.createAccumulator();
    const expected = new Int32Array(n);
    let clipped = 0;
    for (let s = 0; s < xs.length; s++) {
      const r = await pool.encrypt(key, xs[s], { seed: 100 + s });
      clipped += r.clipped;
      await acc.add(r.update);
      const q = quantize(xs[s], { scale: ctx.scale, clip: ctx.params.clip, seed: 100 + s });
      for (let i = 0; i < n; i++) expected[i] += q.values[i];
    }
    expect(clipped).toBe(xs.reduce((a, x) => a + x.filter((v) => Math.abs(v) > 1).length, 0));
    expect(acc.addends).toBe(3);
    const sum = await acc.result();
    // same result decrypted on this thread and in the workers
    expect(Array.from(decryptSumIntegers(ctx, key, sum).values)).toEqual(Array.from(expected));
    const pooled = await pool.decryptIntegers(key, sum);
    expect(Array.from(pooled.values)).toEqual(Array.from(expected));
    const real = await pool.decrypt(key, sum, n);
    expect(real[5]).toBeCloseTo(expected[5] / ctx.scale, 12);
    // a pooled sum and a single-thread accumulator interoperate (tree aggregation)
    const local = new Accumulator(ctx);
    local.add(sum);
    local.add(encryptVector(ctx, key, xs[0], { seed: 100 }).update);
    const q0 = quantize(xs[0], { scale: ctx.scale, clip: 1, seed: 100 }).values;
    const both = decryptSumIntegers(ctx, key, local.result()).values;
    expect(both[n - 1]).toBe(expected[n - 1] + q0[n - 1]);
    local.dispose();
    await acc.dispose();
  });

  it('offline phase: prepared encryptions of zero are used once, only under their key, and sums stay exact', async () => {
    const ctx = pool.ctx;
    const n = 2 * ctx.slotCount + 77;
    const chunks = 3;
    expect(await pool.prepare(key, n)).toBe(chunks);
    expect(await pool.prepare(key, n)).toBe(chunks); // idempotent: tops up to what one update needs
    const x = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.8);
    const a = await pool.encrypt(key, x, { seed: 7 }); // uses the prepared ones
    const b = await pool.encrypt(key, x, { seed: 7 }); // none left: fresh ones
    const seedOf = (u: Uint8Array, c: number) => {
      const end = UPDATE_HEADER_BYTES + (c + 1) * chunkSize(ctx, KIND_FRESH);
      return Buffer.from(u.subarray(end - 64, end)).toString('hex');
    };
    const seeds = new Set([a.update, b.update].flatMap((u) => [0, 1, 2].map((c) => seedOf(u, c))));
    expect(seeds.size).toBe(2 * chunks); // no encryption randomness reused
    expect(Buffer.compare(a.update.subarray(UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES + 64), b.update.subarray(UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES + 64))).not.toBe(0);
    // prepared under another key: discarded, never used for this one
    const other = generateKeys(ctx);
    await pool.prepare(other, n);
    const c = await pool.encrypt(key, x, { seed: 7 }); // must not take the other key's: the exact sum below would break
    const acc = pool.createAccumulator();
    for (const u of [a, b, c]) await acc.add(u.update);
    const q = quantize(x, { scale: ctx.scale, clip: ctx.params.clip, seed: 7 }).values;
    const got = await pool.decryptIntegers(key, await acc.result({ compact: true }));
    expect(Array.from(got.values)).toEqual(Array.from(q, (v) => 3 * v));
    await acc.dispose();
    await expect(pool.prepare(key, 0)).rejects.toMatchObject({ code: 'HE_BAD_ARGUMENT' });
  });

  it('rejects a malformed update in the pooled accumulator without changing the sum', async () => {
    const acc = pool.createAccumulator();
    const x = new Float32Array(2 * pool.ctx.slotCount).fill(0.25);
    const good = (await pool.encrypt(key, x)).update;
    await acc.add(good);
    const sum = await acc.result();
    const forged = sum.slice();
    forged.fill(0xff, forged.length - 8); // last c1 coefficient ≥ q, in the second worker's range
    await expect(acc.add(forged)).rejects.toMatchObject({ code: 'HE_MALFORMED_CIPHERTEXT' });
    await expect(acc.add(good.subarray(1))).rejects.toMatchObject({ code: 'HE_MALFORMED_CIPHERTEXT' });
    // a fresh update whose last chunk names another seed PRNG: refused before any chunk is added
    const badPrng = good.slice();
    badPrng[badPrng.length - 65] = 2;
    await expect(acc.add(badPrng)).rejects.toMatchObject({ code: 'HE_MALFORMED_CIPHERTEXT' });
    expect(acc.addends).toBe(1);
    await acc.add(good);
    const v = (await pool.decryptIntegers(key, await acc.result())).values;
    expect(Math.abs(v[x.length - 1] - 0.5 * pool.ctx.scale)).toBeLessThanOrEqual(2);
    await acc.dispose();
  });
});
