// The distributed Skellam mechanism: its RDP bound against an independent 50-digit evaluation and the exact
// one-dimensional Rényi divergence (bench/reference/skellam-mpmath.py), the continuous Gaussian limit, the
// rounding bounds, calibration, the member's share (integers, conditional rounding, range), and composition.
import { describe, expect, it } from 'vitest';
import {
  PrivacyBudget, RdpAccountant, epsilonFor, gaussianEpsilonAtIntegerOrders, roundedL1Bound, roundedL2Bound, seededRandom,
  skellamEpsilon, skellamMechanism, skellamNoiseFor, skellamRdpOrder, skellamShare, skellamSite, DEFAULT_ORDERS,
} from '../src/index.ts';

// From `python3 bench/reference/skellam-mpmath.py` (mpmath, 50 digits).
const REFERENCE_EPSILON = [
  { l2: 1128.3495431159438, l1: 356815.4553056747, v: 1833368.677734375, T: 55, delta: 1e-5, epsilon: 48.321099888220175, order: 2 },
  { l2: 100.0, l1: 1000.0, v: 40000.0, T: 10, delta: 1e-5, epsilon: 8.087980378831665, order: 4 },
  { l2: 10.0, l1: 100.0, v: 100.0, T: 1, delta: 1e-6, epsilon: 5.264928660953289, order: 6 },
  { l2: 5000.0, l1: 1500000.0, v: 225000000.0, T: 200, delta: 1e-5, epsilon: 32.34885340903552, order: 2 },
  // the VAE's site-level step in `fedtwin sim --generator vae --dp site --nodes 2 --rounds 2` (2 rounds; the 3 planned)
  { l2: 724.8543925744929, l1: 29479.39237465257, v: 641775.05078125, T: 2, delta: 1e-5, epsilon: 6.3461770785177745, order: 5 },
  { l2: 724.8543925744929, l1: 29479.39237465257, v: 641775.05078125, T: 3, delta: 1e-5, epsilon: 7.999999991936029, order: 4 },
];
const REFERENCE_DIVERGENCE = [
  { v: 20, shift: 1, alpha: 2, exact: 0.0499527981982203, bound: 0.055625 },
  { v: 20, shift: 3, alpha: 4, exact: 0.8526156766758065, bound: 0.950625 },
  { v: 100, shift: 5, alpha: 3, exact: 0.373570232010584, bound: 0.378875 },
  { v: 8, shift: 2, alpha: 8, exact: 1.454112306710017, bound: 2.28125 },
];

