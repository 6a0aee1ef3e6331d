import { describe, expect, it } from 'vitest';
import { PrivacyBudget, noiseMultiplierFor } from '@fedtwin/dp';
import { calibrationRounds, parseManifest, privacyPolicyOf } from '@fedtwin/consortium';
import { MIN_NOISE_MULTIPLIER, type TableSchema } from '@fedtwin/models';
import type { JoinResponse, PrivacyPolicy } from '@fedtwin/protocol';
import type { NodeInit } from '../src/api.ts';
import type { NodeContext } from '../src/context.ts';
import { openPrivacy, planOrRefuse } from '../src/phases/budget.ts';
import { loadData } from '../src/phases/join.ts';
import { calibrateRecordNoise, checkAffordable, openBudgets, planRound, rebuildSpending, recordNoiseMultiplier, recordRound, type OwnLedgerEntry } from '../src/privacy.ts';

// Issue 13 item 6, the member's side: with privacy.unitColumn the node takes the id column out of its
// records, DP-SGD samples and clips per unit, and every q it accounts (plan, budget, rebuild) is B/U.
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const A = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const manifestOf = (privacy: Record<string, unknown>) => parseManifest({
  consortium: 'units', aggregator: AGG, members: [{ peerId: A }], rounds: { total: 10, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, privacy,
});
const training = { epochs: 2, batchSize: 8, learningRate: 0.003 };
const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'a', kind: 'numeric', min: 0, max: 10, integer: false, decimals: 1 },
    { name: 'b', kind: 'numeric', min: 0, max: 100, integer: true, decimals: 0 },
    { name: 'y', kind: 'categorical', categories: ['n', 'p'] },
  ],
};
/** 40 rows of 10 patients, 4 visits each, the id column in the middle. */
const csv = () => ({
  header: ['a', 'patient_id', 'b', 'y'],
  rows: Array.from({ length: 40 }, (_, i) => [(i % 10).toFixed(1), `P${i % 10}`, String(i), i % 2 ? 'p' : 'n']),
});
type Event = Record<string, unknown>;
function initWith(events: Event[]): NodeInit {
  const log = (e: Event) => { events.push(e); };
  return { csvPath: 'site.csv', logger: { info: log, warn: log, error: log } } as unknown as NodeInit;
}
const joinWith = (policy: PrivacyPolicy) => ({ schema, privacy: policy }) as unknown as JoinResponse;

describe('patient-level DP in the node', () => {
  const units = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 4, unitColumn: 'patient_id' }));

  it('the record-level round is planned at q = B/U, not B/N', () => {
    expect(recordRound(40, training, 10)).toEqual({ sampleRate: 8 / 10, steps: 2 * 1 });
    expect(recordRound(400, training, 100)).toEqual({ sampleRate: 8 / 100, steps: 2 * 13 });
    expect(recordRound(400, training)).toEqual({ sampleRate: 8 / 400, steps: 2 * 50 });
    const z = recordNoiseMultiplier(units, recordRound(400, training, 100), 10, new PrivacyBudget({ epsilon: 4, delta: 1e-5 }));
    const plan = planRound(units, 400, training, z, 100);
    expect(plan.record).toMatchObject({ sampleRate: 0.08, steps: 26, noiseMultiplier: z, clip: 1 });
    const spend = checkAffordable(openBudgets(undefined, units, {}), plan).spends[0]!;
    expect(spend.sampleRate).toBe(0.08);
  });

  it('a budget rebuilt from the ledger replays at q = B/U', () => {
    const budgets = openBudgets(undefined, units, {});
    const z = recordNoiseMultiplier(units, recordRound(400, training, 100), 10, budgets.record!);
    const entries: OwnLedgerEntry[] = [];
    for (let round = 1; round <= 3; round++) {
      const plan = planRound(units, 400, training, z, 100);
      const s = checkAffordable(budgets, plan).spends[0]!;
      budgets.record!.record(plan.record!);
      entries.push({ index: round, leafHash: String(round).padStart(64, '0'), type: 'contribution', round, epsilonTotal: s.epsilonTotal, delta: s.delta });
    }
    const input = { policy: units, rows: 400, training, totalRounds: 10, own: {} };
    const r = rebuildSpending(entries, { ...input, unitCount: 100 });
    expect(r.privacy.record!.mechanisms).toEqual([{ sampleRate: 0.08, noiseMultiplier: z, steps: 3 * 26 }]);
    // Taken at q = B/N the same entries are not reproduced: never a fresh (or wrong) budget.
    expect(() => rebuildSpending(entries, input)).toThrowError(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
  });

  it('loadData takes the unit column out before the schema: one unit index per row, the model input without the id', () => {
    const events: Event[] = [];
    const loaded = loadData(initWith(events), joinWith(units), csv());
    expect(loaded.unitCount).toBe(10);
    expect([...loaded.units!.slice(0, 12)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    expect(loaded.data.rows).toBe(40);
    expect(loaded.data.width).toBe(2); // a and b; the target is the condition, the id is gone
    expect(loaded.data.segments.map((s) => s.column)).toEqual(['a', 'b']);
    expect(events.find((e) => e.event === 'data-loaded')).toMatchObject({ rows: 40, units: 10 });
    // Without a unit column the rows are the units, and the id column is not in the schema.
    const rowLevel = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 4 }));
    expect(() => loadData(initWith([]), joinWith(rowLevel), csv())).toThrowError(expect.objectContaining({ code: 'DATA_EXTRA_COLUMN' }));
    const plain = { header: ['a', 'b', 'y'], rows: csv().rows.map((r) => [r[0]!, r[2]!, r[3]!]) };
    const l2 = loadData(initWith([]), joinWith(rowLevel), plain);
    expect(l2.units).toBeUndefined();
    expect(l2.unitCount).toBeUndefined();
  });

  it('a unit column missing from the CSV is a clear error naming it', () => {
    const plain = { header: ['a', 'b', 'y'], rows: csv().rows.map((r) => [r[0]!, r[2]!, r[3]!]) };
    let err: unknown;
    try { loadData(initWith([]), joinWith(units), plain); } catch (e) { err = e; }
    expect(err).toMatchObject({ code: 'DATA_MISSING_COLUMN', details: { column: 'patient_id' } });
    expect((err as Error).message).toMatch(/site\.csv: unit column "patient_id" is missing/);
    expect((err as { hint: string }).hint).toMatch(/privacy\.unitColumn/);
  });
});

