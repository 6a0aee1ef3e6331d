import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PrivacyBudget, epsilonFor, noiseMultiplierFor } from '@fedtwin/dp';
import { calibrationRounds, manifestHash, parseManifest, privacyPolicyOf, type Manifest } from '@fedtwin/consortium';
import { createTwinVae, encodeTable, inferSchema, initBackend, loadDataset, tableFromCsv } from '@fedtwin/models';
import type { PrivacyPolicy } from '@fedtwin/protocol';
import { checkOwnFloor } from '../src/consortium-check.ts';
import type { NodeContext } from '../src/context.ts';
import { writeSynthetic } from '../src/phases/finish.ts';
import {
  checkAffordable, looserConfig, openBudgets, planRound, rebuildSpending, recordNoiseMultiplier, recordRound, releaseUsesPrivateLayers,
  type OwnLedgerEntry,
} from '../src/privacy.ts';

// Issue 13, the member's side of items 1, 4, 5 and 7 (docs/privacy.md).
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEERS = [
  '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU', '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7',
  '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', '12D3KooWLRPJAA5o6Z6rjvSEPfmPSMxg3BGzyP46rJ6qYt6xXKNF',
  '12D3KooWBnext6Zy3D7VWZD8NxCG8W3vYYEF1Cnw7ZbWhtTr6f6x', '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
  '12D3KooWHRdSuqyPZSFYbJJfR1ozwt2wTjbhrHhG1kGbXwvdvtUU', '12D3KooWSL6ZHrF3NEPLdX3TDvqoCYNt5bhkHTWQZPqx1TWNbQ4R',
  '12D3KooWKcRSqrRBM2cTmu7HTEGnbPbN3xMA2ymEVQfCe5ehxzXk', '12D3KooWAzALbQ3XQ7eVXU6APnvFuRtTRyiSHYBcRjKnpdHAzpdC',
];
const manifestOf = (privacy: Record<string, unknown>, extra: Record<string, unknown> = {}): Manifest => parseManifest({
  consortium: 'ten', aggregator: AGG, members: PEERS.map((peerId) => ({ peerId })),
  rounds: { total: 50, quorum: 5, minParticipants: 3, deadlineSeconds: 60 }, privacy, ...extra,
});
const training = { epochs: 2, batchSize: 32, learningRate: 0.003 };

describe('site-level DP: the member accounts at q = 1', () => {
  it('10 members, 50 rounds, target ε = 8: the z this member plans with spends ≤ 8 at q = 1, even under a policy claiming amplification', () => {
    const policy = privacyPolicyOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 }));
    const claiming: PrivacyPolicy = { ...policy, site: { ...policy.site!, sampleRate: 0.5 } };
    const plan = planRound(claiming, 500, training);
    expect(plan.site!.sampleRate).toBe(1);
    expect(epsilonFor({ sampleRate: 1, noiseMultiplier: plan.site!.noiseMultiplier, steps: 50, delta: 1e-5 }).epsilon).toBeLessThanOrEqual(8);
    // The budget charges every round at q = 1, and all 50 rounds fit in ε = 8.
    const budgets = openBudgets(undefined, claiming, {});
    for (let round = 1; round <= 50; round++) {
      const check = checkAffordable(budgets, plan);
      expect(check.affordable, `round ${round}`).toBe(true);
      expect(check.spends[0]!.sampleRate).toBe(1);
      budgets.site!.record(plan.site!);
    }
    expect(budgets.site!.spent().epsilon).toBeLessThanOrEqual(8);
  });

  it('no node code reads a sampling rate for site-level DP from the policy', async () => {
    const code = (await readFile(new URL('../src/privacy.ts', import.meta.url), 'utf8')).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    expect(code).not.toMatch(/\bs\.sampleRate|site\??\.sampleRate|quorum\s*\/\s*\w/);
    expect(code).toMatch(/sampleRate: SITE_SAMPLE_RATE/);
  });
});

