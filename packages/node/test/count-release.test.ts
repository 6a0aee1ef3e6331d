import { describe, expect, it } from 'vitest';
import { PrivacyBudget, epsilonFor, noiseMultiplierFor, RdpAccountant } from '@fedtwin/dp';
import { DEFAULT_COUNT_NOISE, calibrationRounds, parseManifest, privacyPolicyOf, type Manifest } from '@fedtwin/consortium';
import { dpPlan } from '@fedtwin/models';
import type { PrivacyPolicy } from '@fedtwin/protocol';
import {
  calibrateRecordNoise, checkAffordable, countRelease, countSteps, noisyCount, openBudgets, planRound, rebuildSpending, recordRound, releasesCount,
  type OwnLedgerEntry, type PrivacyState,
} from '../src/privacy.ts';

// Issue 13 item 3, the record count N: under record-level DP-SGD q = min(1, B/Ñ) with Ñ a Gaussian count released
// once and charged (docs/privacy.md, "The record count"). The end-to-end check is count-release-federation.test.ts.
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEER = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const manifestOf = (privacy: Record<string, unknown>, extra: Record<string, unknown> = {}): Manifest => parseManifest({
  consortium: 'one', aggregator: AGG, members: [{ peerId: PEER }],
  rounds: { total: 50, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, privacy, ...extra,
});
const training = { epochs: 2, batchSize: 32, learningRate: 0.003 };
const policy = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }));

function pmfOfQ(n: number, sigma: number, batchSize: number): Map<number, number> {
  // P(q) over Z ~ N(0, 1) on a fine grid: what an observer of q learns about a member with n records.
  const out = new Map<number, number>();
  const dz = 1e-3;
  for (let z = -12; z <= 12; z += dz) {
    const w = Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI) * dz;
    const q = recordRound(noisyCount(n, sigma, z), { batchSize, epochs: 1 }).sampleRate;
    out.set(q, (out.get(q) ?? 0) + w);
  }
  return out;
}

describe('the attack: N from q', () => {
  it('before: q = B/N is a deterministic function of N (two sites differing by one record are told apart with certainty); after: q derives from Ñ, whose distribution barely moves with N', () => {
    // What the accountant charged before the DP count: q = B/N, exactly invertible.
    for (const n of [100, 101, 437]) expect(training.batchSize / recordRound(n, training).sampleRate).toBe(n);
    // Now: the q an observer sees is min(1, B/Ñ), Ñ = max(1, round(N + σZ)). For N and N + 1 the q distributions
    // have the same support and differ in total variation by ≈ 1/(σ√(2π)) ≈ 0.02 at σ = 20, never 1.
    const a = pmfOfQ(100, DEFAULT_COUNT_NOISE, training.batchSize);
    const b = pmfOfQ(101, DEFAULT_COUNT_NOISE, training.batchSize);
    let tv = 0;
    for (const q of new Set([...a.keys(), ...b.keys()])) tv += Math.abs((a.get(q) ?? 0) - (b.get(q) ?? 0)) / 2;
    expect(tv).toBeLessThan(0.025);
    expect(tv).toBeGreaterThan(0.015);
    // No single q value is likely enough to name N: the most likely Ñ has probability ≈ 0.02.
    expect(Math.max(...a.values())).toBeLessThan(0.025);
  });

  it('the count: an integer ≥ 1, N itself when the draw is 0, clamped at 1 for a huge negative draw', () => {
    expect(noisyCount(100, 20, 0)).toBe(100);
    expect(noisyCount(100, 20, 0.51)).toBe(110);
    expect(noisyCount(100, 20, -1.26)).toBe(75);
    expect(noisyCount(3, 20, -5)).toBe(1);
    expect(() => noisyCount(0, 20, 0)).toThrow(expect.objectContaining({ code: 'NODE_PRIVACY_MISMATCH' }));
    expect(() => noisyCount(10, 20, Number.NaN)).toThrow(expect.objectContaining({ code: 'NODE_PRIVACY_MISMATCH' }));
  });

  it('only record-level DP-SGD releases a count: not the marginals generator, not site-level DP, not DP off', () => {
    expect(releasesCount(policy, 'vae')).toBe(true);
    expect(releasesCount(policy, 'marginals')).toBe(false);
    expect(releasesCount(privacyPolicyOf(manifestOf({ mode: 'off' })), 'vae')).toBe(false);
    expect(releasesCount(privacyPolicyOf(manifestOf({ mode: 'site', epsilon: 8, clip: 1 })), 'vae')).toBe(false);
    expect(releasesCount(privacyPolicyOf(manifestOf({ mode: 'both', epsilon: 8, clip: 1, site: { clip: 1 } })), 'vae')).toBe(true);
  });
});

