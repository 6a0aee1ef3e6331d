// Cross-checks against published values from the reference implementations' own tests and docs.
// Every case names its source: repository, file (and commit where the value is historical), test name.
// Tolerance: ≤ 1e-6 relative unless the source publishes fewer digits (then its own tolerance, noted).
import { describe, expect, it } from 'vitest';
import { RdpAccountant, computeRdp, epsilonFor, noiseMultiplierFor, rdpToDelta, rdpToEpsilon } from '@fedtwin/dp';

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, i) => lo + i); // [lo, hi)
// tensorflow/privacy compute_dp_sgd_privacy_lib.py: orders used by compute_dp_sgd_privacy.
const TFP_ORDERS = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
// pytorch/opacus opacus/accountants/rdp.py: RDPAccountant.DEFAULT_ALPHAS (same float expression).
const OPACUS_ALPHAS = [...range(1, 100).map((x) => 1 + x / 10.0), ...range(12, 64)];

describe('RDP of the sampled Gaussian (published values)', () => {
  it('google/differential-privacy python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py::test_compute_rdp_poisson_sampled_gaussian', () => {
    // q = 0.01, z = 2.5, 50 steps; values printed there to 9 significant digits (dp_accounting >= 0.5, absolute series).
    const rdp = computeRdp({ sampleRate: 0.01, noiseMultiplier: 2.5, steps: 50, orders: [1.5, 2.5, 5, 50, 100, Infinity], fractionalSeries: 'absolute' });
    const expected = [6.70579741e-4, 1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    expected.forEach((e, k) => expect(rel(rdp[k], e)).toBeLessThan(1e-7));
    expect(rdp[5]).toBe(Infinity);
  });

  it('tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py::test_compute_rdp_sequence (signed series, the default)', () => {
    // Published with delta=1e-5 absolute: [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, inf].
    const rdp = computeRdp({ sampleRate: 0.01, noiseMultiplier: 2.5, steps: 50, orders: [1.5, 2.5, 5, 50, 100, Infinity] });
    [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307].forEach((e, k) => expect(Math.abs(rdp[k] - e)).toBeLessThan(1e-5));
    expect(rdp[5]).toBe(Infinity);
    // and the signed series is the tighter one at fractional orders, equal at integer orders
    const abs = computeRdp({ sampleRate: 0.01, noiseMultiplier: 2.5, steps: 50, orders: [1.5, 2.5, 5, 50, 100], fractionalSeries: 'absolute' });
    expect(rdp[0]).toBeLessThan(abs[0]);
    expect(rdp[1]).toBeLessThan(abs[1]);
    expect(rdp[2]).toBe(abs[2]);
  });

  it('tensorflow/privacy rdp_accountant_test.py::test_compute_rdp_scalar (published to 5 places)', () => {
    const [r] = computeRdp({ sampleRate: 0.1, noiseMultiplier: 2, steps: 10, orders: [5] });
    expect(Math.abs(r - 0.07737)).toBeLessThan(5e-6);
  });

  it('tensorflow/privacy rdp_accountant_test.py::test_compute_rdp_no_data / test_compute_rdp_no_sampling', () => {
    expect(computeRdp({ sampleRate: 0, noiseMultiplier: 10, steps: 1, orders: [20] })).toEqual([0]);
    expect(computeRdp({ sampleRate: 1, noiseMultiplier: 10, steps: 1, orders: [20] })).toEqual([0.1]);
  });

  it('tensorflow/privacy rdp_accountant_test.py::test_compute_heterogeneous_rdp_different_sampling_probabilities', () => {
    const acc = new RdpAccountant({ orders: [20] });
    acc.compose({ sampleRate: 0, noiseMultiplier: 10, steps: 1 }).compose({ sampleRate: 1, noiseMultiplier: 10, steps: 1 });
    expect(acc.rdp()).toEqual([0.1]);
  });

  it('dp_accounting rdp_privacy_accountant_test.py::test_compute_rdp_gaussian and ::test_compute_rdp_multi_gaussian', () => {
    const alpha = 3.14159;
    const s1 = 2.71828;
    const s2 = 6.28319;
    expect(rel(computeRdp({ sampleRate: 1, noiseMultiplier: s1, steps: 1, orders: [alpha] })[0], alpha / (2 * s1 ** 2))).toBeLessThan(1e-15);
    const acc = new RdpAccountant({ orders: [alpha] });
    acc.compose({ sampleRate: 1, noiseMultiplier: s1, steps: 1 }).compose({ sampleRate: 1, noiseMultiplier: s2, steps: 1 });
    expect(rel(acc.rdp()[0], alpha / (2 * s1 ** 2) + alpha / (2 * s2 ** 2))).toBeLessThan(1e-15);
  });

  it('dp_accounting rdp_privacy_accountant_test.py::test_zero_poisson_sample and ::test_epsilon_non_private_gaussian', () => {
    for (const z of [1, 0]) {
      const acc = new RdpAccountant({ orders: [3.14159] }).compose({ sampleRate: 0, noiseMultiplier: z, steps: 1 });
      expect(acc.getEpsilon(1e-10).epsilon).toBe(0);
      expect(acc.getDelta(1e-10).delta).toBe(0);
    }
    const acc = new RdpAccountant({ orders: [3.14159] }).compose({ sampleRate: 1, noiseMultiplier: 0, steps: 1 });
    expect(acc.getEpsilon(0.1).epsilon).toBe(Infinity);
  });
});

describe('improved conversion (published values)', () => {
  it('dp_accounting rdp_privacy_accountant_test.py::test_compute_epsilon_delta_pure_dp (also TF Privacy rdp_accountant_test.py::test_get_privacy_spent_check_target_delta)', () => {
    const orders = range(2, 33);
    const rdp = orders.map(() => 1.1);
    const e = rdpToEpsilon({ orders, rdp, delta: 1e-5 });
    expect(rel(e.epsilon, 1.32783806176)).toBeLessThan(1e-9);
    expect(e.order).toBe(32);
    const d = rdpToDelta({ orders, rdp, epsilon: 1.32783806176 });
    expect(rel(d.delta, 1e-5)).toBeLessThan(1e-8);
    expect(d.order).toBe(32);
  });

  it('dp_accounting rdp_privacy_accountant_test.py::test_compute_epsilon_delta_gaussian (z = 4.530877117 gives (1, 1e-6) on a 0.001 grid of orders)', () => {
    const orders = range(1000, 100000).map((i) => 0.001 * i);
    const rdp = orders.map((a) => a / (2 * 4.530877117 ** 2)); // q = 1: the Gaussian curve (order 1.0 included, as there)
    expect(rel(rdpToEpsilon({ orders, rdp, delta: 1e-6 }).epsilon, 1)).toBeLessThan(1e-6);
    expect(rel(rdpToDelta({ orders, rdp, epsilon: 1 }).delta, 1e-6)).toBeLessThan(1e-6);
  });

  it.each([
    // tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py::test_compute_dp_sgd_privacy (HEAD)
    ['Test0', 60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19],
    ['Test1', 100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13],
    ['Test2', 100000000, 1024, 0.1, 10, 1e-7, 5907982.3113984, 1.25],
  ] as const)('tensorflow/privacy compute_dp_sgd_privacy_test.py::test_compute_dp_sgd_privacy %s', (_n, n, batch, z, epochs, delta, eps, order) => {
    const r = epsilonFor({ sampleRate: batch / n, noiseMultiplier: z, steps: Math.ceil((epochs * n) / batch), delta, orders: TFP_ORDERS });
    expect(rel(r.epsilon, eps)).toBeLessThan(1e-9);
    expect(r.order).toBe(order);
  });

  it('pytorch/opacus opacus/tests/accountants_test.py::test_rdp_accountant (Opacus sums the signed series, our default)', () => {
    // 2250 calls of accountant.step(noise_multiplier=1.5, sample_rate=0.04), epsilon at delta=1e-5 = 7.32911117143
    const acc = new RdpAccountant({ orders: OPACUS_ALPHAS });
    for (let i = 0; i < 2250; i++) acc.compose({ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 1 });
    expect(acc.mechanisms).toEqual([{ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250 }]);
    expect(rel(acc.getEpsilon(1e-5).epsilon, 7.32911117143)).toBeLessThan(1e-9);
    // dp_accounting's absolute series is an upper bound, ~3e-5 higher here
    const abs = epsilonFor({ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250, delta: 1e-5, orders: OPACUS_ALPHAS, fractionalSeries: 'absolute' }).epsilon;
    expect(abs).toBeGreaterThan(7.32911117143);
    expect(rel(abs, 7.32911117143)).toBeLessThan(1e-4);
  });

  it('pytorch/opacus opacus/accountants/analysis/rdp.py module docstring example (published to 3 decimals)', () => {
    // parameters [(1e-5, 1.0, 10), (1e-4, 3.0, 4)], orders 2..32, delta 1e-5 -> (0.336, 23)
    const acc = new RdpAccountant({ orders: range(2, 33) });
    acc.compose({ sampleRate: 1e-5, noiseMultiplier: 1.0, steps: 10 }).compose({ sampleRate: 1e-4, noiseMultiplier: 3.0, steps: 4 });
    const r = acc.getEpsilon(1e-5);
    expect(Math.abs(r.epsilon - 0.336)).toBeLessThan(5e-4);
    expect(r.order).toBe(23);
  });

  it('pytorch/opacus accountants_test.py::test_get_noise_multiplier_rdp_steps / _epochs (Opacus bisects to 0.01 only)', () => {
    // Opacus returns a z with eps < target from a 0.01-wide bracket: 1.3562 (2000 steps) and 1.416 (90 epochs = 2250 steps).
    for (const [steps, published] of [
      [2000, 1.3562],
      [2250, 1.416],
    ] as const) {
      const r = noiseMultiplierFor({ epsilon: 8, sampleRate: 0.04, steps, delta: 1e-5, orders: OPACUS_ALPHAS, fractionalSeries: 'signed' });
      expect(r.epsilon).toBeLessThanOrEqual(8);
      expect(r.noiseMultiplier).toBeLessThanOrEqual(published + 5e-5);
      expect(published - r.noiseMultiplier).toBeLessThan(0.01);
    }
  });
});

describe('classic conversion (published values, from before the improved conversion landed)', () => {
  it.each([
    // tensorflow/privacy compute_dp_sgd_privacy_test.py @ 8d53d8c (parent of be8175b "Improved conversion from Renyi DP to approx DP")
    ['Test0', 60000, 150, 1.3, 15, 1e-5, 0.941870567, 19],
    ['Test1', 100000, 100, 1.0, 30, 1e-7, 1.70928734, 13],
    ['Test2', 100000000, 1024, 0.1, 10, 1e-7, 5907984.81339406, 1.25],
  ] as const)('tensorflow/privacy compute_dp_sgd_privacy_test.py@8d53d8c::test_compute_dp_sgd_privacy %s', (_n, n, batch, z, epochs, delta, eps, order) => {
    const r = epsilonFor({ sampleRate: batch / n, noiseMultiplier: z, steps: Math.ceil((epochs * n) / batch), delta, orders: TFP_ORDERS, conversion: 'classic' });
    expect(rel(r.epsilon, eps)).toBeLessThan(1e-8);
    expect(r.order).toBe(order);
  });

  it('tensorflow/privacy rdp_accountant_test.py@8d53d8c::test_get_privacy_spent_check_target_delta/_eps = Abadi et al. 2016 §3.1 (q=0.01, σ=4, T=10000, δ=1e-5: ε ≈ 1.26)', () => {
    const orders = range(2, 33);
    const rdp = computeRdp({ sampleRate: 0.01, noiseMultiplier: 4, steps: 10000, orders });
    const e = rdpToEpsilon({ orders, rdp, delta: 1e-5, conversion: 'classic' });
    expect(Math.abs(e.epsilon - 1.258575)).toBeLessThan(5e-6); // published to 5 places (rel 4e-6)
    expect(e.order).toBe(20);
    const d = rdpToDelta({ orders, rdp, epsilon: 1.258575, conversion: 'classic' });
    expect(rel(d.delta, 1e-5)).toBeLessThan(1e-4);
    expect(d.order).toBe(20);
  });

  it('tensorflow/privacy rdp_accountant_test.py@8d53d8c::test_check_composition (heterogeneous composition)', () => {
    const orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
    const acc = new RdpAccountant({ orders });
    acc.compose({ sampleRate: 1e-4, noiseMultiplier: 0.4, steps: 40000 }).compose({ sampleRate: 0.1, noiseMultiplier: 2, steps: 100 });
    // Published then with the signed series (the only one at the time); 8.509656 to 5 places, order 2.5.
    const signed = new RdpAccountant({ orders, fractionalSeries: 'signed' });
    signed.compose({ sampleRate: 1e-4, noiseMultiplier: 0.4, steps: 40000 }).compose({ sampleRate: 0.1, noiseMultiplier: 2, steps: 100 });
    const c = signed.getEpsilon(1e-5, 'classic');
    expect(Math.abs(c.epsilon - 8.509656)).toBeLessThan(5e-6);
    expect(c.order).toBe(2.5);
    // HEAD of the same test: the improved conversion is still bounded by that number.
    expect(acc.getEpsilon(1e-5).epsilon).toBeLessThanOrEqual(8.509656);
  });

  it.each([
    // tensorflow/privacy compute_noise_from_budget_test.py::test_compute_noise (classic-era targets; expected noise 1.3, 1.0, 0.1)
    ['Test0', 60000, 150, 0.941870567, 15, 1e-5, 1.3],
    ['Test1', 100000, 100, 1.70928734, 30, 1e-7, 1.0],
    ['Test2', 100000000, 1024, 5907984.81339406, 10, 1e-7, 0.1],
  ] as const)('tensorflow/privacy compute_noise_from_budget_test.py::test_compute_noise %s (classic)', (_n, n, batch, eps, epochs, delta, z) => {
    const r = noiseMultiplierFor({ epsilon: eps, sampleRate: batch / n, steps: Math.ceil((epochs * n) / batch), delta, orders: TFP_ORDERS, conversion: 'classic' });
    expect(rel(r.noiseMultiplier, z)).toBeLessThan(1e-6);
    expect(r.epsilon).toBeLessThanOrEqual(eps);
  });

  it.each([
    // tensorflow/privacy tutorials/README.md "Select Parameters" (MNIST, N=60000, batch 256, δ=1e-5; published to 3 digits),
    // computed as tutorials/mnist_dpsgd_tutorial*.py compute_epsilon does: steps = epochs*N//batch, orders 1.1..10.9, 12..63,
    // the signed series and the classic conversion of that time.
    [1.3, 15, 1.19],
    [1.1, 60, 3.01],
    [0.7, 45, 7.1],
  ] as const)('tensorflow/privacy tutorials/README.md: z=%s, %s epochs → ε %s (classic)', (z, epochs, eps) => {
    const steps = Math.floor((epochs * 60000) / 256);
    const r = epsilonFor({ sampleRate: 256 / 60000, noiseMultiplier: z, steps, delta: 1e-5, orders: OPACUS_ALPHAS, conversion: 'classic', fractionalSeries: 'signed' });
    expect(Math.abs(r.epsilon - eps)).toBeLessThan(0.005);
  });
});
