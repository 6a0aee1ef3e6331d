// Budget: the consortium's privacy policy with this member's own budgets, each round's plan, and the
// refusal (said, signed and persisted) when a round would overspend — checked before any training.
import { isFedtwinError } from '@fedtwin/errors';
import { createRng, fillNormal, osNoise } from '@fedtwin/models';
import { calibrationRounds } from '@fedtwin/consortium';
import type { SkellamSite } from '@fedtwin/dp';
import { Protocols, RefuseAck, type JoinResponse, type TaskResponse } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import { persist, type NodeContext, type Privacy } from '../context.ts';
import { calibrateRecordNoise, checkAffordable, countRelease, countSteps, looserConfig, noisyCount, openBudgets, planRound, recordRound, releasesCount, type RoundPlan } from '../privacy.ts';
import type { NodeState } from '../store.ts';
import { spentSummary } from '../util.ts';
import { countPlan, isReleaseRound, measurementOf, releasePlan } from './count.ts';
import { vaeReleaseOf } from '../member-model.ts';
import { siteSkellamStep } from '../site-noise.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;
export type Affordability = ReturnType<typeof checkAffordable>;

/**
 * The policy, the budgets restored from `state` (the stricter of saved and configured limits), and the noise
 * source; logs the privacy mode this member runs under.
 */
export function openPrivacy(init: NodeInit, join: JoinResponse, state: NodeState, siteSkellam?: SkellamSite, counts?: { rows: number; unitCount: number | undefined; publicCount: number | undefined }): Privacy {
  const log = init.logger;
  const policy = join.privacy;
  const own = init.privacy ?? {};
  const budgets = openBudgets(state.privacy, policy, own);
  const main = budgets.record ?? budgets.site;
  const budgetEps = main?.epsilon ?? own.epsilon ?? policy.epsilon;
  const budgetDelta = main?.delta ?? own.delta ?? policy.delta;
  const normal = noiseSource(init);
  if (init.seededNoise) log.warn({ event: 'seeded-noise' }, 'DP noise and HE rounding are seeded (simulation mode): not private against anyone who knows the seed');
  for (const l of looserConfig(state.privacy, policy, own)) {
    log.warn({ event: 'budget-kept', mode: l.mode, saved: l.saved, configured: l.configured }, `${l.mode}-level budget: the configured ε = ${l.configured.epsilon}, δ = ${l.configured.delta} is looser than the ε = ${l.saved.epsilon}, δ = ${l.saved.delta} this member started under; the stricter stands`);
  }
  if (policy.mode !== 'off') {
    log.info({ event: 'privacy', mode: policy.mode, epsilon: budgetEps, delta: budgetDelta, spent: spentSummary(budgets) }, `privacy: ${policy.mode}-level DP, budget ε = ${budgetEps}, δ = ${budgetDelta}`);
  }
  if (siteSkellam) {
    const s = siteSkellam;
    log.info({ event: 'site-noise', kind: 'skellam', mu: s.params.mu, l1: s.params.l1, l2: s.params.l2, scale: s.scale, noiseMultiplier: s.noiseMultiplier, tailBound: s.tailBound },
      `site-level DP: integer updates (γ = ${s.scale.toPrecision(6)} per model unit, L2 ≤ ${s.l2Bound.toPrecision(6)} after rounding) plus Skellam shares, summed noise Sk(${s.params.mu}) (z = ${s.noiseMultiplier.toPrecision(4)})`);
  }
  const publicCount = counts?.publicCount;
  if (publicCount !== undefined) {
    const own = counts ? counts.unitCount ?? counts.rows : undefined;
    // Logged here only: whether the CSV matches the declaration is about the records, so it never leaves the member.
    log.info({ event: 'public-count', publicCount, ...(own !== undefined ? { own } : {}) }, `record-level DP: the manifest declares this member's ${counts?.unitCount !== undefined ? 'unit' : 'record'} count public (${publicCount}); DP-SGD samples at q = min(1, B/${publicCount}) and no DP count is released${own !== undefined && own !== publicCount ? ` (this CSV holds ${own}: the declaration, not the CSV, sets q)` : ''}`);
  }
  return { policy, budgets, budgetEps, budgetDelta, normal, ...(siteSkellam ? { siteSkellam } : {}), ...(publicCount !== undefined ? { publicCount } : {}) };
}

