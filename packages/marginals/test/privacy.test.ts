import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, RdpAccountant, computeRdp } from '@fedtwin/dp';
import { MU_GRID, accountMechanisms, calibrateMst, rhoOf, zcdpEpsilon } from '../src/index.ts';
import { skellamMechanism } from '@fedtwin/dp';

// Reference ρ: the largest ρ whose zCDP → (ε, δ) conversion with the optimal *continuous* order gives
// the target, ε(ρ) = min_{α>1} αρ + log(1 − 1/α) − (log δ + log α)/(α − 1) (Canonne, Kamath & Steinke
// 2020, Prop. 12 — the 'improved' conversion of @fedtwin/dp evaluated at every α, not just its grid).
// Produced with python3 (numpy 2.4.6, scipy 1.17.1):
//   f = lambda a: a*rho + np.log1p(-1/a) - (np.log(delta) + np.log(a))/(a - 1)
//   eps = minimize_scalar(f, bounds=(1.0001, 2000), method='bounded', options={'xatol': 1e-12}).fun
//   rho = brentq(lambda r: eps(r, 1e-5) - target, 1e-6, 100, xtol=1e-15)
// → target 8: ρ = 1.2297145257614313 (optimal α 3.874); target 1: ρ = 0.030556595197639633 (α 17.81).
const REF_RHO: Record<number, number> = { 8: 1.2297145257614313, 1: 0.030556595197639633 };