describe('site-level DP with plaintext aggregation', () => {
  it('a member refuses such a manifest before contacting anyone (CONSORTIUM_PRIVACY_TOO_WEAK), even one built in code', () => {
    const valid = manifestOf({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }, { secureAggregation: { scheme: 'plaintext' } });
    for (const mode of ['site', 'both'] as const) {
      const m: Manifest = { ...valid, privacy: { mode, epsilon: 8, delta: 1e-5, clip: 1, ...(mode === 'both' ? { site: { clip: 1 } } : {}) } };
      let err: unknown;
      try { checkOwnFloor({ manifest: m, hash: manifestHash(m) }, PEERS[0]!, {}); } catch (e) { err = e; }
      expect(err, mode).toMatchObject({ code: 'CONSORTIUM_PRIVACY_TOO_WEAK' });
      expect((err as Error).message).toMatch(/needs secure aggregation.*per visible update/);
      expect((err as { hint: string }).hint).toMatch(/bfv/);
    }
    expect(() => checkOwnFloor({ manifest: valid, hash: manifestHash(valid) }, PEERS[0]!, {})).not.toThrow();
  });
});

describe('budgets: the stricter limit wins, calibration keeps headroom', () => {
  const policy = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }));
  const shape = recordRound(400, training);
  const spentTwoRounds = () => {
    const b = new PrivacyBudget({ epsilon: 8, delta: 1e-5 });
    b.record({ ...shape, noiseMultiplier: 1.2, steps: shape.steps * 2 });
    return b.toJSON();
  };

  it('a stricter ε or δ configured after the first run applies; a looser one does not lift the saved budget', () => {
    const saved = { record: spentTwoRounds() };
    const stricter = openBudgets(saved, policy, { epsilon: 4 }).record!;
    expect(stricter.epsilon).toBe(4);
    expect(stricter.mechanisms).toEqual(saved.record.mechanisms);
    const smallerDelta = openBudgets(saved, policy, { delta: 1e-7 }).record!;
    expect(smallerDelta.delta).toBe(1e-7);
    expect(smallerDelta.spent().epsilon).toBeGreaterThan(openBudgets(saved, policy, {}).record!.spent().epsilon);
    const looser = openBudgets(saved, policy, { epsilon: 50 }).record!;
    expect(looser.epsilon).toBe(8);
    expect(looserConfig(saved, policy, { epsilon: 50 })).toEqual([{ mode: 'record', saved: { epsilon: 8, delta: 1e-5 }, configured: { epsilon: 50, delta: 1e-5 } }]);
    expect(looserConfig(saved, policy, { epsilon: 4 })).toEqual([]);
  });

  it('calibration plans the rounds plus spare ones; a stricter budget re-plans what is left on what it leaves', () => {
    const fresh = new PrivacyBudget({ epsilon: 8, delta: 1e-5 });
    const z = recordNoiseMultiplier(policy, shape, 50, fresh);
    expect(calibrationRounds(50)).toBe(55);
    expect(z).toBe(noiseMultiplierFor({ epsilon: 8, sampleRate: shape.sampleRate, steps: shape.steps * 55, delta: 1e-5 }).noiseMultiplier);
    // 20 rounds spent at z, then the member's ε is set to 6: the other 35 planned rounds get more noise and fit.
    const spent = new PrivacyBudget({ epsilon: 6, delta: 1e-5, mechanisms: [{ ...shape, noiseMultiplier: z, steps: shape.steps * 20 }] });
    expect(spent.spent().epsilon).toBeLessThan(6);
    const z6 = recordNoiseMultiplier(policy, shape, 50, spent);
    expect(z6).toBeGreaterThan(z);
    const end = spent.wouldSpend({ ...shape, noiseMultiplier: z6, steps: shape.steps * 35 }).epsilon;
    expect(end).toBeLessThanOrEqual(6);
    expect(end).toBeGreaterThan(6 * (1 - 1e-9));
    // Unchanged, a restarted member keeps the same z (its rounds merge in the accountant).
    const same = new PrivacyBudget({ epsilon: 8, delta: 1e-5, mechanisms: [{ ...shape, noiseMultiplier: z, steps: shape.steps * 20 }] });
    expect(recordNoiseMultiplier(policy, shape, 50, same)).toBe(z);
  });
});