/** Site-level DP noise: every bit from the OS CSPRNG, like DP-SGD's (seeded only in simulations). */
function noiseSource(init: NodeInit): Privacy['normal'] {
  const seededRng = init.seededNoise ? createRng((init.seed ?? 1) * 7919 + 17) : undefined;
  const osNormals = seededRng ? undefined : osNoise();
  return (out: Float32Array, std: number) => {
    if (seededRng) {
      fillNormal(seededRng, out, 0, std);
      return;
    }
    const z = osNormals!.next(out.length);
    for (let i = 0; i < out.length; i++) out[i] = std * z[i]!;
  };
}

/** This round's plan and what it would spend; undefined if this member refuses the round (the refusal is persisted and sent). */
export async function planOrRefuse(ctx: NodeContext, task: OpenTask): Promise<{ plan: RoundPlan; check: Affordability } | undefined> {
  const { policy, budgets } = ctx.privacy;
  const plan = ctx.model.kind === 'marginals' ? countPlan(ctx, measurementOf(task)) : isReleaseRound(ctx, task) ? releasePlan(ctx) : planRound(policy, dpPopulation(ctx), task.training, recordNoise(ctx, task), undefined, ctx.privacy.siteSkellam ? siteSkellamStep(ctx.privacy.siteSkellam) : undefined);
  const check = checkAffordable(budgets, plan);
  if (!check.affordable || ctx.state.privacy?.refused) {
    await refuse(ctx, task.round, check);
    return undefined;
  }
  return { plan, check };
}

/**
 * The population DP-SGD's q is computed from: the DP count Ñ when this member released one (ensureCountEstimate),
 * else its units or rows (DP off, or a policy from before the DP count, whose q still discloses N).
 */
export function dpPopulation(ctx: Pick<NodeContext, 'state' | 'data' | 'unitCount' | 'privacy'>): number {
  return ctx.state.privacy?.count?.estimate ?? ctx.privacy.publicCount ?? ctx.unitCount ?? ctx.data.rows;
}

/**
 * Record-level DP-SGD: draws this member's DP count Ñ = max(1, round(N + σ_N·Z)) of its records (units) once per
 * federation, charges it to the record budget and persists both before any round, so q = min(1, B/Ñ) discloses
 * only Ñ. Kept in the state (and signed into every contribution entry, from which a lost state is rebuilt): a
 * second draw would be a second release. No-op for the marginals generator, with DP off, or after a refusal.
 */
export async function ensureCountEstimate(ctx: NodeContext): Promise<void> {
  const { policy, budgets } = ctx.privacy;
  if (!budgets.record || !releasesCount(policy, ctx.model.kind, ctx.privacy.publicCount) || ctx.state.privacy?.count || ctx.state.privacy?.refused) return;
  const sigma = policy.record!.countNoise!;
  const z = new Float32Array(1);
  ctx.privacy.normal(z, 1); // OS CSPRNG (seeded only in simulations)
  const estimate = noisyCount(ctx.unitCount ?? ctx.data.rows, sigma, z[0]!);
  budgets.record.record(countRelease(sigma));
  ctx.state = { ...ctx.state, privacy: { ...ctx.state.privacy, count: { estimate, noiseMultiplier: sigma } } };
  await persist(ctx);
  ctx.log.info({ event: 'count-released', estimate, noiseMultiplier: sigma, spent: spentSummary(budgets) }, `record-level DP: released a DP count of this member's ${ctx.unitCount !== undefined ? 'units' : 'records'} (σ = ${sigma}); DP-SGD's sampling rate derives from it`);
}

/** The record-level z, calibrated once per run from the budget as restored (recordNoiseMultiplier): equal every round, so rounds merge in the accountant. */
const calibratedNoise = new WeakMap<Privacy, number>();
function recordNoise(ctx: NodeContext, task: OpenTask): number | undefined {
  const { policy, budgets } = ctx.privacy;
  if (!budgets.record || policy.record?.noiseMultiplier !== undefined) return undefined;
  let z = calibratedNoise.get(ctx.privacy);
  if (z === undefined) {
    const round = recordRound(dpPopulation(ctx), task.training);
    const c = calibrateRecordNoise(policy, round, trainingRounds(ctx), budgets.record, nonRoundSteps(ctx));
    z = c.noiseMultiplier;
    if (c.calibrated !== undefined && c.calibrated < z) logNoiseFloor(ctx, c.calibrated, z, round);
    calibratedNoise.set(ctx.privacy, z);
  }
  return z;
}

