import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Accumulator, CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES, createHeContext, decryptSum, decryptSumIntegers, deserializeSecretKey,
  encryptVector, generateKeys, loadSecretKeyFile, quantize, saveSecretKeyFile, serializeSecretKey, validateCiphertext, chunkSize,
  KIND_FRESH, KIND_SUM, KIND_SUM_COMPACT, updateSize, compactSumDropBits,
} from '../src/index.ts';
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

describe('exact sums', () => {
  it('decrypts to exactly the sum of the quantized integers (property: random updates, consortium sizes, lengths)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9000 }), fc.nat(), fc.boolean(),
      (members, length, seed, asInts) => {
        const acc = new Accumulator(ctx);
        const expected = new Int32Array(length);
        let s = seed;
        const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
        for (let m = 0; m < members; m++) {
          let ints: Int32Array;
          if (asInts) {
            ints = Int32Array.from({ length }, () => Math.round((rnd() * 2 - 1) * ctx.quantMax));
            acc.add(encryptVector(ctx, key, ints).update);
          } else {
            const x = Float32Array.from({ length }, () => (rnd() * 2.4 - 1.2) * ctx.params.clip);
            ints = quantize(x, { scale: ctx.scale, clip: ctx.params.clip, seed: seed + m }).values;
            const r = encryptVector(ctx, key, x, { seed: seed + m });
            expect(r.clipped).toBe(x.filter((v) => Math.abs(v) > ctx.params.clip).length);
            acc.add(r.update);
          }
          for (let i = 0; i < length; i++) expected[i] += ints[i];
        }
        const sum = acc.result();
        const compact = acc.result({ compact: true });
        acc.dispose();
        for (const s of [sum, compact]) {
          const got = decryptSumIntegers(ctx, key, s);
          expect(got.addends).toBe(members);
          expect(Array.from(got.values)).toEqual(Array.from(expected));
        }
        expect(compact.length).toBeLessThan(sum.length);
      },
    ), { numRuns: 6 });
  });

  it('has headroom and noise room for the largest allowed consortium at extreme values', () => {
    // 1024 addends of ±qmax in every slot; re-adding the same ciphertexts makes their noise add coherently (worst case).
    const n = ctx.slotCount;
    const qmax = ctx.quantMax;
    const pos = encryptVector(ctx, key, new Int32Array(n).fill(qmax)).update;
    const alt = encryptVector(ctx, key, Int32Array.from({ length: n }, (_, i) => (i % 2 ? qmax : -qmax))).update;
    const acc = new Accumulator(ctx);
    for (let i = 0; i < 1024; i++) acc.add(i % 4 === 3 ? alt : pos);
    expect(acc.addends).toBe(1024);
    for (const compact of [false, true]) {
      const got = decryptSumIntegers(ctx, key, acc.result({ compact })).values;
      expect(got[0]).toBe(768 * qmax + 256 * -qmax);
      expect(got[1]).toBe(1024 * qmax);
      expect(got[n - 1]).toBe(1024 * qmax);
    }
    expect(code(() => acc.add(pos))).toBe('HE_HEADROOM_EXCEEDED');
    acc.dispose();
  });

  it('compact sums: rounded within the noise left by their addends, smaller, exact, and final', () => {
    // 10 addends: 31-bit c0 and 43-bit c1 instead of 60 + 60 (docs/he.md §3)
    expect(compactSumDropBits(ctx.q, ctx.t, ctx.slotCount, ctx.params.c0DropBits, 10)).toEqual({ c0: 29, c1: 17 });
    expect(compactSumDropBits(ctx.q, ctx.t, ctx.slotCount, ctx.params.c0DropBits, 1024)).toEqual({ c0: 28, c1: 16 });
    const perValue = (addends: number) => updateSize(ctx, KIND_SUM_COMPACT, 1_000_000, addends) / 1_000_000;
    expect(updateSize(ctx, KIND_SUM_COMPACT, 1_000_000, 10)).toBe(52 + 245 * (52 + (4096 * (31 + 43)) / 8)); // 9.30 B/value
    expect(updateSize(ctx, KIND_SUM, 1_000_000)).toBe(52 + 245 * (52 + (4096 * 120) / 8)); // 15.07 B/value
    expect(updateSize(ctx, KIND_SUM_COMPACT, 1000)).toBe(updateSize(ctx, KIND_SUM_COMPACT, 1000, 1024)); // the cap: the largest
    expect(perValue(1024)).toBeGreaterThanOrEqual(perValue(10));
    // a tree: two full-width partial sums added, then published compact
    const x = Int32Array.from({ length: 3000 }, (_, i) => ((i * 7919) % (2 * ctx.quantMax + 1)) - ctx.quantMax);
    const left = new Accumulator(ctx);
    const right = new Accumulator(ctx);
    for (let k = 0; k < 3; k++) left.add(encryptVector(ctx, key, x).update);
    for (let k = 0; k < 2; k++) right.add(encryptVector(ctx, key, x).update);
    const root = new Accumulator(ctx);
    root.add(left.result());
    root.add(right.result());
    const compact = root.result({ compact: true });
    expect(validateCiphertext(ctx, compact)).toMatchObject({ kind: KIND_SUM_COMPACT, addends: 5 });
    expect(Array.from(decryptSumIntegers(ctx, key, compact).values)).toEqual(Array.from(x, (v) => 5 * v));
    // final: neither accumulator accepts it, and the running sum is unchanged
    expect(code(() => root.add(compact))).toBe('HE_SUM_FINAL');
    expect(root.addends).toBe(5);
    for (const a of [left, right, root]) a.dispose();
  });

  it('rejects a malformed compact sum: truncated, or a size that disagrees with its addends', () => {
    const a = new Accumulator(ctx);
    a.add(encryptVector(ctx, key, new Int32Array(100).fill(3)).update);
    const compact = a.result({ compact: true });
    expect(code(() => validateCiphertext(ctx, compact.subarray(0, compact.length - 1)))).toBe('HE_MALFORMED_CIPHERTEXT');
    const wrongAddends = compact.slice();
    new DataView(wrongAddends.buffer).setUint32(48, 2, true); // the header's addends change the expected size
    expect(code(() => validateCiphertext(ctx, wrongAddends))).toBe('HE_MALFORMED_CIPHERTEXT');
    a.dispose();
  });

  it('decrypts real values within K / scale of the float sum, and a single fresh update too', () => {
    const x = Float32Array.from({ length: 5000 }, (_, i) => Math.cos(i) * 0.7);
    const acc = new Accumulator(ctx);
    acc.add(encryptVector(ctx, key, x).update);
    acc.add(encryptVector(ctx, key, x).update);
    const sum = decryptSum(ctx, key, acc.result(), 5000);
    for (let i = 0; i < x.length; i++) expect(Math.abs(sum[i] - 2 * x[i])).toBeLessThanOrEqual(2 / ctx.scale + 1e-12);
    const single = decryptSum(ctx, key, encryptVector(ctx, key, x).update);
    expect(Math.abs(single[17] - x[17])).toBeLessThanOrEqual(1 / ctx.scale + 1e-12);
    acc.dispose();
  });
});