describe('the count release in the manifest', () => {
  it('σ_N defaults to 20 and is pinned in the record-level policy; an explicit value is validated and in the hash', () => {
    expect(policy.record!.countNoise).toBe(20);
    expect(privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 8, clip: 1, countNoise: 50 })).record!.countNoise).toBe(50);
    expect(() => manifestOf({ mode: 'record', epsilon: 8, clip: 1, countNoise: 0 })).toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
    expect(() => manifestOf({ mode: 'site', epsilon: 8, clip: 1, countNoise: 20 })).toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
    expect(() => manifestOf({ mode: 'record', epsilon: 8, clip: 1, countNoise: 20 }, { model: { kind: 'marginals' }, rounds: { total: 3, quorum: 1, minParticipants: 1, deadlineSeconds: 60 } }))
      .toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
  });
});

describe('accounting the count release', () => {
  const delta = 1e-5;
  it('costs ε = 0.1816 alone at σ = 20, δ = 1e-5 (a Gaussian of sensitivity 1), and less composed with DP-SGD', () => {
    const alone = epsilonFor({ ...countRelease(20), delta }).epsilon;
    expect(alone).toBeCloseTo(0.18162, 5);
    // A member with N = 400 at the defaults above: 50 rounds at the z an ε = 8 target gives without the count.
    const shape = recordRound(400, training);
    const z = noiseMultiplierFor({ epsilon: 8, sampleRate: shape.sampleRate, steps: shape.steps * calibrationRounds(50), delta }).noiseMultiplier;
    const rounds = { ...shape, noiseMultiplier: z, steps: shape.steps * calibrationRounds(50) };
    const without = new RdpAccountant({ mechanisms: [rounds] }).getEpsilon(delta).epsilon;
    const withCount = new RdpAccountant({ mechanisms: [countRelease(20), rounds] }).getEpsilon(delta).epsilon;
    expect(without).toBeLessThanOrEqual(8);
    expect(withCount).toBeGreaterThan(without);
    expect(withCount - without).toBeLessThan(0.1);
  });

  it('calibration leaves room for it: the planned rounds plus the count meet the target, and are not counted as a round', () => {
    const nTilde = 413;
    const shape = recordRound(nTilde, training);
    const budget = new PrivacyBudget({ epsilon: 8, delta });
    const before = calibrateRecordNoise(policy, shape, 50, budget).noiseMultiplier;
    budget.record(countRelease(20));
    const state: PrivacyState = { count: { estimate: nTilde, noiseMultiplier: 20 } };
    const z = calibrateRecordNoise(policy, shape, 50, budget, countSteps(state)).noiseMultiplier;
    expect(z).toBeGreaterThan(before);
    const planned = budget.wouldSpend({ ...shape, noiseMultiplier: z, steps: shape.steps * calibrationRounds(50) }).epsilon;
    expect(planned).toBeLessThanOrEqual(8);
    expect(planned).toBeGreaterThan(8 * (1 - 1e-9));
    // Counting the release's one step as a spent round would plan one round fewer (and a smaller z).
    expect(calibrateRecordNoise(policy, shape, 50, budget, 0).noiseMultiplier).toBeLessThan(z);
  });

  it('the trainer derives q and its divisor from the public population, and refuses a q that does not match it', () => {
    expect(dpPlan(32, { population: 413 }, 400)).toEqual({ sampleRate: 32 / 413, expectedBatch: 32 });
    expect(dpPlan(32, { population: 20 }, 400)).toEqual({ sampleRate: 1, expectedBatch: 20 });
    expect(dpPlan(32, {}, 400)).toEqual({ sampleRate: 32 / 400, expectedBatch: 32 });
    expect(() => dpPlan(32, { population: 413, sampleRate: 32 / 400 }, 400)).toThrow(expect.objectContaining({ code: 'MODELS_DP_INCONSISTENT' }));
  });
});