/** DP-SGD rounds of the federation: all of them, less a calibrating VAE consortium's count round. */
export function trainingRounds(ctx: Pick<NodeContext, 'model' | 'join'>): number {
  return vaeReleaseOf(ctx.model) ? Math.max(1, ctx.join.totalRounds - 1) : ctx.join.totalRounds;
}

/**
 * Steps in the record budget that are not DP-SGD rounds: the DP count's, and a column release's Skellam steps (the
 * only Skellam mechanism a record budget of the VAE holds), so the calibration leaves their ε in and counts no round for them.
 */
export function nonRoundSteps(ctx: Pick<NodeContext, 'model' | 'state' | 'privacy'>): number {
  const release = vaeReleaseOf(ctx.model) ? (ctx.privacy.budgets.record?.mechanisms ?? []).filter((m) => m.skellam !== undefined).reduce((s, m) => s + m.steps, 0) : 0;
  return countSteps(ctx.state.privacy) + release;
}

/** The calibration asked for less noise than DP-SGD allows: the floor is used, and what it spends is said. */
function logNoiseFloor(ctx: NodeContext, calibrated: number, z: number, round: { sampleRate: number; steps: number }): void {
  const budget = ctx.privacy.budgets.record!;
  const planned = calibrationRounds(trainingRounds(ctx));
  const left = Math.max(0, planned - Math.ceil((budget.mechanisms.reduce((s, m) => s + m.steps, 0) - nonRoundSteps(ctx)) / round.steps - 1e-9));
  const epsilon = budget.wouldSpend({ ...round, noiseMultiplier: z, steps: Math.max(1, left) * round.steps }).epsilon;
  ctx.log.warn({ event: 'noise-floor', calibrated, noiseMultiplier: z, plannedEpsilon: epsilon, budget: budget.epsilon },
    `record-level DP: the ε budget calibrates to z = ${calibrated.toPrecision(4)}, below the floor DP-SGD enforces; training at z = ${z} instead, which spends ε ≈ ${epsilon.toPrecision(4)} over the planned rounds (the calibration aimed at ε = ${Math.min(ctx.privacy.policy.record?.targetEpsilon ?? budget.epsilon, budget.epsilon)})`);
}

/** Records the refusal (it stands for every later round), then tells the aggregator, with a signed refusal entry. */
async function refuse(ctx: NodeContext, round: number, check: Affordability): Promise<void> {
  const { log } = ctx;
  const reason = check.reason ?? ctx.state.privacy!.refused!.reason;
  ctx.state = { ...ctx.state, lastRound: round, privacy: { ...ctx.state.privacy, refused: ctx.state.privacy?.refused ?? { round, code: 'NODE_BUDGET_EXHAUSTED', reason } } };
  await persist(ctx);
  log.error({ event: 'budget-refusal', round, code: 'NODE_BUDGET_EXHAUSTED', reason, spent: spentSummary(ctx.privacy.budgets) }, `round ${round}: refusing to contribute: ${reason}`);
  const refusalEntry = ctx.witness
    ? (await ctx.witness.sign({ type: 'refusal', v: 1, round, node: ctx.host.peerId, reason: reason.slice(0, 1000), epsilonRemaining: Math.max(0, (check.spends[0]?.budgetEpsilon ?? 0) - (check.spends[0]?.epsilonTotal ?? 0)), epsilonRequired: check.spends[0]?.epsilonRound ?? 0 })).entry
    : '';
  try {
    await ctx.call(Protocols.refuse, { round, code: 'NODE_BUDGET_EXHAUSTED', reason, privacy: check.spends, entry: refusalEntry }, RefuseAck);
  } catch (err) {
    // The round closed meanwhile: the refusal stands and is sent again with the next round.
    if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
    log.warn({ event: 'refusal-declined', round, code: err.code, reason: err.message }, `round ${round}: the aggregator did not record the refusal: ${err.message}`);
  }
}

/** The round's privacy cost, into this member's budgets (persisted with the pending update). */
export function recordSpend(privacy: Privacy, plan: RoundPlan): void {
  for (const mode of ['record', 'site'] as const) if (plan[mode]) privacy.budgets[mode]!.record(plan[mode]!);
}
