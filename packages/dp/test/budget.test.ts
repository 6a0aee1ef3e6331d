import { describe, expect, it } from 'vitest';
import { FedtwinError } from '@fedtwin/errors';
import { PrivacyBudget, RdpAccountant, computeRdp, epsilonFor, noiseMultiplierFor, rdpToEpsilon } from '@fedtwin/dp';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof FedtwinError ? e.code : 'not-a-FedtwinError';
  }
  return undefined;
}

describe('PrivacyBudget', () => {
  const round = { sampleRate: 0.25, noiseMultiplier: 1.2, steps: 1 };

  it('spends, reports what remains, refuses a round that would exceed the budget', () => {
    const b = new PrivacyBudget({ epsilon: 4, delta: 1e-5 });
    expect(b.spent().epsilon).toBe(0);
    expect(b.remaining()).toBe(4);
    let rounds = 0;
    while (b.canAfford(round)) {
      const plan = b.wouldSpend(round);
      const after = b.spend(round);
      expect(after.epsilon).toBe(plan.epsilon); // recomputed exactly, not estimated
      rounds++;
    }
    expect(rounds).toBeGreaterThan(0);
    expect(b.mechanisms).toEqual([{ ...round, steps: rounds }]);
    expect(b.spent().epsilon).toBeLessThanOrEqual(4);
    expect(b.spent()).toEqual(epsilonFor({ ...round, steps: rounds, delta: 1e-5 }));
    const next = b.wouldSpend(round);
    expect(next.affordable).toBe(false);
    expect(next.epsilon).toBeGreaterThan(4);
    expect(next.remaining).toBe(0);
    expect(code(() => b.spend(round))).toBe('DP_BUDGET_EXCEEDED');
    expect(b.mechanisms).toEqual([{ ...round, steps: rounds }]); // unchanged after the refusal
  });

  it('round-trips through plain JSON and recomputes the same totals', () => {
    const b = new PrivacyBudget({ epsilon: 10, delta: 1e-6, conversion: 'classic', fractionalSeries: 'signed', orders: [1.5, 2, 4, 8, 16, 32] });
    b.record([round, { sampleRate: 0.1, noiseMultiplier: 0.9, steps: 7 }, round]);
    const json = JSON.parse(JSON.stringify(b.toJSON())) as unknown;
    expect(json).toEqual({
      version: 1,
      epsilon: 10,
      delta: 1e-6,
      conversion: 'classic',
      orders: [1.5, 2, 4, 8, 16, 32],
      fractionalSeries: 'signed',
      mechanisms: [
        { ...round, steps: 2 },
        { sampleRate: 0.1, noiseMultiplier: 0.9, steps: 7 },
      ],
    });
    const back = PrivacyBudget.fromJSON(json);
    expect(back.spent()).toEqual(b.spent());
    expect(back.remaining()).toBe(b.remaining());
    expect(back.toJSON()).toEqual(b.toJSON());
  });

  it('rejects malformed state with DP_BAD_STATE and bad budgets with DP_BAD_ARGUMENT', () => {
    const good = new PrivacyBudget({ epsilon: 1, delta: 1e-5 }).toJSON();
    expect(code(() => PrivacyBudget.fromJSON(null))).toBe('DP_BAD_STATE');
    expect(code(() => PrivacyBudget.fromJSON({ ...good, version: 2 }))).toBe('DP_BAD_STATE');
    expect(code(() => PrivacyBudget.fromJSON({ ...good, mechanisms: [{ sampleRate: 2, noiseMultiplier: 1, steps: 1 }] }))).toBe('DP_BAD_STATE');
    expect(code(() => PrivacyBudget.fromJSON({ ...good, orders: [0.5] }))).toBe('DP_BAD_STATE');
    expect(code(() => PrivacyBudget.fromJSON({ ...good, delta: 0 }))).toBe('DP_BAD_STATE');
    expect(code(() => new PrivacyBudget({ epsilon: 0, delta: 1e-5 }))).toBe('DP_BAD_ARGUMENT');
    expect(code(() => new PrivacyBudget({ epsilon: 1, delta: 1 }))).toBe('DP_BAD_ARGUMENT');
    const b = new PrivacyBudget({ epsilon: 1, delta: 1e-5 });
    expect(code(() => b.record([round, { sampleRate: 0.1, noiseMultiplier: 1, steps: 0 }]))).toBe('DP_BAD_ARGUMENT');
    expect(b.mechanisms).toEqual([]); // all-or-nothing
  });
});

describe('argument validation', () => {
  it.each([
    ['sampleRate > 1', () => computeRdp({ sampleRate: 1.5, noiseMultiplier: 1, steps: 1 })],
    ['negative noise', () => computeRdp({ sampleRate: 0.1, noiseMultiplier: -1, steps: 1 })],
    ['fractional steps', () => computeRdp({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1.5 })],
    ['order ≤ 1', () => computeRdp({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1, orders: [1] })],
    ['order too large', () => computeRdp({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1, orders: [2e6] })],
    ['NaN order', () => computeRdp({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1, orders: [NaN] })],
    ['delta > 1', () => rdpToEpsilon({ orders: [2], rdp: [1], delta: 2 })],
    ['length mismatch', () => rdpToEpsilon({ orders: [2, 3], rdp: [1], delta: 1e-5 })],
    ['unknown conversion', () => rdpToEpsilon({ orders: [2], rdp: [1], delta: 1e-5, conversion: 'x' as 'classic' })],
    ['non-positive target', () => noiseMultiplierFor({ epsilon: 0, sampleRate: 0.1, steps: 1, delta: 1e-5 })],
    ['unreachable classic target', () => noiseMultiplierFor({ epsilon: 1e-3, sampleRate: 1, steps: 1, delta: 1e-5, orders: [2, 3], conversion: 'classic' })],
  ])('%s → DP_BAD_ARGUMENT', (_name, fn) => {
    expect(code(fn)).toBe('DP_BAD_ARGUMENT');
  });

  it('δ = 0 and extreme inputs follow dp_accounting compute_epsilon', () => {
    expect(rdpToEpsilon({ orders: [2, 3], rdp: [0, 0], delta: 0 })).toEqual({ epsilon: 0, order: 0 });
    expect(rdpToEpsilon({ orders: [2, 3], rdp: [0.1, 0.2], delta: 0 }).epsilon).toBe(Infinity);
    expect(rdpToEpsilon({ orders: [2, 3], rdp: [-1e-12, 0.2], delta: 1e-5 })).toEqual({ epsilon: 0, order: 2 }); // negative RDP → 0
    expect(rdpToEpsilon({ orders: [2, 3], rdp: [Infinity, Infinity], delta: 1e-5 }).epsilon).toBe(Infinity);
    expect(rdpToEpsilon({ orders: [2, 3], rdp: [1e-12, 1e-12], delta: 1e-5 }).epsilon).toBe(0); // KL bound: δ² > 1 − e^{−r}
    expect(rdpToEpsilon({ orders: [1.005, 3], rdp: [0.5, 0.5], delta: 1e-5 }).order).toBe(3); // α ≤ 1.01 unused
  });

  it('accountant state is JSON and rebuilds identically', () => {
    const acc = new RdpAccountant().compose({ sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100 }).compose({ sampleRate: 0.02, noiseMultiplier: 1.1, steps: 3 });
    const back = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc)));
    expect(back.rdp()).toEqual(acc.rdp());
    expect(back.getEpsilon(1e-5)).toEqual(acc.getEpsilon(1e-5));
    expect(code(() => RdpAccountant.fromJSON({ mechanisms: 'x' }))).toBe('DP_BAD_STATE');
  });
});
