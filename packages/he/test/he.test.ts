import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Accumulator, CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES, createHeContext, decryptSum, decryptSumIntegers, deserializeSecretKey,
  encryptVector, generateKeys, loadSecretKeyFile, quantize, saveSecretKeyFile, serializeSecretKey, validateCiphertext, chunkSize,
  KIND_FRESH, KIND_SUM_COMPACT, updateSize, compactSumDropBits, roundTag, updateHeaderSize, PARTICIPANT_ENTRY_BYTES,
} from '../src/index.ts';
import { randomBytes } from 'node:crypto';
import { code } from './helpers.ts';
import type { HeContext, HeSecretKey } from '../src/index.ts';


let ctx: HeContext;
let key: HeSecretKey;

beforeAll(async () => {
  ctx = await createHeContext();
  key = generateKeys(ctx);
});
afterAll(() => ctx.dispose());

describe('parameters', () => {
  it('chooses N=4096, a 60-bit q, a t with headroom for 1024 members, and the largest safe c0 drop', () => {
    expect(ctx.params).toMatchObject({ polyModulusDegree: 4096, coeffModulusBits: 60, quantBits: 16, maxParticipants: 1024, c0DropBits: 20 });
    expect(ctx.qBits).toBe(60);
    expect(ctx.c0Bits).toBe(40);
    expect((ctx.t - 1n) / 2n >= 1024n * 32767n).toBe(true);
    expect(ctx.t % 8192n).toBe(1n); // batching prime
  });

  it('rejects insecure or impossible parameters with HE_BAD_PARAMS', async () => {
    await expect(createHeContext({ coeffModulusBits: 61 })).rejects.toMatchObject({ code: 'HE_BAD_PARAMS' });
    await expect(createHeContext({ c0DropBits: 30 })).rejects.toMatchObject({ code: 'HE_BAD_PARAMS' });
    await expect(createHeContext({ coeffModulusBits: 40 })).rejects.toMatchObject({ code: 'HE_BAD_PARAMS' });
    await expect(createHeContext({ clip: -1 })).rejects.toMatchObject({ code: 'HE_BAD_PARAMS' });
  });
});

/** A fresh random round tag (each test round encrypts under its own). */
const freshTag = (): Uint8Array => new Uint8Array(randomBytes(32));
const enc = (c: HeContext, k: HeSecretKey, x: Float32Array | Int32Array, member: string, tag: Uint8Array, seed?: number) =>
  encryptVector(c, k, x, { member, tag, ...(seed !== undefined ? { seed } : {}) });