/** What a member signs into its ledger, round by round, as budget.ts and encode.ts do. */
function signedRun(policy: PrivacyPolicy, rows: number, rounds: number, own: { epsilon?: number } = {}): { entries: OwnLedgerEntry[]; state: ReturnType<typeof openBudgets> } {
  const budgets = openBudgets(undefined, policy, own);
  const z = budgets.record ? recordNoiseMultiplier(policy, recordRound(rows, training), 50, budgets.record) : undefined;
  const entries: OwnLedgerEntry[] = [];
  for (let round = 1; round <= rounds; round++) {
    const plan = planRound(policy, rows, training, z);
    const check = checkAffordable(budgets, plan);
    const main = check.spends.find((p) => p.mode === 'record') ?? check.spends[0]!;
    for (const mode of ['record', 'site'] as const) if (plan[mode]) budgets[mode]!.record(plan[mode]!);
    entries.push({ index: 10 * round, leafHash: `${round}`.padStart(64, '0'), type: 'contribution', round: 2 * round, epsilonTotal: main.epsilonTotal, delta: main.delta, time: round });
  }
  return { entries, state: budgets };
}

describe('the budget rebuilt from the member\'s own ledger entries', () => {
  const record = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }));
  const input = (policy: PrivacyPolicy, rows = 400, own: { epsilon?: number } = {}) => ({ policy, rows, training, totalRounds: 50, own });

  it('record level: the same mechanisms, the same ε, the rounds and leaves it signed', () => {
    const run = signedRun(record, 400, 3);
    const r = rebuildSpending(run.entries, input(record));
    expect(r.privacy.record!.mechanisms).toEqual(run.state.record!.mechanisms);
    expect(r.ledgerEpsilon).toBe(run.entries[2]!.epsilonTotal);
    expect(PrivacyBudget.fromJSON(r.privacy.record!).spent().epsilon).toBe(run.state.record!.spent().epsilon);
    expect(r.lastRound).toBe(6);
    expect(r.contributions.map((c) => c.round)).toEqual([2, 4, 6]);
    expect(r.ledgerLeaves).toEqual(run.entries.map((e) => ({ leafHash: e.leafHash, index: e.index })));
    expect(r.privacy.refused).toBeUndefined();
  });

  it('a budget changed since (the config no longer gives that z): the unique z that reproduces the signed totals', () => {
    const run = signedRun(record, 400, 3);
    const r = rebuildSpending(run.entries, input(record, 400, { epsilon: 3 }));
    const [m] = r.privacy.record!.mechanisms;
    const [orig] = run.state.record!.mechanisms;
    expect(Math.abs(m!.noiseMultiplier - orig!.noiseMultiplier) / orig!.noiseMultiplier).toBeLessThan(1e-9);
    expect(m!.steps).toBe(orig!.steps);
    expect(r.privacy.record!.epsilon).toBe(3); // the rebuilt budget is the one configured now
  });

  it('site and both: the manifest\'s site-level mechanism at q = 1, one step per contribution', () => {
    const site = privacyPolicyOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 }));
    const run = signedRun(site, 400, 4);
    expect(rebuildSpending(run.entries, input(site)).privacy.site!.mechanisms).toEqual([{ sampleRate: 1, noiseMultiplier: site.site!.noiseMultiplier, steps: 4 }]);
    const both = privacyPolicyOf(manifestOf({ mode: 'both', epsilon: 8, delta: 1e-5, clip: 1, site: { clip: 1 } }));
    const runBoth = signedRun(both, 400, 2);
    const r = rebuildSpending(runBoth.entries, input(both));
    expect(r.privacy.record!.mechanisms).toEqual(runBoth.state.record!.mechanisms);
    expect(r.privacy.site!.mechanisms).toEqual(runBoth.state.site!.mechanisms);
  });

  it('a standing refusal is restored; entries it cannot reproduce make it refuse to start, never a fresh budget', () => {
    const run = signedRun(record, 400, 2);
    const refusal: OwnLedgerEntry = { index: 99, leafHash: 'f'.repeat(64), type: 'refusal', round: 7, reason: 'record-level privacy budget exhausted' };
    const r = rebuildSpending([...run.entries, refusal], input(record));
    expect(r.privacy.refused).toEqual({ round: 7, code: 'NODE_BUDGET_EXHAUSTED', reason: 'record-level privacy budget exhausted' });
    expect(r.lastRound).toBe(7);
    // The record count changed since (q = 32/400 then, 32/100 now): round 2's total cannot be reproduced.
    expect(() => rebuildSpending(run.entries, input(record, 100))).toThrowError(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
    // A site-level total the manifest's mechanism does not give.
    const site = privacyPolicyOf(manifestOf({ mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 }));
    const forged = signedRun(site, 400, 1).entries.map((e) => ({ ...e, epsilonTotal: e.epsilonTotal! / 2 }));
    expect(() => rebuildSpending(forged, input(site))).toThrowError(/cannot be rebuilt exactly/);
  });
});