describe('wire validation', () => {
  const fresh = (): Uint8Array => encryptVector(ctx, key, Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i))).update;

  it('has the documented size: header + chunks of 52 + N·40/8 + 65 bytes', () => {
    const u = fresh();
    expect(chunkSize(ctx, KIND_FRESH)).toBe(CHUNK_HEADER_BYTES + 4096 * 5 + 65);
    expect(chunkSize(ctx, KIND_SUM)).toBe(CHUNK_HEADER_BYTES + 2 * 4096 * 60 / 8);
    expect(u.length).toBe(UPDATE_HEADER_BYTES + 2 * chunkSize(ctx, KIND_FRESH));
    expect(validateCiphertext(ctx, u)).toEqual({ kind: KIND_FRESH, valueCount: 5000, addends: 1 });
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
      wrongParamsId: mutate((b) => { b[9] ^= 1; }),
      wrongChunkParamsId: mutate((b) => { b[UPDATE_HEADER_BYTES + 9] ^= 1; }),
      oversizedCount: mutate((_b, dv) => dv.setUint32(40, 0xffffffff, true)),
      countMismatch: mutate((_b, dv) => dv.setUint32(40, 9000, true)),
      chunkIndex: mutate((_b, dv) => dv.setUint32(UPDATE_HEADER_BYTES + 40, 1, true)),
      addends: mutate((_b, dv) => { dv.setUint32(48, 2, true); }),
      kind: mutate((b) => { b[5] = 9; }),
    };
    for (const [name, b] of Object.entries(bad)) {
      expect([name, code(() => validateCiphertext(ctx, b))]).toEqual([name, 'HE_MALFORMED_CIPHERTEXT']);
      expect([name, code(() => acc.add(b))]).toEqual([name, 'HE_MALFORMED_CIPHERTEXT']);
    }
    const other = await createHeContext({ clip: 2 });
    expect(code(() => validateCiphertext(other, u))).toBe('HE_MALFORMED_CIPHERTEXT');
    other.dispose();
    acc.dispose();
  });

  it('rejects a sum coefficient ≥ q and leaves the running sum unchanged', () => {
    const x = Float32Array.from({ length: 100 }, () => 0.5);
    const a = new Accumulator(ctx);
    a.add(encryptVector(ctx, key, x).update);
    const sum = a.result();
    const forged = sum.slice();
    const body = UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES;
    forged.fill(0xff, body, body + 8); // first coefficient: 2^60 - 1 ≥ q
    expect(code(() => validateCiphertext(ctx, forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    expect(code(() => decryptSumIntegers(ctx, key, forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    const b = new Accumulator(ctx);
    b.add(sum);
    expect(code(() => b.add(forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    expect(b.addends).toBe(1);
    const got = decryptSumIntegers(ctx, key, b.result()).values;
    expect(Math.abs(got[0] - 0.5 * ctx.scale)).toBeLessThanOrEqual(1);
    a.dispose();
    b.dispose();
  });

  it('range-checks fresh c0 coefficients when the packed width allows values ≥ the bound', async () => {
    const c8 = await createHeContext({ c0DropBits: 8 });
    const k8 = generateKeys(c8);
    const u = encryptVector(c8, k8, new Float32Array(10)).update;
    expect(validateCiphertext(c8, u).kind).toBe(KIND_FRESH);
    const forged = u.slice();
    forged.fill(0xff, UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES + CHUNK_HEADER_BYTES + 7);
    expect(code(() => validateCiphertext(c8, forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    const acc = new Accumulator(c8);
    expect(code(() => acc.add(forged))).toBe('HE_MALFORMED_CIPHERTEXT');
    expect(acc.addends).toBe(0);
    acc.dispose();
    c8.dispose();
  });

  it('rejects a mismatched shape and decryption under the wrong key', () => {
    const acc = new Accumulator(ctx);
    acc.add(encryptVector(ctx, key, new Float32Array(10)).update);
    expect(code(() => acc.add(encryptVector(ctx, key, new Float32Array(11)).update))).toBe('HE_SHAPE_MISMATCH');
    const other = generateKeys(ctx);
    expect(code(() => decryptSumIntegers(ctx, other, acc.result()))).toBe('HE_DECRYPT_FAILED');
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
    const u = encryptVector(ctx, key, Int32Array.from([5, -7])).update;
    expect(Array.from(decryptSumIntegers(ctx, again, u).values)).toEqual([5, -7]);
  });

  it('rejects damaged keys and keys of other parameters', async () => {
    const bytes = serializeSecretKey(key);
    expect(code(() => deserializeSecretKey(bytes.subarray(0, bytes.length - 1)))).toBe('HE_KEY_INVALID');
    expect(code(() => deserializeSecretKey(new Uint8Array(10)))).toBe('HE_KEY_INVALID');
    const tampered = { ...key, sealKey: key.sealKey.slice() };
    tampered.sealKey[200] ^= 1;
    const other = await createHeContext({ clip: 3 });
    expect(code(() => encryptVector(other, key, new Float32Array(3)))).toBe('HE_KEY_MISMATCH');
    expect(code(() => encryptVector(other, { ...tampered, paramsId: other.paramsIdHex }, new Float32Array(3)))).toBe('HE_KEY_INVALID');
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