describe('exact sums', () => {
  it('decrypts to exactly the sum of the quantized integers (property: random updates, consortium sizes, lengths)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9000 }), fc.nat(), fc.boolean(),
      (members, length, seed, asInts) => {
        const acc = new Accumulator(ctx);
        const tag = freshTag();
        const names = Array.from({ length: members }, (_, m) => `member-${seed}-${m}`);
        const expected = new Int32Array(length);
        let s = seed;
        const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
        for (let m = 0; m < members; m++) {
          let ints: Int32Array;
          if (asInts) {
            ints = Int32Array.from({ length }, () => Math.round((rnd() * 2 - 1) * ctx.quantMax));
            acc.add(enc(ctx, key, ints, names[m], tag).update);
          } else {
            const x = Float32Array.from({ length }, () => (rnd() * 2.4 - 1.2) * ctx.params.clip);
            ints = quantize(x, { scale: ctx.scale, clip: ctx.params.clip, seed: seed + m }).values;
            const r = enc(ctx, key, x, names[m], tag, seed + m);
            expect(r.clipped).toBe(x.filter((v) => Math.abs(v) > ctx.params.clip).length);
            acc.add(r.update);
          }
          for (let i = 0; i < length; i++) expected[i] += ints[i];
        }
        const sum = acc.result();
        acc.dispose();
        const got = decryptSumIntegers(ctx, key, sum, [...names].reverse()); // the order of participants does not matter
        expect(got.addends).toBe(members);
        expect(Array.from(got.values)).toEqual(Array.from(expected));
      },
    ), { numRuns: 6 });
  });

  it('has headroom and noise room for the largest allowed consortium at extreme values', () => {
    // 1024 members, each ±qmax in every slot: the sum reaches ±1024·qmax and the most noise the bound allows for.
    const n = ctx.slotCount;
    const qmax = ctx.quantMax;
    const tag = freshTag();
    const pos = new Int32Array(n).fill(qmax);
    const alt = Int32Array.from({ length: n }, (_, i) => (i % 2 ? qmax : -qmax));
    const names = Array.from({ length: 1024 }, (_, i) => `m${i}`);
    const acc = new Accumulator(ctx);
    for (let i = 0; i < 1024; i++) acc.add(enc(ctx, key, i % 4 === 3 ? alt : pos, names[i], tag).update);
    expect(acc.addends).toBe(1024);
    const got = decryptSumIntegers(ctx, key, acc.result(), names).values;
    expect(got[0]).toBe(768 * qmax + 256 * -qmax);
    expect(got[1]).toBe(1024 * qmax);
    expect(got[n - 1]).toBe(1024 * qmax);
    expect(code(() => acc.add(enc(ctx, key, pos, 'one-too-many', tag).update))).toBe('HE_HEADROOM_EXCEEDED');
    acc.dispose();
  });

  it('compact sums: c0 only, rounded within the noise left by their addends, smaller than float32, exact, and final', () => {
    // 10 addends: 30-bit c0 (docs/he.md §3); 1024: 31-bit
    expect(compactSumDropBits(ctx.q, ctx.t, ctx.params.c0DropBits, 10)).toBe(30);
    expect(compactSumDropBits(ctx.q, ctx.t, ctx.params.c0DropBits, 1024)).toBe(29);
    // wire v4: a 32-byte participant row (member hash, nonce) per addend after the 84-byte header
    expect(updateSize(ctx, KIND_SUM_COMPACT, 1_000_000, 10)).toBe(UPDATE_HEADER_BYTES + 10 * 32 + 245 * (52 + (4096 * 30) / 8)); // 3.78 B/value
    expect(updateSize(ctx, KIND_FRESH, 1_000_000)).toBe(UPDATE_HEADER_BYTES + 32 + 245 * (52 + (4096 * 40) / 8)); // 5.03 B/value
    expect(updateSize(ctx, KIND_SUM_COMPACT, 1000)).toBe(updateSize(ctx, KIND_SUM_COMPACT, 1000, 1024)); // the cap: the largest
    const x = Int32Array.from({ length: 3000 }, (_, i) => ((i * 7919) % (2 * ctx.quantMax + 1)) - ctx.quantMax);
    const tag = freshTag();
    const acc = new Accumulator(ctx);
    for (let k = 0; k < 5; k++) acc.add(enc(ctx, key, x, `m${k}`, tag).update);
    const sum = acc.result();
    expect(validateCiphertext(ctx, sum)).toMatchObject({ kind: KIND_SUM_COMPACT, addends: 5 });
    expect(Buffer.from(validateCiphertext(ctx, sum).tag).equals(Buffer.from(tag))).toBe(true);
    expect(Array.from(decryptSumIntegers(ctx, key, sum, ['m0', 'm1', 'm2', 'm3', 'm4']).values)).toEqual(Array.from(x, (v) => 5 * v));
    // final: no accumulator accepts it, and the running sum is unchanged
    expect(code(() => acc.add(sum))).toBe('HE_SUM_FINAL');
    expect(acc.addends).toBe(5);
    acc.dispose();
  });

  it('rejects a malformed compact sum: truncated, or a size that disagrees with its addends', () => {
    const a = new Accumulator(ctx);
    a.add(enc(ctx, key, new Int32Array(100).fill(3), 'm', freshTag()).update);
    const compact = a.result();
    expect(code(() => validateCiphertext(ctx, compact.subarray(0, compact.length - 1)))).toBe('HE_MALFORMED_CIPHERTEXT');
    const wrongAddends = compact.slice();
    new DataView(wrongAddends.buffer).setUint32(48, 2, true); // the header's addends change the expected size
    expect(code(() => validateCiphertext(ctx, wrongAddends))).toBe('HE_MALFORMED_CIPHERTEXT');
    a.dispose();
  });

  it('decrypts real values within K / scale of the float sum, and a single fresh update too', () => {
    const x = Float32Array.from({ length: 5000 }, (_, i) => Math.cos(i) * 0.7);
    const tag = freshTag();
    const acc = new Accumulator(ctx);
    acc.add(enc(ctx, key, x, 'a', tag).update);
    acc.add(enc(ctx, key, x, 'b', tag).update);
    const sum = decryptSum(ctx, key, acc.result(), ['a', 'b'], 5000);
    for (let i = 0; i < x.length; i++) expect(Math.abs(sum[i] - 2 * x[i])).toBeLessThanOrEqual(2 / ctx.scale + 1e-12);
    const single = decryptSum(ctx, key, enc(ctx, key, x, 'c', tag).update, ['c']);
    expect(Math.abs(single[17] - x[17])).toBeLessThanOrEqual(1 / ctx.scale + 1e-12);
    acc.dispose();
  });
});

