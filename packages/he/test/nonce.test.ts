// Issue 12 item 3: a fresh nonce per encryption enters the member's secret, so two encryptions by one member
// under one round tag (a restart that lost every record of the first) never share a mask.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  Accumulator, CHUNK_HEADER_BYTES, createHeContext, decryptSumIntegers, encryptVector, generateKeys, chunkSize, KIND_FRESH, readUpdateHeader,
} from '../src/index.ts';
import { unpackNumbers } from '../src/bits.ts';
import { code } from './helpers.ts';
import type { HeContext, HeSecretKey } from '../src/index.ts';

let ctx: HeContext;
let restarted: HeContext; // the same member after a crash that lost its state: a fresh HE context (no worker memory)
let key: HeSecretKey;

beforeAll(async () => {
  ctx = await createHeContext({ maxParticipants: 64 });
  restarted = await createHeContext({ maxParticipants: 64 });
  key = generateKeys(ctx);
});
afterAll(() => {
  ctx.dispose();
  restarted.dispose();
});

/** The fresh update's c0 coefficients as numbers in [0, q) (the dropped low bits at zero). */
function c0Of(c: HeContext, update: Uint8Array): Float64Array {
  const h = readUpdateHeader(c, update);
  const size = chunkSize(c, KIND_FRESH);
  const first = update.length - h.chunkCount * size; // the chunks close the container, whatever precedes them
  const out = new Float64Array(h.chunkCount * c.slotCount);
  for (let i = 0; i < h.chunkCount; i++) unpackNumbers(update, first + i * size + CHUNK_HEADER_BYTES, c.slotCount, c.c0Bits, out, i * c.slotCount, false);
  const d = 2 ** c.params.c0DropBits;
  for (let i = 0; i < out.length; i++) out[i] *= d;
  return out;
}

describe('per-encryption nonce', () => {
  it('two encryptions of different updates by one member under one tag (state lost in between) do not give the aggregator m − m\'', () => {
    const n = 2 * ctx.slotCount;
    const tag = new Uint8Array(randomBytes(32));
    const m = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 20001) - 10000);
    const m2 = Int32Array.from({ length: n }, (_, i) => ((i * 104729) % 20001) - 10000);
    const a = encryptVector(ctx, key, m, { member: 'site-a', tag }).update;
    const b = encryptVector(restarted, key, m2, { member: 'site-a', tag }).update;
    // The aggregator's attack: c0 − c0' = −a·(s − s') + Δ(m − m') + (e − e'); with a shared secret the first term vanishes.
    const q = Number(ctx.q);
    const t = Number(ctx.t);
    const ca = c0Of(ctx, a);
    const cb = c0Of(ctx, b);
    let recovered = 0;
    const bins = new Array(16).fill(0);
    for (let i = 0; i < n; i++) {
      let d = ca[i] - cb[i];
      if (d < 0) d += q;
      bins[Math.floor((d / q) * 16)]++;
      let v = Math.round((d * t) / q) % t;
      if (v > (t - 1) / 2) v -= t;
      if (v === m[i] - m2[i]) recovered++;
    }
    // garbage: about n·(2·10^4/t) ≈ 1 coincidence expected, never a real share of the coefficients
    expect(recovered).toBeLessThan(n / 100);
    // and uniform over [0, q): each of 16 bins holds n/16 = 512 ± a few σ (σ ≈ 22)
    for (const c of bins) expect(Math.abs(c - n / 16)).toBeLessThan(150);
    // each still decrypts, as its own member with its own nonce
    expect(Array.from(decryptSumIntegers(ctx, key, a, ['site-a']).values)).toEqual(Array.from(m));
    expect(Array.from(decryptSumIntegers(ctx, key, b, ['site-a']).values)).toEqual(Array.from(m2));
  });

  it('a reused nonce would bring the leak back: the nonce, not the claims file, is what separates the masks', () => {
    const n = ctx.slotCount;
    const tag = new Uint8Array(randomBytes(32));
    const nonce = new Uint8Array(randomBytes(16));
    const m = Int32Array.from({ length: n }, (_, i) => (i % 200) - 100);
    const m2 = new Int32Array(n);
    const a = encryptVector(ctx, key, m, { member: 'site-b', tag, nonce }).update;
    const b = encryptVector(restarted, key, m2, { member: 'site-b', tag, nonce }).update;
    const q = Number(ctx.q);
    const t = Number(ctx.t);
    const ca = c0Of(ctx, a);
    const cb = c0Of(ctx, b);
    let recovered = 0;
    for (let i = 0; i < n; i++) {
      let d = ca[i] - cb[i];
      if (d < 0) d += q;
      let v = Math.round((d * t) / q) % t;
      if (v > (t - 1) / 2) v -= t;
      if (v === m[i]) recovered++;
    }
    expect(recovered).toBe(n);
  });

  it('the sum lists (member, nonce) per addend; decryption refuses a participant list that is not exactly it', () => {
    const tag = new Uint8Array(randomBytes(32));
    const acc = new Accumulator(ctx);
    const x = Int32Array.from({ length: 100 }, (_, i) => i - 50);
    for (const m of ['p', 'q', 'r']) acc.add(encryptVector(ctx, key, x, { member: m, tag }).update);
    // the same member twice (even with another nonce) is refused by the accumulator
    expect(code(() => acc.add(encryptVector(restarted, key, x, { member: 'q', tag }).update))).toBe('HE_DUPLICATE_MEMBER');
    const sum = acc.result();
    acc.dispose();
    expect(readUpdateHeader(ctx, sum).entries.length).toBe(3);
    expect(Array.from(decryptSumIntegers(ctx, key, sum, ['r', 'p', 'q']).values)).toEqual(Array.from(x, (v) => 3 * v));
    for (const wrong of [['p', 'q'], ['p', 'q', 's'], ['p', 'q', 'r', 's'], ['p', 'p', 'q']]) {
      expect([wrong, code(() => decryptSumIntegers(ctx, key, sum, wrong))]).toEqual([wrong, 'HE_PARTICIPANTS_MISMATCH']);
    }
  });
});
