// Count (the marginals generator's "train"): this round's request, derived from the counts released so far
// (the global this member holds), this site's exact counts, its noise share, in wire units. Only the noisy,
// then encrypted, vector leaves the member; the exact counts and how many cells were capped stay here.
import { FedtwinError } from '@fedtwin/errors';
import type { TaskResponse } from '@fedtwin/protocol';
import type { NodeContext } from '../context.ts';
import { osRandom, seededRandom, type RandomSource } from '@fedtwin/dp';
import { columnReleaseCounts } from '@fedtwin/marginals';
import { muFor, releaseUnits, unitsFor, vaeReleaseOf, type MarginalsMember } from '../member-model.ts';
import type { RoundPlan } from '../privacy.ts';
import { skellamCountShare } from '../marginals/noise.ts';
import { toWire, type CountUnits } from '../marginals/wire.ts';
import { cpuMsBetween } from '../util.ts';
import type { Trained } from './train.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

export function marginalsOf(ctx: NodeContext): MarginalsMember {
  if (ctx.model.kind !== 'marginals') throw new FedtwinError('NODE_MODEL_MISMATCH', `this consortium's generator is ${ctx.model.kind}, not marginals`);
  return ctx.model.marginals;
}

/**
 * Which of the schedule's measurements a round makes: the one after the aggregates already applied. A round that
 * failed (too few contributions by its deadline) publishes nothing and is opened again under the next round
 * number with the same base, so round numbers can run past 3; the aggregate count cannot.
 */
export function measurementOf(task: { baseVersion: number }): number {
  return task.baseVersion + 1;
}

/**
 * The mechanism this measurement charges, from the schedule (the same on every member): one q = 1 Skellam step per
 * count vector, { μ, l1 = l2 = Δ } (undefined with DP off). What the budget checks and the ledger entry records.
 */
export function countPlan(ctx: NodeContext, measurement: number): RoundPlan {
  const m = marginalsOf(ctx);
  if (ctx.privacy.policy.mode === 'off') return {};
  const mech = m.schedule.plan.mechanisms[measurement - 1];
  // Never a free round under DP: a measurement the schedule does not have is not counted at all.
  if (mech === undefined) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `the marginals schedule has ${m.schedule.plan.mechanisms.length} measurements, not a measurement ${measurement}`);
  return { record: { ...mech, clip: m.schedule.plan.sensitivity } };
}

/** This member's update for a marginals round (returned as a Trained: `delta` holds the wire values). */
export async function countLocal(ctx: NodeContext, task: OpenTask, plan: RoundPlan): Promise<Trained> {
  const m = marginalsOf(ctx);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const measurement = measurementOf(task);
  const req = m.fit.contribution(measurement, ctx.global, m.table);
  if ((req.mechanism?.noiseMultiplier ?? 0) !== (plan.record?.noiseMultiplier ?? 0) || (req.mechanism?.steps ?? 0) !== (plan.record?.steps ?? 0)) {
    throw new FedtwinError('NODE_PRIVACY_MISMATCH', `round ${task.round}: the counts would be noised as σ ${req.sigma}, ${req.mechanism?.steps ?? 0} vectors; the accountant planned z ${plan.record?.noiseMultiplier ?? 0}, ${plan.record?.steps ?? 0}`);
  }
  const minParticipants = ctx.consortium.manifest.rounds.minParticipants;
  const mu = muFor(m, measurement);
  const units = unitsFor(m, measurement, minParticipants);
  const { values, quanta, capped } = countsOnWire(ctx, task.round, 'the counts', plan, req.values, { mu, units, offset: req.offset, length: m.fit.values, qmax: m.scale.qmax });
  const seconds = (performance.now() - t0) / 1000;
  ctx.log.info({ event: 'counted', round: task.round, measurement, marginals: req.marginals, cells: req.cells, sigma: req.sigma, capped },
    `round ${task.round} (measurement ${measurement} of 3): counted ${req.marginals} marginal(s), ${req.cells} cells, Skellam share Sk(μ/m) with μ = ${mu} (sum std-dev ${req.sigma.toPrecision(4)})${capped ? ` (${capped} cell(s) capped at ${units.cap})` : ''}`);
  return { losses: [], trainSeconds: seconds, trainCpuMs: cpuMsBetween(cpu), delta: values, quanta, counts: true };
}

/**
 * A count round's update: `exact` (integer counts) plus this member's Sk(μ/m) share, placed at `offset` of a vector of
 * `length` whose other values are public zeros, as wire values and as whole quanta (resolution 1: what BFV encrypts,
 * untouched by float rounding). μ must be the one the accountant planned; a share that needs more than half the HE
 * range (more than one count per quantum) is NODE_NOISE_RANGE.
 */
