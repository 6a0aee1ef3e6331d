// Reference values from scipy (1.x), computed independently of this code:
//   binomial: python3 -c "from scipy.stats import binom; print(binom.sf(k-1, n, p), binom.pmf(k, n, p))"
//   one-run p-value and ε_lower: the p_value_DP_audit of Steinke, Nasr & Jagielski (arXiv:2305.08846,
//   reference code) on scipy.stats.binom, and a 200-step bisection of it (script in the test names below).
import { describe, expect, it } from 'vitest';
import { isFedtwinError } from '@fedtwin/errors';
import { binomialPmf, binomialUpperTail, oneRunEpsilonLower, oneRunPValue } from '@fedtwin/audit';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('binomial distribution (vs scipy.stats.binom)', () => {
  it.each([
    [100, 60, 0.5, 0.028443966820490444],
    [100, 95, 0.9, 0.05757688648703389],
    [1000, 990, 0.999, 0.9999999904000448],
    [50, 1, 1e-3, 0.048794371802968646],
    [200, 200, 0.98, 0.017587946605721504],
  ])('P[Binomial(%i, p) ≥ %i] at p = %f', (n, k, p, sf) => {
    expect(rel(binomialUpperTail(n, k, p), sf)).toBeLessThan(1e-12);
  });

  it.each([
    [100, 50, 0.5, 0.07958923738717875],
    [10, 3, 0.2, 0.20132659199999992],
    [1000, 7, 0.01, 0.08998656836256942],
  ])('P[Binomial(%i, p) = %i] at p = %f', (n, k, p, pmf) => {
    expect(rel(binomialPmf(n, k, p), pmf)).toBeLessThan(1e-12);
  });

  it('edges: P[X ≥ 0] = 1, P[X ≥ n+1] = 0, point masses at p ∈ {0, 1}; bad n or p is AUDIT_BAD_ARGUMENT', () => {
    expect(binomialUpperTail(7, 0, 0.3)).toBe(1);
    expect(binomialUpperTail(7, 8, 0.3)).toBe(0);
    expect(binomialUpperTail(7, 7, 1)).toBe(1);
    expect(binomialPmf(7, 0, 0)).toBe(1);
    expect(binomialPmf(7, 1, 0)).toBe(0);
    for (const f of [() => binomialUpperTail(-1, 0, 0.5), () => binomialUpperTail(3.5, 1, 0.5), () => binomialPmf(3, 1, 1.5)]) {
      expect(() => f()).toThrow(expect.objectContaining({ code: 'AUDIT_BAD_ARGUMENT' }));
    }
  });
});

describe('one-run bound, Theorem 3 (vs the paper\'s p_value_DP_audit on scipy)', () => {
  it.each([
    [100, 100, 100, 3.0, 0, 0.007760293235863748],
    [100, 100, 100, 3.0, 1e-5, 0.008025390790710137],
    [1000, 100, 80, 1.0, 1e-5, 0.07300911594917776],
    [1000, 100, 80, 1.0, 1e-2, 1],
    [200, 50, 45, 2.0, 1e-5, 0.4428651320397803],
  ])('m = %i, r = %i, v = %i, ε = %f, δ = %f → p = %f', (m, r, v, epsilon, delta, p) => {
    expect(rel(oneRunPValue({ m, r, v, epsilon, delta }), p)).toBeLessThan(1e-10);
  });

  it.each([
    [100, 100, 100, 1e-5, 0.05, 3.490215955326397],
    [100, 100, 100, 0, 0.05, 3.4929654311522937],
    [100, 50, 50, 1e-5, 0.0125, 2.3846434809779287],
    [200, 200, 190, 1e-5, 0.0125, 2.23746055871906],
    [1000, 1000, 900, 1e-5, 0.05, 2.0206455958654317],
    [1000, 100, 80, 1e-2, 0.05, 0],
    [100, 40, 22, 1e-5, 0.05, 0],
    [10, 10, 10, 1e-5, 0.05, 1.0515101489334162],
  ])('ε_lower(m = %i, r = %i, v = %i, δ = %f, α = %f) = %f', (m, r, v, delta, alpha, eps) => {
    const got = oneRunEpsilonLower({ m, r, v, delta, alpha });
    if (eps === 0) expect(got).toBe(0);
    else expect(rel(got, eps)).toBeLessThan(1e-8);
  });

  it('all r guesses right with δ = 0 has a closed form: q^r = α, ε = log(q / (1 − q))', () => {
    for (const r of [5, 37, 100, 1000]) {
      const q = 0.05 ** (1 / r);
      expect(rel(oneRunEpsilonLower({ m: r, r, v: r, delta: 0, alpha: 0.05 }), Math.log(q / (1 - q)))).toBeLessThan(1e-8);
    }
  });

  it('the p-value does not decrease with ε (what the bisection relies on), δ ∈ {0, 1e-5, 1e-3}', () => {
    for (const [m, r] of [[20, 20], [100, 25], [100, 100], [400, 200]] as const) {
      for (let v = 0; v <= r; v += Math.max(1, Math.floor(r / 10))) {
        for (const delta of [0, 1e-5, 1e-3]) {
          let prev = 0;
          for (let e = 0; e <= 10; e += 0.1) {
            const p = oneRunPValue({ m, r, v, epsilon: e, delta });
            expect(p).toBeGreaterThanOrEqual(prev * (1 - 1e-12));
            prev = p;
          }
        }
      }
    }
  });

  it('ε_lower rejects just below and not at its value; more correct guesses never lower it', () => {
    const c = { m: 200, r: 100, v: 90, delta: 1e-5, alpha: 0.05 };
    const e = oneRunEpsilonLower(c);
    expect(oneRunPValue({ ...c, epsilon: e * (1 - 1e-6) })).toBeLessThan(0.05);
    expect(oneRunPValue({ ...c, epsilon: e * (1 + 1e-6) })).toBeGreaterThanOrEqual(0.05);
    let prev = 0;
    for (let v = 50; v <= 100; v++) {
      const next = oneRunEpsilonLower({ ...c, v });
      expect(next).toBeGreaterThanOrEqual(prev);
      prev = next;
    }
  });

  it('chance-level guessing shows nothing: v = r/2 gives ε_lower = 0', () => {
    expect(oneRunEpsilonLower({ m: 1000, r: 1000, v: 500, delta: 1e-5, alpha: 0.05 })).toBe(0);
  });

  it('refuses counts that cannot occur (v > r, r > m, non-integers) and bad ε, δ, α', () => {
    const bad = [
      () => oneRunPValue({ m: 10, r: 5, v: 6, epsilon: 1, delta: 0 }),
      () => oneRunPValue({ m: 10, r: 11, v: 1, epsilon: 1, delta: 0 }),
      () => oneRunPValue({ m: 10, r: 5, v: 1.5, epsilon: 1, delta: 0 }),
      () => oneRunPValue({ m: 10, r: 5, v: 1, epsilon: -1, delta: 0 }),
      () => oneRunPValue({ m: 10, r: 5, v: 1, epsilon: 1, delta: 2 }),
      () => oneRunEpsilonLower({ m: 10, r: 5, v: 1, delta: 0, alpha: 0 }),
    ];
    for (const f of bad) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(isFedtwinError(err, 'AUDIT_BAD_ARGUMENT')).toBe(true);
    }
  });
});
