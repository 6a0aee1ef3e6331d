// docs/he.md §6 "Multi-party key": a toy (N = 16) check of the algebra the docs state. The corrected sketch
// (collective public key, public-key BFV, threshold decryption with smudging) decrypts the sum; the old
// sketch (each member its own a_i, decryption shares C1·s_i with C1 = Σ a_i) leaves cross terms a_j·s_i.
import { expect, it } from 'vitest';

const N = 16, q = 1099511627689n, t = 257n, D = q / t;
type Poly = bigint[];
let state = 0x9e3779b9;
const rand = (): number => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state / 4294967296; };
const md = (x: bigint): bigint => ((x % q) + q) % q;
const uni = (): Poly => Array.from({ length: N }, () => md(BigInt(Math.floor(rand() * 2 ** 40))));
const small = (b: number): Poly => Array.from({ length: N }, () => BigInt(Math.floor(rand() * (2 * b + 1)) - b));
const add = (...ps: Poly[]): Poly => ps[0].map((_, i) => md(ps.reduce((s, p) => s + p[i], 0n)));
const neg = (p: Poly): Poly => p.map((x) => md(-x));
/** product in Z_q[X]/(X^N + 1) */
const mul = (a: Poly, b: Poly): Poly => {
  const r: bigint[] = Array(N).fill(0n);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) { if (i + j < N) r[i + j] += a[i] * b[j]; else r[i + j - N] -= a[i] * b[j]; }
  return r.map(md);
};
const decode = (p: Poly): bigint[] => p.map((x) => ((x * t + q / 2n) / q) % t);
const messages = [0, 1, 2].map(() => Array.from({ length: N }, () => BigInt(Math.floor(rand() * 50))));
const want = messages[0].map((_, i) => messages.reduce((s, m) => s + m[i], 0n) % t);
const keyMembers = [0, 1, 2].map(() => small(1));

it('corrected sketch: collective key p = Σ(−a·s_i + e_i), public-key encryption, C0 + Σ_j (C1·s_j + E_j) decrypts the sum', () => {
  const a = uni();
  const p = add(...keyMembers.map((s) => add(neg(mul(a, s)), small(3))));
  const cts = messages.map((m) => { const u = small(1); return [add(mul(p, u), small(3), m.map((x) => md(x * D))), add(mul(a, u), small(3))]; });
  const C0 = add(...cts.map((c) => c[0])), C1 = add(...cts.map((c) => c[1]));
  const shares = keyMembers.map((s) => add(mul(C1, s), small(1 << 20))); // smudging noise
  expect(decode(add(C0, ...shares))).toEqual(want);
});

it('old sketch: own a_i per member, shares C1·s_i with C1 = Σ a_i: the cross terms a_j·s_i do not cancel (garbage)', () => {
  const as = messages.map(() => uni());
  const c0 = messages.map((m, i) => add(neg(mul(as[i], keyMembers[i])), small(3), m.map((x) => md(x * D))));
  const C1 = add(...as);
  const out = decode(add(add(...c0), ...keyMembers.map((s) => add(mul(C1, s), small(3)))));
  expect(out.filter((x, i) => x === want[i]).length).toBeLessThan(4);
});
