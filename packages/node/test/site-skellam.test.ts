import { describe, expect, it } from 'vitest';
import { PrivacyBudget, epsilonFor, seededRandom, skellamEpsilon } from '@fedtwin/dp';
import { calibrationRounds, parseManifest, privacyPolicyOf, secureAggregationOf, type Manifest } from '@fedtwin/consortium';
import { DEFAULTS, quantMax } from '@fedtwin/he';
import { checkAffordable, planRound, rebuildSpending, type OwnLedgerEntry } from '../src/privacy.ts';
import { siteSkellamOf, siteSkellamStep, siteSkellamUpdate, siteSumToModel } from '../src/site-noise.ts';

// Issue 13 item 4 for the VAE: site-level DP-FedAvg as integers (clip, conditional randomized rounding, Skellam shares).
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEERS = ['12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU', '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7', '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'];
const manifestOf = (privacy: Record<string, unknown>, sa: Record<string, unknown> = {}): Manifest => parseManifest({
  consortium: 'three', aggregator: AGG, members: PEERS.map((peerId) => ({ peerId })), model: { kind: 'vae', latentDim: 4, hidden: 16, seed: 1 },
  rounds: { total: 20, quorum: 3, minParticipants: 3, deadlineSeconds: 60 }, privacy, secureAggregation: { scheme: 'bfv', clip: 1, ...sa },
});
const D = 3000;
const siteOf = async (m: Manifest) => (await siteSkellamOf(m, { modelValues: D, secureAggregation: secureAggregationOf(m) }))!;

describe('site-level Skellam: calibration and accounting', () => {
  it('a target ε is calibrated on the Skellam accountant over the planned rounds, and the budget re-checks it round by round', async () => {
    const m = manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 });
    const site = await siteOf(m);
    const planned = calibrationRounds(20);
    const eps = skellamEpsilon({ params: site.params, steps: planned, delta: 1e-5 }).epsilon;
    expect(eps).toBeLessThanOrEqual(8);
    expect(eps).toBeGreaterThan(7.99);
    // The Gaussian policy z would over-spend as Skellam (integer orders, the extra term): the calibration is not the Gaussian's.
    const gaussianZ = privacyPolicyOf(m).site!.noiseMultiplier;
    expect(site.noiseMultiplier).toBeGreaterThan(gaussianZ);
    // The mechanism's sensitivity is the rounded vector's: L2 above γC, L1 = L2·min(√d, L2).
    expect(site.params.l2).toBeGreaterThan(site.scale * 0.5);
    expect(site.params.l1).toBeCloseTo(site.params.l2 * Math.min(Math.sqrt(D), site.params.l2), 9);
    // A member's budget composes the same step every round and stays within the target after the planned rounds.
    const policy = privacyPolicyOf(m);
    const budget = new PrivacyBudget({ epsilon: 8, delta: 1e-5 });
    const step = siteSkellamStep(site);
    for (let r = 0; r < planned; r++) {
      const plan = planRound(policy, 100, { batchSize: 32, epochs: 1 }, undefined, undefined, step);
      expect(plan.site).toMatchObject({ sampleRate: 1, steps: 1, skellam: site.params, clip: 0.5, minParticipants: 3 });
      const check = checkAffordable({ site: budget }, plan);
      expect(check.affordable).toBe(true);
      expect(check.spends[0]!.skellam).toEqual(site.params);
      budget.record(plan.site!);
    }
    expect(Math.abs(budget.spent().epsilon - eps)).toBeLessThan(1e-12 * eps);
    // One more round is refused.
    expect(checkAffordable({ site: budget }, planRound(policy, 100, { batchSize: 32, epochs: 1 }, undefined, undefined, step)).affordable).toBe(false);
  });

  it('a fixed z is used as is: the summed noise has std ≥ z·Δ₂, and ε is at least the Gaussian\'s at the same integer orders', async () => {
    const site = await siteOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5, noiseMultiplier: 2 }));
    expect(Math.sqrt(2 * site.params.mu)).toBeGreaterThanOrEqual(2 * site.params.l2);
    expect(site.noiseMultiplier).toBeLessThan(2 * (1 + 1e-6));
    const sk = skellamEpsilon({ params: site.params, steps: 10, delta: 1e-5 }).epsilon;
    const g = epsilonFor({ sampleRate: 1, noiseMultiplier: site.noiseMultiplier, steps: 10, delta: 1e-5, orders: [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 32, 64] }).epsilon;
    expect(sk).toBeGreaterThanOrEqual(g * (1 - 1e-9));
  });

  it('a budget rebuilt from signed Skellam totals replays the same steps; a Gaussian-only replay does not reproduce them', async () => {
    const m = manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 });
    const site = await siteOf(m);
    const step = siteSkellamStep(site);
    const entries: OwnLedgerEntry[] = [1, 2, 3].map((round) => ({ index: round, leafHash: 'x'.repeat(64), type: 'contribution', round, epsilonTotal: skellamEpsilon({ params: site.params, steps: round, delta: 1e-5 }).epsilon, delta: 1e-5 }));
    const input = { policy: privacyPolicyOf(m), rows: 100, training: { batchSize: 32, epochs: 1 }, totalRounds: 20, own: {} };
    expect(rebuildSpending(entries, { ...input, siteStep: step }).privacy.site!.mechanisms).toEqual([{ ...step, steps: 3 }]);
    expect(() => rebuildSpending(entries, input)).toThrowError(/cannot be rebuilt exactly/);
  });

  it('refuses plaintext aggregation and a range the noise cannot fit (typed errors)', async () => {
    const plain = manifestOf({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 });
    expect(await siteSkellamOf(plain, { modelValues: D, secureAggregation: secureAggregationOf(plain) })).toBeUndefined();
    const m = manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 });
    await expect(siteSkellamOf(m, { modelValues: D, secureAggregation: { scheme: 'plaintext' } })).rejects.toMatchObject({ code: 'NODE_PRIVACY_MISMATCH' });
    const sa = secureAggregationOf(m);
    if (sa.scheme !== 'bfv') throw new Error('bfv expected');
    await expect(siteSkellamOf(m, { modelValues: D, secureAggregation: { ...sa, params: { ...sa.params, quantBits: 4 } } })).rejects.toMatchObject({ code: 'NODE_NOISE_RANGE', hint: expect.stringMatching(/quantBits/) });
  });
});

