import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHeContext, generateKeys } from '../src/index.ts';
import type { HeContext, HeSecretKey } from '../src/index.ts';
import { addFreshNoise, aStream, aStreamKey, expandA, memberSecret } from '../src/mask.ts';

let ctx: HeContext;
let key: HeSecretKey;
beforeAll(async () => {
  ctx = await createHeContext();
  key = generateKeys(ctx);
});
afterAll(() => ctx.dispose());

describe('masks', () => {
  it('fresh noise is SEAL\'s centred binomial: mean 0, variance 10.5, |e| ≤ 21', () => {
    const n = 1 << 20;
    const e = new Float64Array(n);
    addFreshNoise(e, n);
    let sum = 0, sq = 0, max = 0;
    for (const v of e) { sum += v; sq += v * v; max = Math.max(max, Math.abs(v)); }
    const mean = sum / n;
    expect(Number.isInteger(e[123])).toBe(true);
    expect(Math.abs(mean)).toBeLessThan(0.02); // sd of the mean: 3.24/1024
    expect(Math.abs(sq / n - mean * mean - 10.5)).toBeLessThan(0.15);
    expect(max).toBeLessThanOrEqual(21);
    expect(max).toBeGreaterThanOrEqual(14); // P(|e| ≥ 14) ≈ 2e-5 per draw: seen in 1M draws
  });

  it('member secrets are uniform ternary, deterministic per (key, member, nonce), and differ between members, nonces and keys', () => {
    const n1 = new Uint8Array(16).fill(1);
    const n2 = new Uint8Array(16).fill(2);
    const a = memberSecret(ctx, key, 'alice', n1);
    expect(Array.from(memberSecret(ctx, key, 'alice', n1))).toEqual(Array.from(a));
    const counts = [0, 0, 0];
    for (const v of a) counts[v + 1]++;
    for (const c of counts) expect(Math.abs(c - 4096 / 3)).toBeLessThan(150); // ±5 sd
    const b = memberSecret(ctx, key, 'bob', n1);
    const other = memberSecret(ctx, generateKeys(ctx), 'alice', n1);
    const again = memberSecret(ctx, key, 'alice', n2); // the same member's next encryption
    const same = (x: Int8Array, y: Int8Array) => x.filter((v, i) => v === y[i]).length;
    expect(same(a, b)).toBeLessThan(1600); // independent: ~1365 agree
    expect(same(a, other)).toBeLessThan(1600);
    expect(same(a, again)).toBeLessThan(1600);
    expect(() => memberSecret(ctx, key, 'alice', new Uint8Array(15))).toThrow(/nonce/);
  });

  it('the round\'s a is below q, the same from a stream or chunk by chunk, and differs per chunk and tag', () => {
    const n = ctx.slotCount;
    const k = aStreamKey(ctx, new Uint8Array(32).fill(1));
    const [qLo, qHi] = ctx.qWords;
    const viaStream = new Uint32Array(6 * n);
    const s = aStream(ctx, k, 5);
    expandA(ctx, k, 5, 2, viaStream, s);
    expandA(ctx, k, 7, 1, viaStream.subarray(4 * n), s);
    const one = new Uint32Array(2 * n);
    for (const c of [5, 6, 7]) {
      expandA(ctx, k, c, 1, one);
      expect(Buffer.from(one.buffer).equals(Buffer.from(viaStream.buffer, (c - 5) * 8 * n, 8 * n))).toBe(true);
    }
    for (let i = 0; i < 3 * n; i++) {
      const hi = viaStream[2 * i + 1];
      expect(hi < qHi || (hi === qHi && viaStream[2 * i] < qLo)).toBe(true);
    }
    expect(Buffer.from(viaStream.buffer, 0, 8 * n).equals(Buffer.from(viaStream.buffer, 8 * n, 8 * n))).toBe(false);
    const otherTag = new Uint32Array(2 * n);
    expandA(ctx, aStreamKey(ctx, new Uint8Array(32).fill(2)), 5, 1, otherTag);
    expect(Buffer.from(otherTag.buffer).equals(Buffer.from(viaStream.buffer, 0, 8 * n))).toBe(false);
    expect(() => s.next(9, 1)).toThrow(); // a stream only moves forward, chunk by chunk
  });
});