/** What a member signs, round by round, as budget.ts (ensureCountEstimate, planOrRefuse) and encode.ts do. */
function signedRun(p: PrivacyPolicy, nTilde: number, rounds: number): { entries: OwnLedgerEntry[]; budget: PrivacyBudget } {
  const budgets = openBudgets(undefined, p, {});
  budgets.record!.record(countRelease(p.record!.countNoise!));
  const state: PrivacyState = { count: { estimate: nTilde, noiseMultiplier: p.record!.countNoise! } };
  const z = calibrateRecordNoise(p, recordRound(nTilde, training), 50, budgets.record!, countSteps(state)).noiseMultiplier;
  const entries: OwnLedgerEntry[] = [];
  for (let round = 1; round <= rounds; round++) {
    const plan = planRound(p, nTilde, training, z);
    const main = checkAffordable(budgets, plan).spends[0]!;
    budgets.record!.record(plan.record!);
    entries.push({ index: 10 * round, leafHash: `${round}`.padStart(64, '0'), type: 'contribution', round, epsilonTotal: main.epsilonTotal, delta: main.delta, countEstimate: nTilde, countNoise: 20, time: round });
  }
  return { entries, budget: budgets.record! };
}

describe('the count rebuilt from the ledger', () => {
  const input = (rows: number) => ({ policy, rows, training, totalRounds: 50, own: {} });

  it('recovers Ñ from the entries, charges its release once and replays every signed total, whatever the CSV holds now', () => {
    const run = signedRun(policy, 413, 3);
    for (const rows of [400, 401, 57]) {
      const r = rebuildSpending(run.entries, input(rows));
      expect(r.privacy.count).toEqual({ estimate: 413, noiseMultiplier: 20 });
      expect(r.privacy.record!.mechanisms).toEqual(run.budget.mechanisms);
      expect(r.privacy.record!.mechanisms.filter((m) => m.sampleRate === 1 && m.noiseMultiplier === 20)).toEqual([countRelease(20)]);
      expect(PrivacyBudget.fromJSON(r.privacy.record!).spent().epsilon).toBe(run.budget.spent().epsilon);
      expect(r.contributions.map((c) => c.privacy![0]!.sampleRate)).toEqual([32 / 413, 32 / 413, 32 / 413]);
    }
  });

  it('a member that lost its state after one contribution rebuilds from that one entry (no free z to confirm: Ñ and the calibration fix it)', () => {
    const run = signedRun(policy, 413, 1);
    const r = rebuildSpending(run.entries, input(999));
    expect(r.privacy.count!.estimate).toBe(413);
    expect(r.privacy.record!.mechanisms).toEqual(run.budget.mechanisms);
  });

  it('entries naming two different counts, or a forged total, are unrecoverable, never a fresh budget', () => {
    const run = signedRun(policy, 413, 2);
    const two = [run.entries[0]!, { ...run.entries[1]!, countEstimate: 414 }];
    expect(() => rebuildSpending(two, input(400))).toThrow(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
    // Ñ without its charge: a total the count release is missing from does not replay.
    const uncharged = run.entries.map((e) => ({ ...e, epsilonTotal: e.epsilonTotal! * 0.97 }));
    expect(() => rebuildSpending(uncharged, input(400))).toThrow(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
  });

  it('entries from before the DP count (no countEstimate) rebuild as before, at the current N, with no count in the state', () => {
    const budgets = openBudgets(undefined, policy, {});
    const shape = recordRound(400, training);
    const z = calibrateRecordNoise(policy, shape, 50, budgets.record!).noiseMultiplier;
    const entries: OwnLedgerEntry[] = [];
    for (let round = 1; round <= 2; round++) {
      const plan = planRound(policy, 400, training, z);
      const main = checkAffordable(budgets, plan).spends[0]!;
      budgets.record!.record(plan.record!);
      entries.push({ index: round, leafHash: `${round}`.padStart(64, '0'), type: 'contribution', round, epsilonTotal: main.epsilonTotal, delta: main.delta });
    }
    const r = rebuildSpending(entries, input(400));
    expect(r.privacy.count).toBeUndefined();
    expect(r.privacy.record!.mechanisms).toEqual(budgets.record!.mechanisms);
  });
});