describe('site mode: the synthetic release comes from the shared layers only', () => {
  beforeAll(async () => { await initBackend('cpu'); });

  it('site: generated as by the global model (private layers at their seeded start); record and both: with the DP-SGD-trained adapter', async () => {
    expect(releaseUsesPrivateLayers('site')).toBe(false);
    for (const mode of ['record', 'both', 'off'] as const) expect(releaseUsesPrivateLayers(mode)).toBe(true);
    const ds = await loadDataset('breast_cancer_wdbc');
    const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
    const data = encodeTable(tableFromCsv(ds.header, ds.rows.slice(0, 100), schema));
    const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 3 };
    const make = () => createTwinVae({ width: data.width, segments: data.segments, classes: data.classes, latentDim: 2, hidden: 8, seed: 3 });
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-release-'));
    const vae = make();
    try {
      // A trained adapter: anything but its zero start.
      const trained = Float32Array.from({ length: vae.privateSize }, (_, i) => Math.sin(i + 1) * 0.5);
      vae.setPrivateWeights(trained);
      const global = vae.getSharedWeights();
      const csvFor = async (mode: PrivacyPolicy['mode']) => {
        const out = join(dir, `${mode}.csv`);
        const ctx = {
          model: { kind: 'vae', vae, weights: vae }, init: { seed: 1 }, global, data, schema, join: { model }, log: { info: () => undefined, warn: () => undefined, error: () => undefined },
          consortium: { manifest: { training: { ...training, classMix: { '0': 1, '1': 1 } } } }, privacy: { policy: { mode }, budgets: {} }, host: { peerId: 'p' }, state: { version: 0 },
        } as unknown as NodeContext;
        await writeSynthetic(ctx, { rows: 200, out });
        expect(Array.from(vae.getPrivateWeights()), `${mode}: the trained adapter is put back`).toEqual(Array.from(trained));
        return readFile(out, 'utf8');
      };
      // The same generation with the global model alone (a fresh model's private layers).
      const ref = make();
      ref.setSharedWeights(global);
      const fresh = join(dir, 'fresh.csv');
      const refCtx = {
        model: { kind: 'vae', vae: ref, weights: ref }, init: { seed: 1 }, global, data, schema, join: { model }, log: { info: () => undefined, warn: () => undefined, error: () => undefined },
        consortium: { manifest: { training: { ...training, classMix: { '0': 1, '1': 1 } } } }, privacy: { policy: { mode: 'record' }, budgets: {} }, host: { peerId: 'p' }, state: { version: 0 },
      } as unknown as NodeContext;
      await writeSynthetic(refCtx, { rows: 200, out: fresh });
      ref.dispose();
      const globalOnly = await readFile(fresh, 'utf8');
      expect(await csvFor('site')).toBe(globalOnly);
      expect(await csvFor('record')).not.toBe(globalOnly);
      expect(await csvFor('both')).not.toBe(globalOnly);
    } finally {
      vae.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
