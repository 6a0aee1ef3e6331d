import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { combine, split, FIELD_PRIME, bytesToField, fieldToBytes } from '../src/index.ts';
import { code } from './helpers.ts';

describe('Shamir over GF(2^521 − 1)', () => {
  it('any t shares give the secret back; t − 1 give an unrelated field element', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 2, max: 12 }), fc.integer({ min: 0, max: 10 }), fc.integer(),
      (bytes, n, extra, pick) => {
        const t = Math.max(1, n - (extra % n));
        const xs = Array.from({ length: n }, (_, i) => i + 1 + (pick & 7));
        const secret = bytesToField(bytes);
        const ys = split(secret, t, xs);
        // a subset of size t, rotated by `pick`
        const idx = Array.from({ length: n }, (_, i) => (i + Math.abs(pick)) % n).slice(0, t);
        const pts = idx.map((i) => ({ x: xs[i], y: ys[i] }));
        expect(Buffer.from(fieldToBytes(combine(pts), 32)).equals(Buffer.from(bytes))).toBe(true);
        if (t > 1) expect(combine(pts.slice(0, t - 1))).not.toBe(secret);
      }), { numRuns: 50 });
  });

  it('t − 1 shares are consistent with every secret (perfect hiding): the missing share can be chosen to give any value', () => {
    const xs = [1, 2, 3];
    const ys = split(12345n, 3, xs);
    // For a target secret s', the third share y3' = (s' − λ1·y1 − λ2·y2)/λ3 exists for any s':
    // checked by solving for s' = 999 and combining.
    const pts = [{ x: 1, y: ys[0] }, { x: 2, y: ys[1] }];
    const l3 = 1n; // λ3 at x = 3 for points {1, 2, 3}: 1·2 / ((1−3)(2−3)) = 1
    const base = combine([...pts, { x: 3, y: 0n }]);
    const y3 = ((999n - base) * l3 % FIELD_PRIME + FIELD_PRIME) % FIELD_PRIME;
    expect(combine([...pts, { x: 3, y: y3 }])).toBe(999n);
  });

  it('refuses bad thresholds and x-coordinates with typed errors', () => {
    expect(code(() => split(1n, 4, [1, 2, 3]))).toBe('SECAGG_BAD_ARGUMENT');
    expect(code(() => split(1n, 2, [1, 1]))).toBe('SECAGG_BAD_ARGUMENT');
    expect(code(() => split(1n, 2, [0, 1]))).toBe('SECAGG_BAD_ARGUMENT');
    expect(code(() => combine([]))).toBe('SECAGG_NOT_ENOUGH_SHARES');
  });
});