describe('round-common mask', () => {
  it('makes missing masks in bounded batches: a 70-chunk vector (past one batch) sums and decrypts exactly', () => {
    const n = 70 * ctx.slotCount - 5;
    const tag = freshTag();
    const x = Int32Array.from({ length: n }, (_, i) => (i % 2001) - 1000);
    const acc = new Accumulator(ctx);
    acc.add(enc(ctx, key, x, 'big-a', tag).update);
    acc.add(enc(ctx, key, x, 'big-b', tag).update);
    const got = decryptSumIntegers(ctx, key, acc.result(), ['big-a', 'big-b']).values;
    acc.dispose();
    expect(got.length).toBe(n);
    for (const i of [0, 64 * ctx.slotCount - 1, 64 * ctx.slotCount, n - 1]) expect(got[i]).toBe(2 * x[i]);
    expect(got.every((v, i) => v === 2 * x[i])).toBe(true);
  });

  it('refuses a second encryption by one member under one round tag (it would reveal the difference)', () => {
    const tag = freshTag();
    enc(ctx, key, new Int32Array(10).fill(1), 'once', tag);
    expect(code(() => enc(ctx, key, new Int32Array(10).fill(2), 'once', tag))).toBe('HE_TAG_REUSED');
    // another member, or another round, is fine
    expect(code(() => enc(ctx, key, new Int32Array(10).fill(2), 'other', tag))).toBeUndefined();
    expect(code(() => enc(ctx, key, new Int32Array(10).fill(2), 'once', freshTag()))).toBeUndefined();
  });

  it('adds only updates of one round tag', () => {
    const acc = new Accumulator(ctx);
    acc.add(enc(ctx, key, new Int32Array(10), 'a', freshTag()).update);
    expect(code(() => acc.add(enc(ctx, key, new Int32Array(10), 'b', freshTag()).update))).toBe('HE_TAG_MISMATCH');
    expect(acc.addends).toBe(1);
    acc.dispose();
  });

  it('derives the round tag from key id, round and base model, and nothing else', () => {
    const t = roundTag({ keyId: key.keyId, round: 3, baseHash: 'ab' });
    expect(t.length).toBe(32);
    expect(Buffer.from(roundTag({ keyId: key.keyId, round: 3, baseHash: 'ab' })).equals(Buffer.from(t))).toBe(true);
    for (const other of [{ keyId: key.keyId, round: 4, baseHash: 'ab' }, { keyId: key.keyId, round: 3, baseHash: 'ac' }, { keyId: 'x' + key.keyId.slice(1), round: 3, baseHash: 'ab' }]) {
      expect(Buffer.from(roundTag(other)).equals(Buffer.from(t))).toBe(false);
    }
    expect(code(() => roundTag({ keyId: key.keyId, round: -1, baseHash: 'ab' }))).toBe('HE_BAD_ARGUMENT');
  });

  it('members\' ciphertexts of equal updates differ, and each member\'s secret is its own', () => {
    const tag = freshTag();
    const x = new Int32Array(4096).fill(7);
    const a = enc(ctx, key, x, 'alice', tag).update;
    const b = enc(ctx, key, x, 'bob', tag).update;
    const body = updateHeaderSize(1) + CHUNK_HEADER_BYTES;
    expect(Buffer.from(a.subarray(body)).equals(Buffer.from(b.subarray(body)))).toBe(false);
    // decrypting alice's update as bob's: its participant table names alice, so it is refused before any mask
    expect(code(() => decryptSumIntegers(ctx, key, a, ['bob']))).toBe('HE_PARTICIPANTS_MISMATCH');
    // and a table relabelled to bob (a lying aggregator) gives the wrong derived secret: the range check fails
    const relabelled = a.slice();
    relabelled.set(b.subarray(UPDATE_HEADER_BYTES, UPDATE_HEADER_BYTES + 16), UPDATE_HEADER_BYTES);
    expect(code(() => decryptSumIntegers(ctx, key, relabelled, ['bob']))).toBe('HE_DECRYPT_FAILED');
    // so does a wrong nonce
    const renonced = a.slice();
    renonced[UPDATE_HEADER_BYTES + 16] ^= 1;
    expect(code(() => decryptSumIntegers(ctx, key, renonced, ['alice']))).toBe('HE_DECRYPT_FAILED');
    expect(decryptSumIntegers(ctx, key, a, ['alice']).values[100]).toBe(7);
  });
});

