import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createHePool, decryptSumIntegers, encryptVector, generateKeys, quantize, Accumulator } from '../src/index.ts';
import type { HePool, HeSecretKey } from '../src/index.ts';

let pool: HePool;
let key: HeSecretKey;
const freshTag = (): Uint8Array => new Uint8Array(randomBytes(32));

beforeAll(async () => {
  pool = await createHePool({ threads: 2, params: { maxParticipants: 64 } });
  key = generateKeys(pool.ctx);
});
afterAll(async () => {
  await pool?.close();
});

describe('worker pool', () => {
  it('encrypts in workers with the same quantization as one thread; sums decrypt exactly on either', async () => {
    const ctx = pool.ctx;
    const n = 3 * ctx.slotCount + 123; // uneven split across the two workers
    const tag = freshTag();
    const names = ['a', 'b', 'c'];
    const xs = [0, 1, 2].map((s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * (s + 1)) * 1.1));
    const acc = new Accumulator(ctx);
    const expected = new Int32Array(n);
    let clipped = 0;
    for (let s = 0; s < xs.length; s++) {
      // the last one on this thread: pooled and single-thread ciphertexts add together
      const r = s < 2 ? await pool.encrypt(key, xs[s], { member: names[s], tag, seed: 100 + s }) : encryptVector(ctx, key, xs[s], { member: names[s], tag, seed: 100 + s });
      clipped += r.clipped;
      acc.add(r.update);
      const q = quantize(xs[s], { scale: ctx.scale, clip: ctx.params.clip, seed: 100 + s });
      for (let i = 0; i < n; i++) expected[i] += q.values[i];
    }
    expect(clipped).toBe(xs.reduce((a, x) => a + x.filter((v) => Math.abs(v) > 1).length, 0));
    expect(acc.addends).toBe(3);
    const sum = acc.result();
    acc.dispose();
    expect(Array.from(decryptSumIntegers(ctx, key, sum, names).values)).toEqual(Array.from(expected));
    const pooled = await pool.decryptIntegers(key, sum, names);
    expect(Array.from(pooled.values)).toEqual(Array.from(expected));
    const real = await pool.decrypt(key, sum, names, n);
    expect(real[5]).toBeCloseTo(expected[5] / ctx.scale, 12);
    await expect(pool.decryptIntegers(key, sum, ['a', 'b'])).rejects.toMatchObject({ code: 'HE_PARTICIPANTS_MISMATCH' });
    await expect(pool.decryptIntegers(key, sum, ['a', 'b', 'd'])).rejects.toMatchObject({ code: 'HE_PARTICIPANTS_MISMATCH' });
  });

  it('offline phase: prepared masks give the same exact sums, are used once, and only under their key and tag', async () => {
    const ctx = pool.ctx;
    const n = 2 * ctx.slotCount + 77;
    const names = ['p', 'q', 'r'];
    const tag = freshTag();
    expect(await pool.prepare(key, n, { member: 'p', tag, sum: true })).toBe(3);
    expect(await pool.prepare(key, n, { member: 'p', tag, sum: true })).toBe(3); // idempotent
    // prepared under another key and another tag: never used for this one (the exact sum below would break)
    const other = generateKeys(ctx);
    await pool.prepare(other, n, { member: 'q', tag, sum: true });
    await pool.prepare(key, n, { member: 'q', tag: freshTag(), sum: true });
    const x = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.8);
    const acc = new Accumulator(ctx);
    for (const m of names) acc.add((await pool.encrypt(key, x, { member: m, tag, seed: 7 })).update);
    // a used mask is gone: encrypting again under the tag is refused on this pool (a fresh nonce would keep the
    // masks apart, but a member sends one update a round)
    await expect(pool.encrypt(key, x, { member: 'p', tag })).rejects.toMatchObject({ code: 'HE_TAG_REUSED' });
    // prepared masks are consumed by the first encryption
    expect(await pool.prepare(key, n, { member: 'p', tag })).toBe(0);
    const q = quantize(x, { scale: ctx.scale, clip: ctx.params.clip, seed: 7 }).values;
    const sum = acc.result();
    acc.dispose();
    // decryption with the prepared masks (participants as prepared) and without (another order, same set)
    const got = await pool.decryptIntegers(key, sum, names);
    expect(Array.from(got.values)).toEqual(Array.from(q, (v) => 3 * v));
    const again = await pool.decryptIntegers(key, sum, [...names].reverse());
    expect(Array.from(again.values)).toEqual(Array.from(got.values));
    await expect(pool.prepare(key, 0, { member: 'p', tag })).rejects.toMatchObject({ code: 'HE_BAD_ARGUMENT' });
    await expect(pool.prepare(key, n, { member: '', tag })).rejects.toMatchObject({ code: 'HE_BAD_ARGUMENT' });
    await expect(pool.prepare(key, n, { member: 'p', tag: new Uint8Array(5) })).rejects.toMatchObject({ code: 'HE_BAD_ARGUMENT' });
  });
});