describe('calibration never goes below the sampler\'s floor', () => {
  it('a large ε target that calibrates to z < 0.5 uses z = 0.5 (spending less than the target), and says so', () => {
    const policy = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 200 }));
    const shape = recordRound(40, training);
    const budget = new PrivacyBudget({ epsilon: 200, delta: 1e-5 });
    const raw = noiseMultiplierFor({ epsilon: 200, sampleRate: shape.sampleRate, steps: shape.steps * calibrationRounds(10), delta: 1e-5 }).noiseMultiplier;
    expect(raw).toBeLessThan(MIN_NOISE_MULTIPLIER);
    const c = calibrateRecordNoise(policy, shape, 10, budget);
    expect(c).toMatchObject({ noiseMultiplier: MIN_NOISE_MULTIPLIER, calibrated: raw });
    expect(recordNoiseMultiplier(policy, shape, 10, budget)).toBe(MIN_NOISE_MULTIPLIER);
    // Always safe: the planned rounds at the floor spend less than the target.
    expect(budget.wouldSpend({ ...shape, noiseMultiplier: MIN_NOISE_MULTIPLIER, steps: shape.steps * calibrationRounds(10) }).epsilon).toBeLessThan(200);
    // A target the floor does not bind is calibrated exactly as before.
    const modest = calibrateRecordNoise(privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 4 })), shape, 10, new PrivacyBudget({ epsilon: 4, delta: 1e-5 }));
    expect(modest.noiseMultiplier).toBe(modest.calibrated);
    expect(modest.noiseMultiplier).toBeGreaterThan(MIN_NOISE_MULTIPLIER);
  });

  it('the member plans its rounds at the floor and logs noise-floor with the ε it will spend', async () => {
    const events: Event[] = [];
    const init = initWith(events);
    const policy = privacyPolicyOf(manifestOf({ mode: 'record', epsilon: 200 }));
    const join = { ...joinWith(policy), totalRounds: 10 } as JoinResponse;
    const privacy = openPrivacy(init, join, { version: 0, hash: '', lastRound: 0, contributions: [], losses: [] });
    const ctx = { init, log: init.logger, privacy, join, model: { kind: 'vae' }, data: { rows: 40 }, units: undefined, unitCount: undefined, state: {} } as unknown as NodeContext;
    const task = { status: 'open', round: 1, training } as unknown as Parameters<typeof planOrRefuse>[1];
    const planned = await planOrRefuse(ctx, task);
    expect(planned!.plan.record!.noiseMultiplier).toBe(MIN_NOISE_MULTIPLIER);
    const floor = events.find((e) => e.event === 'noise-floor')!;
    expect(floor).toMatchObject({ noiseMultiplier: MIN_NOISE_MULTIPLIER, budget: 200 });
    expect(floor.calibrated as number).toBeLessThan(MIN_NOISE_MULTIPLIER);
    expect(floor.plannedEpsilon as number).toBeLessThan(200);
    // Once per run: the next round reuses it without a second warning.
    await planOrRefuse(ctx, { ...task, round: 2 });
    expect(events.filter((e) => e.event === 'noise-floor')).toHaveLength(1);
  });
});