describe('wire validation', () => {
  const fresh = (): Uint8Array => enc(ctx, key, Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i)), 'w', freshTag()).update;

  it('has the documented size: header + participant row + chunks of 52 + N·40/8 bytes', () => {
    const u = fresh();
    expect(UPDATE_HEADER_BYTES).toBe(84);
    expect(PARTICIPANT_ENTRY_BYTES).toBe(32);
    expect(chunkSize(ctx, KIND_FRESH)).toBe(CHUNK_HEADER_BYTES + 4096 * 5);
    expect(u.length).toBe(UPDATE_HEADER_BYTES + 32 + 2 * chunkSize(ctx, KIND_FRESH));
    expect(validateCiphertext(ctx, u)).toMatchObject({ kind: KIND_FRESH, valueCount: 5000, addends: 1 });
  });

  it('rejects truncated, extended, foreign-parameter, miscounted and out-of-range ciphertexts', async () => {
    const u = fresh();
    const mutate = (f: (b: Uint8Array, dv: DataView) => void): Uint8Array => {
      const b = u.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    const acc = new Accumulator(ctx);
    const bad: Record<string, Uint8Array> = {
      truncated: u.subarray(0, u.length - 1),
      headerOnly: u.subarray(0, 20),
      extended: Uint8Array.from([...u, 0]),
      badMagic: mutate((b) => { b[0] ^= 1; }),
      badVersion: mutate((b) => { b[4] = 3; }), // wire v3 (no participant table) is refused
      wrongParamsId: mutate((b) => { b[9] ^= 1; }),
      wrongChunkParamsId: mutate((b) => { b[updateHeaderSize(1) + 9] ^= 1; }),
      oversizedCount: mutate((_b, dv) => dv.setUint32(40, 0xffffffff, true)),
      countMismatch: mutate((_b, dv) => dv.setUint32(40, 9000, true)),
      chunkIndex: mutate((_b, dv) => dv.setUint32(updateHeaderSize(1) + 40, 1, true)),
      addends: mutate((_b, dv) => { dv.setUint32(48, 2, true); }),
      kind: mutate((b) => { b[5] = 9; }),
      retiredKind: mutate((b) => { b[5] = 2; }),
    };
    for (const [name, b] of Object.entries(bad)) {
      expect([name, code(() => validateCiphertext(ctx, b))]).toEqual([name, 'HE_MALFORMED_CIPHERTEXT']);
      expect([name, code(() => acc.add(b))]).toEqual([name, 'HE_MALFORMED_CIPHERTEXT']);
    }
    expect(acc.addends).toBe(0);
    const other = await createHeContext({ clip: 2 });
    expect(code(() => validateCiphertext(other, u))).toBe('HE_MALFORMED_CIPHERTEXT');
    other.dispose();
    acc.dispose();
  });

  it('range-checks c0 coefficients when the packed width allows values ≥ q, before adding anything', async () => {
    const c8 = await createHeContext({ c0DropBits: 8 });
    const k8 = generateKeys(c8);
    const tag = freshTag();
    const u = enc(c8, k8, new Float32Array(10), 'a', tag).update;
    expect(validateCiphertext(c8, u).kind).toBe(KIND_FRESH);
    const forged = enc(c8, k8, new Float32Array(10), 'b', tag).update;
    forged.fill(0xff, updateHeaderSize(1) + CHUNK_HEADER_BYTES, updateHeaderSize(1) + CHUNK_HEADER_BYTES + 7);
    expect(code(() => validateCiphertext(c8, forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    const acc = new Accumulator(c8);
    acc.add(u);
    expect(code(() => acc.add(forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    expect(acc.addends).toBe(1);
    expect(Array.from(decryptSumIntegers(c8, k8, acc.result(), ['a']).values)).toEqual(new Array(10).fill(0));
    expect(code(() => decryptSumIntegers(c8, k8, forged, ['b']))).toBe('HE_MALFORMED_CIPHERTEXT');
    acc.dispose();
    c8.dispose();
  });

  it('rejects a mismatched shape, decryption under the wrong key, and a wrong participant count', () => {
    const tag = freshTag();
    const acc = new Accumulator(ctx);
    acc.add(enc(ctx, key, new Float32Array(10), 'a', tag).update);
    expect(code(() => acc.add(enc(ctx, key, new Float32Array(11), 'b', tag).update))).toBe('HE_SHAPE_MISMATCH');
    const other = generateKeys(ctx);
    expect(code(() => decryptSumIntegers(ctx, other, acc.result(), ['a']))).toBe('HE_DECRYPT_FAILED');
    expect(code(() => decryptSumIntegers(ctx, key, acc.result(), ['a', 'b']))).toBe('HE_PARTICIPANTS_MISMATCH');
    acc.dispose();
  });
});

describe('keys', () => {
  it('key id is stable across serialization and distinct per key', () => {
    const again = deserializeSecretKey(serializeSecretKey(key));
    expect(again.keyId).toBe(key.keyId);
    expect(again.paramsId).toBe(ctx.paramsIdHex);
    expect(Buffer.from(again.sealKey).equals(Buffer.from(key.sealKey))).toBe(true);
    expect(generateKeys(ctx).keyId).not.toBe(key.keyId);
    expect(key.keyId).toMatch(/^[0-9a-f]{64}$/);
    // the restored key decrypts what the original encrypted
    const u = enc(ctx, key, Int32Array.from([5, -7]), 'k', freshTag()).update;
    expect(Array.from(decryptSumIntegers(ctx, again, u, ['k']).values)).toEqual([5, -7]);
  });

  it('rejects damaged keys and keys of other parameters', async () => {
    const bytes = serializeSecretKey(key);
    expect(code(() => deserializeSecretKey(bytes.subarray(0, bytes.length - 1)))).toBe('HE_KEY_INVALID');
    expect(code(() => deserializeSecretKey(new Uint8Array(10)))).toBe('HE_KEY_INVALID');
    const tampered = { ...key, sealKey: key.sealKey.slice() };
    tampered.sealKey[200] ^= 1;
    const other = await createHeContext({ clip: 3 });
    expect(code(() => enc(other, key, new Float32Array(3), 'k', freshTag()))).toBe('HE_KEY_MISMATCH');
    expect(code(() => enc(other, { ...tampered, paramsId: other.paramsIdHex }, new Float32Array(3), 'k', freshTag()))).toBe('HE_KEY_INVALID');
    other.dispose();
  });

  it('writes key files 0600 and refuses group/other-readable ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-he-'));
    try {
      const p = join(dir, 'he.key');
      await writeFile(p, 'old', { mode: 0o644 });
      await saveSecretKeyFile(p, key);
      expect((await stat(p)).mode & 0o777).toBe(0o600);
      expect((await loadSecretKeyFile(p)).keyId).toBe(key.keyId);
      await chmod(p, 0o640);
      await expect(loadSecretKeyFile(p)).rejects.toMatchObject({ code: 'HE_KEY_FILE_PERMISSIONS' });
      await expect(loadSecretKeyFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'HE_KEY_FILE_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