describe('Skellam accounting', () => {
  it('matches an independent 50-digit evaluation of ε (bound at integer orders, improved conversion) to 1e-12', () => {
    for (const c of REFERENCE_EPSILON) {
      const r = skellamEpsilon({ params: { l1: c.l1, l2: c.l2, mu: c.v / 2 }, steps: c.T, delta: c.delta });
      expect(Math.abs(r.epsilon - c.epsilon) / c.epsilon).toBeLessThan(1e-12);
      expect(r.order).toBe(c.order);
    }
  });

  it('the bound is never below the exact one-dimensional Rényi divergence (mpmath, Bessel pmf)', () => {
    for (const c of REFERENCE_DIVERGENCE) {
      const b = skellamRdpOrder({ l1: c.shift, l2: c.shift, mu: c.v / 2 }, c.alpha);
      expect(Math.abs(b - c.bound)).toBeLessThan(1e-14);
      expect(b).toBeGreaterThanOrEqual(c.exact);
    }
  });

  it('fractional orders get +Infinity (the bound is used at integer orders only)', () => {
    expect(skellamRdpOrder({ l1: 1, l2: 1, mu: 5 }, 2.5)).toBe(Infinity);
    expect(skellamRdpOrder({ l1: 1, l2: 1, mu: 5 }, 3)).toBeCloseTo(3 / 20 + Math.min((5 + 6) / 400, 3 / 20), 15);
  });

  it('approaches the continuous Gaussian of the same variance as the scale grows, and never goes below it', () => {
    const z = 1.3;
    const steps = 50;
    const delta = 1e-5;
    const gauss = gaussianEpsilonAtIntegerOrders({ noiseMultiplier: z, steps, delta }).epsilon;
    let previous = Infinity;
    for (const l2 of [10, 100, 1000, 10_000, 100_000]) {
      const d = 10_000;
      const params = { l2, l1: roundedL1Bound(l2, d), mu: (z * l2) ** 2 / 2 };
      const e = skellamEpsilon({ params, steps, delta }).epsilon;
      expect(e).toBeGreaterThanOrEqual(gauss);
      expect(e).toBeLessThanOrEqual(previous);
      previous = e;
    }
    expect((previous - gauss) / gauss).toBeLessThan(1e-6);
    // and the Gaussian at integer orders is within a hair of the default orders' ε
    expect(gauss / epsilonFor({ sampleRate: 1, noiseMultiplier: z, steps, delta }).epsilon).toBeLessThan(1.01);
  });

  it('rounding bounds: DDG Theorem 1 at β = e^{−1/2}, and L1 ≤ min(√d, L2)·L2', () => {
    expect(roundedL2Bound(100, 10_000, Math.exp(-0.5))).toBeCloseTo(Math.sqrt(100 ** 2 + 2500 + 1 * (100 + 50)), 10);
    expect(roundedL2Bound(100, 4, 1e-300)).toBeCloseTo(102, 10); // c + √d is the smaller one at a tiny β
    expect(roundedL1Bound(50, 10_000)).toBe(50 * 50);
    expect(roundedL1Bound(50, 100)).toBe(50 * 10);
  });

  it('composes in the accountant (merging equal rounds, JSON round trip) like the Gaussian', () => {
    const skellam = { l1: 1000, l2: 100, mu: 20_000 };
    const m = skellamMechanism({ ...skellam, steps: 1 });
    const acc = new RdpAccountant();
    for (let i = 0; i < 10; i++) acc.compose(m);
    expect(acc.mechanisms).toEqual([{ ...m, steps: 10 }]);
    expect(acc.getEpsilon(1e-5).epsilon).toBeCloseTo(REFERENCE_EPSILON[1]!.epsilon, 12);
    // same q and z but no Skellam: a different mechanism
    acc.compose({ sampleRate: 1, noiseMultiplier: 2, steps: 1 });
    expect(acc.mechanisms).toHaveLength(2);
    const again = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc.toJSON())));
    expect(again.getEpsilon(1e-5)).toEqual(acc.getEpsilon(1e-5));
    const budget = new PrivacyBudget({ epsilon: 100, delta: 1e-5, mechanisms: [m] });
    expect(PrivacyBudget.fromJSON(JSON.parse(JSON.stringify(budget))).spent()).toEqual(budget.spent());
    expect(() => acc.compose({ sampleRate: 0.5, noiseMultiplier: 2, steps: 1, skellam })).toThrow(/sampleRate 1/);
  });
});

// `python3 bench/reference/skellam-mpmath.py`, kind 'composed': Skellam steps (μ: Poisson(μ) − Poisson(μ)) composed
// with q = 1 Gaussian steps at the default orders (fractional ones are +∞ for Skellam), improved conversion.
const REFERENCE_COMPOSED = [
  { skellam: [{ mu: 73.8125, l1: 1, l2: 1, steps: 121 }, { mu: 283.625, l1: 1, l2: 1, steps: 465 }, { mu: 18.3125, l1: 1, l2: 1, steps: 30 }], gaussian: [], delta: 1e-5, epsilon: 8.100291455874107, order: 4 },
  { skellam: [{ mu: 18.3125, l1: 1, l2: 1, steps: 30 }], gaussian: [{ z: 6.05, steps: 30 }], delta: 1e-5, epsilon: 6.433418460046743, order: 5 },
  { skellam: [{ mu: 0.5, l1: 3, l2: 2, steps: 7 }], gaussian: [{ z: 1.5, steps: 3 }], delta: 1e-6, epsilon: 73.26254953017772, order: 2 },
];