describe('privacy accounting', () => {
  it('calibrates ρ for (ε, δ) within the grid loss of the continuous-order reference, never above it', () => {
    for (const epsilon of [1, 8]) {
      const plan = calibrateMst({ epsilon, delta: 1e-5, columns: 31, oneWayCount: 121 });
      expect(plan.rho).toBeLessThanOrEqual(REF_RHO[epsilon]);
      expect(plan.rho).toBeGreaterThan(REF_RHO[epsilon] * (1 - 1e-3));
      // The plan spends its ε (to 1e-9) and not more, composed by @fedtwin/dp's RDP accountant.
      const spent = accountMechanisms(plan.mechanisms, 1e-5);
      expect(spent.epsilon).toBeLessThanOrEqual(epsilon);
      expect(spent.epsilon).toBeGreaterThan(epsilon * (1 - 1e-9));
      expect(spent.rho).toBeCloseTo(plan.rho, 12);
      // The classic conversion ρ + 2√(ρ log 1/δ) is looser: at the same ρ it claims more than ε.
      expect(plan.rho + 2 * Math.sqrt(plan.rho * Math.log(1e5))).toBeGreaterThan(epsilon);
    }
  });

  it('splits ρ as documented: σ = Δ√(count/(2ρ_part)), EM ε = √(8ρ_part/count), each part recorded as a q = 1 Gaussian', () => {
    const plan = calibrateMst({ epsilon: 8, delta: 1e-5, columns: 9, oneWayCount: 30, selection: 'exponential', split: { oneWay: 2, select: 1, edges: 1 } });
    const r = plan.rho;
    expect(plan.oneWay.sigma).toBeCloseTo(Math.sqrt(30 / (2 * 0.5 * r)), 10);
    expect(plan.edges.sigma).toBeCloseTo(Math.sqrt(8 / (2 * 0.25 * r)), 10);
    expect(plan.select.kind === 'exponential' && plan.select.epsilon).toBeCloseTo(Math.sqrt((8 * 0.25 * r) / 8), 10);
    expect(plan.mechanisms).toEqual([
      { sampleRate: 1, noiseMultiplier: plan.oneWay.sigma, steps: 30 },
      { sampleRate: 1, noiseMultiplier: plan.select.kind === 'exponential' ? 2 / plan.select.epsilon : NaN, steps: 8 },
      { sampleRate: 1, noiseMultiplier: plan.edges.sigma, steps: 8 },
    ]);
    expect(rhoOf(plan.mechanisms)).toBeCloseTo(r, 12);
    // @fedtwin/dp's RDP of a q = 1 Gaussian is α/(2z²): the composition is RDP α·ρ at every order.
    const rdp = new RdpAccountant({ mechanisms: plan.mechanisms }).rdp();
    DEFAULT_ORDERS.forEach((a, k) => expect(rdp[k]).toBeCloseTo(a * r, 9));
    expect(computeRdp({ sampleRate: 1, noiseMultiplier: 2.5, steps: 3, orders: [2, 8] })).toEqual([(3 * 2) / (2 * 6.25), (3 * 8) / (2 * 6.25)]);
    expect(zcdpEpsilon(r, 1e-5).epsilon).toBeCloseTo(accountMechanisms(plan.mechanisms, 1e-5).epsilon, 9);
  });

  it("'measured' selection is priced as one Gaussian per column pair; patient-level sensitivity scales σ", () => {
    const rec = calibrateMst({ epsilon: 8, delta: 1e-5, columns: 31 });
    expect(rec.selection).toBe('measured');
    expect(rec.select).toEqual({ kind: 'measured', count: 465, sigma: expect.any(Number) });
    const patient = calibrateMst({ epsilon: 8, delta: 1e-5, columns: 31, sensitivity: 3 });
    expect(patient.oneWay.sigma / rec.oneWay.sigma).toBeCloseTo(3, 12);
    // Same noise multipliers (σ/Δ), so the same ε.
    patient.mechanisms.forEach((m, i) => expect(m.noiseMultiplier).toBeCloseTo(rec.mechanisms[i].noiseMultiplier, 12));
  });

  it('ε = ∞ is DP off; bad arguments have stable codes', () => {
    const off = calibrateMst({ epsilon: Infinity, delta: 1e-5, columns: 5 });
    expect(off.mechanisms).toEqual([]);
    expect([off.oneWay.sigma, off.edges.sigma]).toEqual([0, 0]);
    for (const bad of [{ epsilon: 0 }, { delta: 0 }, { columns: 1 }, { split: { oneWay: -1 } }, { oneWayCount: 2 }, { selection: 'greedy' }]) {
      expect(() => calibrateMst({ epsilon: 8, delta: 1e-5, columns: 5, ...(bad as object) })).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
    }
    expect(() => rhoOf([{ sampleRate: 0.5, noiseMultiplier: 1, steps: 1 }])).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  it('Skellam noise: every measured step is a Skellam step { μ on the 1/1024 grid, l1 = l2 = Δ } that meets ε, tight (1 % less μ misses it), at least the Gaussian plan\'s variance', () => {
    for (const [epsilon, oneWayCount, columns] of [[8, 121, 31], [1, 121, 31], [8, 26, 9]] as const) {
      const g = calibrateMst({ epsilon, delta: 1e-5, columns, oneWayCount });
      const p = calibrateMst({ epsilon, delta: 1e-5, columns, oneWayCount, noise: 'skellam' });
      expect(p.noise).toBe('skellam');
      const steps = [p.oneWay, p.select, p.edges] as Array<{ count: number; sigma: number; mu?: number }>;
      const gs = [g.oneWay, g.select, g.edges] as Array<{ sigma: number }>;
      steps.forEach((s, i) => {
        expect(Number.isInteger(s.mu! * MU_GRID)).toBe(true);
        expect(s.sigma).toBe(Math.sqrt(2 * s.mu!));
        expect(2 * s.mu!).toBeGreaterThanOrEqual(gs[i]!.sigma ** 2);
        expect(p.mechanisms[i]).toEqual(skellamMechanism({ mu: s.mu!, l1: 1, l2: 1, steps: s.count }));
      });
      const spent = accountMechanisms(p.mechanisms, 1e-5).epsilon;
      expect(spent).toBeLessThanOrEqual(epsilon);
      const less = steps.map((s) => skellamMechanism({ mu: s.mu! * 0.99, l1: 1, l2: 1, steps: s.count }));
      expect(accountMechanisms(less, 1e-5).epsilon).toBeGreaterThan(epsilon);
    }
    expect(() => calibrateMst({ epsilon: 8, delta: 1e-5, columns: 3, sensitivity: 1.5, noise: 'skellam' })).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});
