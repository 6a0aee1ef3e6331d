import { describe, expect, it } from 'vitest';
import { PrivacyBudget } from '@fedtwin/dp';
import { calibrationRounds, parseManifest, privacyPolicyOf } from '@fedtwin/consortium';
import { columnRelease } from '@fedtwin/marginals';
import { loadDatasetTable } from '@fedtwin/models';
import { calibrateRecordNoise, checkAffordable, countRelease, countSteps, openBudgets, planRound, rebuildSpending, recordRound, type OwnLedgerEntry } from '../src/privacy.ts';

// A calibrating VAE consortium (model.calibrate): round 1 is the column release (Skellam steps at q = 1), then DP-SGD
// calibrated on what the release left. The member's budget must hold both, and a member that lost its state must
// rebuild both from its own signed entries. The federation end to end: test/e2e-sim.test.ts.
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEER = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const TOTAL_ROUNDS = 6; // the release, then 5 training rounds
const manifest = parseManifest({
  consortium: 'one', aggregator: AGG, members: [{ peerId: PEER }], model: { kind: 'vae', latentDim: 8, hidden: 64, seed: 1, calibrate: true },
  rounds: { total: TOTAL_ROUNDS, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
});
const policy = privacyPolicyOf(manifest);
const training = { epochs: 2, batchSize: 32, learningRate: 0.003 };
const N_TILDE = 413;

async function signedRun(trainingRounds: number): Promise<{ entries: OwnLedgerEntry[]; budget: PrivacyBudget; release: NonNullable<ReturnType<typeof columnRelease>['mechanism']> }> {
  const schema = (await loadDatasetTable('breast_cancer_wdbc')).schema;
  const release = columnRelease(schema, { epsilon: 8, delta: 1e-5 }).mechanism!;
  const budgets = openBudgets(undefined, policy, {});
  budgets.record!.record(countRelease(policy.record!.countNoise!));
  const entries: OwnLedgerEntry[] = [];
  const sign = (round: number, plan: Parameters<typeof checkAffordable>[1]) => {
    const main = checkAffordable(budgets, plan).spends[0]!;
    budgets.record!.record(plan.record!);
    entries.push({ index: 10 * round, leafHash: `${round}`.padStart(64, '0'), type: 'contribution', round, epsilonTotal: main.epsilonTotal, delta: main.delta, countEstimate: N_TILDE, countNoise: policy.record!.countNoise!, time: round });
  };
  sign(1, { record: { ...release, clip: 1 } });
  // As budget.ts does: DP-SGD's rounds are the federation's less the release, whose steps are not rounds.
  const state = { count: { estimate: N_TILDE, noiseMultiplier: policy.record!.countNoise! } };
  const z = calibrateRecordNoise(policy, recordRound(N_TILDE, training), TOTAL_ROUNDS - 1, budgets.record!, countSteps(state) + release.steps).noiseMultiplier;
  for (let round = 2; round <= 1 + trainingRounds; round++) sign(round, planRound(policy, N_TILDE, training, z));
  return { entries, budget: budgets.record!, release };
}

describe('the column release in a member\'s record budget', () => {
  it('DP-SGD is calibrated on what the release left: the planned rounds together spend the target, no more', async () => {
    const planned = await signedRun(calibrationRounds(TOTAL_ROUNDS - 1));
    expect(planned.budget.spent().epsilon).toBeLessThanOrEqual(8 + 1e-9);
    expect(planned.budget.spent().epsilon).toBeGreaterThan(7.99);
    // The release is a real share of it, charged once at q = 1.
    const releaseOnly = new PrivacyBudget({ epsilon: 8, delta: 1e-5, mechanisms: [countRelease(policy.record!.countNoise!), planned.release] }).spent().epsilon;
    expect(releaseOnly).toBeGreaterThan(2);
    expect(planned.budget.mechanisms.filter((m) => m.skellam)).toEqual([planned.release]);
  });

  it('a member that lost its state rebuilds the release and its DP-SGD rounds exactly from its signed entries', async () => {
    const run = await signedRun(3);
    const input = { policy, rows: 400, training, totalRounds: TOTAL_ROUNDS - 1, own: {}, releaseStep: run.release };
    const r = rebuildSpending(run.entries, input);
    expect(r.privacy.record!.mechanisms).toEqual(run.budget.mechanisms);
    expect(PrivacyBudget.fromJSON(r.privacy.record!).spent().epsilon).toBe(run.budget.spent().epsilon);
    expect(r.contributions.map((c) => c.privacy![0]!.sampleRate)).toEqual([1, 32 / N_TILDE, 32 / N_TILDE, 32 / N_TILDE]);
    // Without the release's mechanism the first entry has no replay that the next one confirms: unrecoverable, never fresh.
    expect(() => rebuildSpending(run.entries, { ...input, releaseStep: undefined })).toThrow(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
  });
});

describe('model.calibrate in the manifest', () => {
  const base = {
    consortium: 'one', aggregator: AGG, members: [{ peerId: PEER }], model: { kind: 'vae', latentDim: 8, hidden: 64, seed: 1, calibrate: true },
    rounds: { total: TOTAL_ROUNDS, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
  };
  it('is refused where the release would not be record-level counts: site-level DP, a unit column, a single round', () => {
    expect(() => parseManifest({ ...base, privacy: { mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 } })).toThrow(/model\.calibrate|mode "site"/);
    expect(() => parseManifest({ ...base, privacy: { ...base.privacy, unitColumn: 'patient' } })).toThrow(/unitColumn/);
    expect(() => parseManifest({ ...base, rounds: { ...base.rounds, total: 1 } })).toThrow(/at least 2/);
    expect(parseManifest({ ...base, privacy: { mode: 'off' } }).model).toMatchObject({ kind: 'vae', calibrate: true });
  });
});