describe('Skellam steps in the RdpAccountant', () => {
  it('composes with Gaussian steps at the same orders and matches the mpmath reference to ≤ 1e-6 relative (in fact 1e-12)', () => {
    for (const c of REFERENCE_COMPOSED) {
      const acc = new RdpAccountant();
      for (const s of c.skellam) acc.compose(skellamMechanism(s));
      for (const g of c.gaussian) acc.compose({ sampleRate: 1, noiseMultiplier: g.z, steps: g.steps });
      const r = acc.getEpsilon(c.delta);
      expect(Math.abs(r.epsilon - c.epsilon) / c.epsilon).toBeLessThan(1e-12);
      expect(r.order).toBe(c.order);
      // the order in which steps are composed does not matter, nor does splitting them into single steps
      const rev = new RdpAccountant();
      for (const g of c.gaussian) rev.compose({ sampleRate: 1, noiseMultiplier: g.z, steps: g.steps });
      for (const s of [...c.skellam].reverse()) for (let k = 0; k < s.steps; k++) rev.compose(skellamMechanism({ ...s, steps: 1 }));
      expect(Math.abs(rev.getEpsilon(c.delta).epsilon - r.epsilon) / r.epsilon).toBeLessThan(1e-12);
    }
  });

  it('k count vectors of sensitivity 1 as k steps equal one step of the joint vector (Δ₂² = Δ₁ = k)', () => {
    for (const [mu, k] of [[18.3125, 30], [283.625, 465]] as const) {
      for (const a of [2, 3, 7, 63, 1024]) {
        const steps = k * skellamRdpOrder({ mu, l1: 1, l2: 1 }, a);
        const joint = skellamRdpOrder({ mu, l1: k, l2: Math.sqrt(k) }, a);
        expect(Math.abs(steps - joint) / joint).toBeLessThan(1e-12);
      }
    }
  });

  it('records name their noise: z is √(2μ)/Δ₂; a Skellam step never merges with a Gaussian one of the same z', () => {
    const m = skellamMechanism({ mu: 18.3125, l1: 1, l2: 1, steps: 1 });
    expect(m.noiseMultiplier).toBe(Math.sqrt(36.625));
    const acc = new RdpAccountant().compose(m).compose({ sampleRate: 1, noiseMultiplier: m.noiseMultiplier, steps: 1 });
    expect(acc.mechanisms).toHaveLength(2);
    // and the Skellam one costs more than the Gaussian of the same variance
    const g = new RdpAccountant().compose({ sampleRate: 1, noiseMultiplier: m.noiseMultiplier, steps: 2 }).getEpsilon(1e-5).epsilon;
    expect(acc.getEpsilon(1e-5).epsilon).toBeGreaterThan(g);
  });

  it('refuses malformed Skellam steps with DP_BAD_ARGUMENT naming the field', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    const ok = skellamMechanism({ mu: 10, l1: 2, l2: 1, steps: 3 });
    const acc = () => new RdpAccountant();
    expect(code(() => acc().compose({ ...ok, skellam: { mu: 0, l1: 2, l2: 1 } }))).toMatch(/^DP_BAD_ARGUMENT: .*skellam\.mu/);
    expect(code(() => acc().compose({ ...ok, skellam: { mu: 10, l1: 0.5, l2: 1 } }))).toMatch(/^DP_BAD_ARGUMENT: .*skellam\.l1 .*≥ l2/);
    expect(code(() => acc().compose({ ...ok, skellam: { mu: 10, l1: 2, l2: 0 } }))).toMatch(/^DP_BAD_ARGUMENT: .*skellam\.l2/);
    expect(code(() => acc().compose({ ...ok, noiseMultiplier: ok.noiseMultiplier * 1.01 }))).toMatch(/^DP_BAD_ARGUMENT: .*not √\(2μ\)\/l2/);
    expect(code(() => acc().compose({ ...ok, sampleRate: 0.5 }))).toMatch(/^DP_BAD_ARGUMENT: .*sampleRate 1/);
    expect(code(() => acc().compose({ ...ok, skellam: 'x' as never }))).toMatch(/^DP_BAD_ARGUMENT: .*\{ mu, l1, l2 \}/);
    expect(code(() => new RdpAccountant({ orders: [1.5, 2.5] }).compose(ok))).toMatch(/^DP_BAD_ARGUMENT: .*integer orders/);
    expect(code(() => RdpAccountant.fromJSON({ orders: [2, 3], mechanisms: [{ ...ok, skellam: { mu: -1, l1: 1, l2: 1 } }] }))).toMatch(/^DP_(BAD_ARGUMENT|BAD_STATE)/);
    expect(code(() => acc().compose(ok))).toBe('no error');
  });
});