describe('site-level Skellam under secagg (pairwise masking)', () => {
  it('the same integer mechanism as under BFV on the same 16-bit grid: the shares are masked instead of encrypted', async () => {
    // Failed before: siteSkellamOf accepted only BFV, so `sim --dp site --aggregation secagg` stopped every member.
    const masked = manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 }, { scheme: 'secagg', threshold: 3 });
    const encrypted = manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 }); // BFV, default 16-bit quanta
    expect(quantMax(DEFAULTS.quantBits)).toBe(32767); // secagg's DEFAULT_VALUE_BOUND: the grid both schemes carry
    const site = await siteOf(masked);
    expect(site.params).toEqual((await siteOf(encrypted)).params);
    const values = siteSkellamUpdate(new Float32Array(D).fill(0.01), site, seededRandom([5]));
    expect(values.every((v) => Math.abs(v) <= 32767)).toBe(true); // maskInput's bound
  });
});

describe('site-level Skellam: the members\' integers', () => {
  it('three members\' updates are integers within ±quantMax; their sum is exact, and read back in model units it is Σ/γ', async () => {
    const site = await siteOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 }));
    const qmax = quantMax(DEFAULTS.quantBits);
    const deltas = [0, 1, 2].map((k) => Float32Array.from({ length: D }, (_, i) => Math.sin(i + k) * 0.02)); // norm ≈ 0.77 > C: clipped
    const ups = deltas.map((d, k) => siteSkellamUpdate(d, site, seededRandom([k + 1])));
    const sum = new Float64Array(D);
    for (const u of ups) {
      for (let i = 0; i < D; i++) {
        expect(Number.isInteger(u[i]!) && Math.abs(u[i]!) <= qmax).toBe(true);
        sum[i]! += u[i]!;
      }
    }
    // BFV decodes Σ quanta × (heClip / quantMax); the members meant Σ quanta / γ.
    const heUnit = 1 / qmax;
    const decoded = Float64Array.from(sum, (s) => s * heUnit);
    const model = siteSumToModel(decoded, site, heUnit);
    for (let i = 0; i < D; i++) expect(Math.abs(model[i]! - sum[i]! / site.scale)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(sum[i]! / site.scale)));
  });

  it('zero updates: the three shares sum to Sk(μ), variance 2μ (each member draws Sk(μ/3), not Sk(μ))', async () => {
    const site = await siteOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 0.5 }));
    const zero = new Float32Array(D);
    const sum = new Float64Array(D);
    for (let k = 0; k < 3; k++) siteSkellamUpdate(zero, site, seededRandom([100 + k])).forEach((v, i) => { sum[i]! += v; });
    const variance = sum.reduce((a, x) => a + x * x, 0) / D;
    // D = 3000 samples: the sample variance is within ±10 % of 2μ with overwhelming odds; Sk(μ) per member would be 3×.
    expect(Math.abs(variance / (2 * site.params.mu) - 1)).toBeLessThan(0.1);
  });
});