function countsOnWire(ctx: NodeContext, round: number, what: string, plan: RoundPlan, exact: Float64Array, o: { mu: number; units: CountUnits; offset: number; length: number; qmax: number }): { values: Float32Array; quanta: Int32Array; capped: number } {
  if (o.mu !== (plan.record?.skellam?.mu ?? 0)) {
    throw new FedtwinError('NODE_PRIVACY_MISMATCH', `round ${round}: ${what} would be noised with Skellam μ ${o.mu}; the accountant planned μ ${plan.record?.skellam?.mu ?? 0}`);
  }
  const minParticipants = ctx.consortium.manifest.rounds.minParticipants;
  if (o.units.resolution !== 1) {
    throw new FedtwinError('NODE_NOISE_RANGE', `round ${round}: the Skellam share of ${what} (μ/m = ${o.mu / minParticipants}) needs more than the ${Math.floor(o.qmax / 2)} quanta half the HE range leaves`, {
      hint: 'raise secureAggregation.params.quantBits in the consortium manifest (e.g. 20), or the target ε',
    });
  }
  const wire = toWire(skellamCountShare(exact, o.mu, minParticipants, noiseSource(ctx, round)), exact, o.units);
  const values = new Float32Array(o.length);
  values.set(wire.values, o.offset);
  const quanta = new Int32Array(o.length);
  quanta.set(wire.quanta!, o.offset);
  return { values, quanta, capped: wire.capped };
}

/** The OS CSPRNG; a stream seeded by (seed, round) only when a simulation asks for seeded noise (not private). */
function noiseSource(ctx: NodeContext, round: number): RandomSource {
  return ctx.init.seededNoise ? seededRandom([ctx.init.seed ?? 1, round]) : osRandom();
}

// --- the column release of a calibrating VAE consortium (model.calibrate) --------------------------------------

/** Whether this round is the VAE consortium's column release: its first measurement (built on version 0). */
export function isReleaseRound(ctx: Pick<NodeContext, 'model'>, task: { baseVersion: number }): boolean {
  return vaeReleaseOf(ctx.model) !== undefined && task.baseVersion === 0;
}

/** The release's mechanism: `levels` q = 1 Skellam steps of sensitivity 1 (nothing with DP off). */
export function releasePlan(ctx: NodeContext): RoundPlan {
  const r = vaeReleaseOf(ctx.model);
  if (!r) throw new FedtwinError('NODE_MODEL_MISMATCH', 'this consortium\'s VAE does not calibrate (no model.calibrate): there is no count round');
  if (ctx.privacy.policy.mode === 'off') return {};
  const mech = r.release.mechanism;
  if (!mech) throw new FedtwinError('NODE_PRIVACY_MISMATCH', 'the column release has no noise under DP: its schedule and the policy disagree');
  return { record: { ...mech, clip: 1 } };
}

/**
 * This member's column release: its exact 1-way level counts plus its Sk(μ/m) share, in whole quanta behind the
 * model's values (zeros there), as the marginals generator's round 1 sends its counts.
 */
export async function releaseLocal(ctx: NodeContext, task: OpenTask, plan: RoundPlan): Promise<Trained> {
  const r = vaeReleaseOf(ctx.model);
  if (!r) throw new FedtwinError('NODE_MODEL_MISMATCH', 'this consortium\'s VAE does not calibrate: there is no count round');
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const mu = ctx.privacy.policy.mode === 'off' ? 0 : r.release.mu;
  const units = releaseUnits(r, ctx.consortium.manifest.rounds.minParticipants);
  const wire = countsOnWire(ctx, task.round, 'the column release', plan, columnReleaseCounts(r.release, r.table), { mu, units, offset: r.offset, length: ctx.global.length, qmax: r.scale.qmax });
  const { values, quanta } = wire;
  ctx.log.info({ event: 'counted', round: task.round, release: 'columns', columns: r.release.columns.length, cells: r.release.values, sigma: r.release.sigma, capped: wire.capped },
    `round ${task.round} (column release): counted ${r.release.columns.length} column(s), ${r.release.values} cells, Skellam share Sk(μ/m) with μ = ${mu} (sum std-dev ${r.release.sigma.toPrecision(4)})${wire.capped ? ` (${wire.capped} cell(s) capped at ${units.cap})` : ''}`);
  return { losses: [], trainSeconds: (performance.now() - t0) / 1000, trainCpuMs: cpuMsBetween(cpu), delta: values, quanta, counts: true };
}