describe('site mechanism and the member share', () => {
  const init = { clip: 1, coordinateClip: 1, noiseMultiplier: 1.2, minParticipants: 3, dimension: 5000, quantMax: 32767 };

  it('fits signal + share tail into ±quantMax and records what it accounts', () => {
    const s = skellamSite(init);
    expect(s.signalBound + s.tailBound).toBeLessThanOrEqual(32767);
    expect(s.params.l2).toBeCloseTo(roundedL2Bound(s.scale, 5000, Math.exp(-0.5)), 12);
    expect(s.params.mu).toBe((s.lambda.num / s.lambda.den) * 3);
    expect(s.noiseMultiplier).toBeGreaterThanOrEqual(1.2);
    expect(() => skellamSite({ ...init, quantMax: 7 })).toThrow(/does not fit/);
  });

  it('a share is integer-valued, within range, and the rounding alone (no noise) meets the L2 bound and is unbiased', () => {
    const s = skellamSite(init);
    const rng = seededRandom([9]);
    const delta = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i) * 0.05); // norm ≈ 2.5 > C = 1: clipped
    const share = skellamShare(delta, s, rng);
    expect(share.scaled).toBe(true);
    let max = 0;
    for (const v of share.values) max = Math.max(max, Math.abs(v));
    expect(max).toBeLessThanOrEqual(32767);
    // noise-free copy of the mechanism: a tiny λ share and a huge bound leave the rounding visible
    const quiet = { ...s, lambda: { num: 1, den: 1024 }, tailBound: 0 };
    const sum = new Float64Array(5000);
    const reps = 40;
    for (let r = 0; r < reps; r++) {
      const q = skellamShare(delta, quiet, rng);
      let n2 = 0;
      for (let i = 0; i < 5000; i++) {
        n2 += q.values[i]! ** 2;
        sum[i]! += q.values[i]!;
      }
      expect(n2).toBeLessThanOrEqual(s.l2Bound ** 2);
    }
    const factor = 1 / share.norm;
    let err = 0;
    for (let i = 0; i < 5000; i++) err = Math.max(err, Math.abs(sum[i]! / reps - delta[i]! * factor * s.scale));
    expect(err).toBeLessThan(0.5); // each mean of 40 coin flips of ±1 is within ±0.5 with overwhelming odds
  });

  it('n shares of a zero update sum to variance ≈ n·2λ (Skellam is closed under sums)', () => {
    const s = skellamSite({ ...init, dimension: 4000 });
    const rng = seededRandom([10]);
    const zero = new Float32Array(4000);
    const sum = new Float64Array(4000);
    for (let k = 0; k < 3; k++) skellamShare(zero, s, rng).values.forEach((v, i) => (sum[i]! += v));
    const v = sum.reduce((a, x) => a + x * x, 0) / 4000;
    expect(Math.abs(v - 2 * s.params.mu) / (2 * s.params.mu)).toBeLessThan(0.1);
  });

  it('calibration returns a z whose mechanism meets the target ε', () => {
    const r = skellamNoiseFor({ ...init, epsilon: 8, steps: 55, delta: 1e-5 });
    expect(r.epsilon).toBeLessThanOrEqual(8);
    expect(r.epsilon).toBeGreaterThan(7.9);
    const below = skellamSite({ ...init, noiseMultiplier: r.noiseMultiplier * (1 - 1e-6) });
    expect(skellamEpsilon({ params: below.params, steps: 55, delta: 1e-5 }).epsilon).toBeGreaterThan(8);
    // close to the Gaussian's calibration at integer orders
    const g = epsilonFor({ sampleRate: 1, noiseMultiplier: r.noiseMultiplier, steps: 55, delta: 1e-5, orders: DEFAULT_ORDERS.filter(Number.isInteger) }).epsilon;
    expect(Math.abs(g - r.epsilon) / r.epsilon).toBeLessThan(0.01);
  });
});
