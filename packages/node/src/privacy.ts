import { FedtwinError } from '@fedtwin/errors';
import { PrivacyBudget, RdpAccountant, noiseMultiplierFor, type PrivacyBudgetState, type SampledGaussian } from '@fedtwin/dp';
import { SITE_SAMPLE_RATE, calibrationRounds } from '@fedtwin/consortium';
import { MIN_NOISE_MULTIPLIER, dpSampleRate } from '@fedtwin/models';
import type { PrivacyPolicy, PrivacySpend, TrainingConfig } from '@fedtwin/protocol';

/** A member's own limits; unset fields take the consortium's. */
export interface SiteBudget {
  epsilon?: number;
  delta?: number;
}

/** One round's mechanism per DP mode, as the accountant sees it (docs/privacy.md). */
export interface RoundPlan {
  record?: SampledGaussian & { clip: number };
  site?: SampledGaussian & { clip: number; minParticipants: number };
}

export interface PrivacyState {
  record?: PrivacyBudgetState;
  site?: PrivacyBudgetState;
  /**
   * Record-level DP-SGD's public count: Ñ = max(1, round(N + σ_N·Z)) of this member's records (units), drawn once
   * per federation and charged to the record budget (countRelease). Never redrawn while the state exists: a
   * second draw would be a second release of N.
   */
  count?: { estimate: number; noiseMultiplier: number };
  /** Set once the member declined a round for budget; it then declines every later round. */
  refused?: { round: number; code: string; reason: string };
}

export type Budgets = { record?: PrivacyBudget; site?: PrivacyBudget };

const hasRecord = (mode: PrivacyPolicy['mode']) => mode === 'record' || mode === 'both';
const hasSite = (mode: PrivacyPolicy['mode']) => mode === 'site' || mode === 'both';

// --- the DP count of N (docs/privacy.md, "The record count") ---------------------------------------------

/**
 * The count release as the accountant sees it: one Gaussian mechanism (q = 1, one step) of noise σ_N. N changes by
 * one between neighbours (add/remove one record, or one unit with a unit column), so its L2 sensitivity is 1 and
 * z = σ_N.
 */
export function countRelease(noiseMultiplier: number): SampledGaussian {
  return { sampleRate: 1, noiseMultiplier, steps: 1 };
}

/** Ñ = max(1, round(n + σ·z)) for a standard normal draw z: a positive integer, so q = min(1, B/Ñ) is defined. */
export function noisyCount(n: number, noiseMultiplier: number, z: number): number {
  if (!Number.isInteger(n) || n < 1) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `the record count must be a positive integer, got ${n}`);
  if (!(noiseMultiplier > 0 && Number.isFinite(z))) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `count noise needs σ > 0 and a finite draw, got σ = ${noiseMultiplier}, z = ${z}`);
  return Math.max(1, Math.round(n + noiseMultiplier * z));
}

/**
 * Whether this member releases a DP count: record-level DP-SGD (the marginals generator's counts are noised already; DP
 * off sends N), unless the manifest declares its count public (`publicCount`: q derives from that constant instead).
 */
export function releasesCount(policy: PrivacyPolicy, generator: 'vae' | 'marginals', publicCount?: number): boolean {
  return hasRecord(policy.mode) && generator !== 'marginals' && policy.record?.countNoise !== undefined && publicCount === undefined;
}

/**
 * The record (unit) count the consortium's manifest declares public for this member (members[].publicCount), under
 * record-level DP: DP-SGD's q and divisor come from it, and no DP count is drawn. Undefined if none is declared.
 */
export function declaredPublicCount(manifest: { members: ReadonlyArray<{ peerId: string; publicCount?: number | undefined }> }, policy: PrivacyPolicy, peerId: string): number | undefined {
  if (!hasRecord(policy.mode)) return undefined;
  return manifest.members.find((m) => m.peerId === peerId)?.publicCount;
}

/** Steps in a record budget that are not DP-SGD rounds (the count release), so calibration does not count them as rounds. */
export function countSteps(state: PrivacyState | undefined): number {
  return state?.count ? countRelease(state.count.noiseMultiplier).steps : 0;
}

/**
 * One round of this member's DP-SGD: Poisson sampling at q = batchSize / rows, or with a unit column (patient-level
 * DP) at q = batchSize / unitCount, and round(1/q) steps per epoch. The q is the trainer's own (dpSampleRate), so the
 * accountant charges exactly the mechanism that runs.
 */
export function recordRound(rows: number, training: Pick<TrainingConfig, 'batchSize' | 'epochs'>, unitCount?: number): { sampleRate: number; steps: number } {
  const sampleRate = dpSampleRate(training.batchSize, rows, unitCount);
  return { sampleRate, steps: training.epochs * Math.max(1, Math.round(1 / sampleRate)) };
}

/**
 * This member's record-level noise multiplier: the policy's, or the smallest z that spends the target
 * (the policy's, capped by this member's budget) over calibrationRounds(totalRounds) rounds. If the budget
 * can no longer afford the rest of the federation at that z — its ε was made stricter after rounds were
 * spent — the remaining planned rounds are calibrated on what is left instead, so a stricter budget means
 * more noise from now on rather than a refusal half-way.
 */
export function recordNoiseMultiplier(policy: PrivacyPolicy, round: { sampleRate: number; steps: number }, totalRounds: number, budget: PrivacyBudget, nonRoundSteps = 0): number {
  return calibrateRecordNoise(policy, round, totalRounds, budget, nonRoundSteps).noiseMultiplier;
}

/**
 * recordNoiseMultiplier with what the calibration gave before the floor: a large ε target can calibrate to
 * z < MIN_NOISE_MULTIPLIER (0.5), which DP-SGD refuses (below it the sampler's tail cut would add to δ). The
 * member then trains at the floor instead of failing at training time: more noise than the target needs, so it
 * spends less than the target, which is always safe. `calibrated` lets the caller say so.
 */
export function calibrateRecordNoise(policy: PrivacyPolicy, round: { sampleRate: number; steps: number }, totalRounds: number, budget: PrivacyBudget, nonRoundSteps = 0): { noiseMultiplier: number; calibrated?: number } {
  const r = policy.record;
  if (!r) throw new FedtwinError('CONFIG_INVALID', 'privacy.record is required for record-level DP', { hint: 'set privacy.clip (and noiseMultiplier or targetEpsilon) in the consortium manifest' });
  // A fixed z is the manifest's: the trainer refuses one below the floor (MODELS_NOISE_TOO_SMALL), nothing to calibrate.
  if (r.noiseMultiplier !== undefined) return { noiseMultiplier: r.noiseMultiplier };
  const target = Math.min(r.targetEpsilon ?? budget.epsilon, budget.epsilon);
  const planned = calibrationRounds(totalRounds);
  const full = noiseMultiplierFor({ epsilon: target, sampleRate: round.sampleRate, steps: round.steps * planned, delta: budget.delta }).noiseMultiplier;
  // The count release (nonRoundSteps) is in the budget, so `at` leaves room for it, but it is not a round.
  const spentSteps = budget.mechanisms.reduce((s, m) => s + m.steps, 0) - nonRoundSteps;
  const left = Math.max(1, planned - Math.ceil(spentSteps / round.steps - 1e-9));
  const at = (z: number) => budget.wouldSpend({ sampleRate: round.sampleRate, noiseMultiplier: z, steps: round.steps * left }).epsilon;
  // Nothing affordable at any z (the budget is spent): the full calibration stands and the budget check refuses.
  const calibrated = at(full) <= target ? full : smallestNoise(at, target) ?? full;
  return { noiseMultiplier: Math.max(MIN_NOISE_MULTIPLIER, calibrated), calibrated };
}

/**
 * Record-level: DP-SGD with `recordNoise` (recordNoiseMultiplier). Site-level: one Gaussian step per round
 * at q = SITE_SAMPLE_RATE = 1, derived here, never read from the policy: every member trains every round and
 * who was summed is published, so there is no sampling to amplify by (the policy's `sampleRate` field is
 * protocol baggage, always 1, and ignored).
 */
export function planRound(policy: PrivacyPolicy, rows: number, training: Pick<TrainingConfig, 'batchSize' | 'epochs'>, recordNoise?: number, unitCount?: number, siteStep?: SampledGaussian): RoundPlan {
  const plan: RoundPlan = {};
  if (hasRecord(policy.mode)) {
    const r = policy.record;
    if (!r) throw new FedtwinError('CONFIG_INVALID', 'privacy.record is required for record-level DP', { hint: 'set privacy.clip (and noiseMultiplier or targetEpsilon) in the consortium manifest' });
    const noiseMultiplier = r.noiseMultiplier ?? recordNoise;
    if (noiseMultiplier === undefined) throw new FedtwinError('NODE_PRIVACY_MISMATCH', 'record-level DP with a target ε needs the calibrated noise multiplier (recordNoiseMultiplier)');
    plan.record = { ...recordRound(rows, training, unitCount), noiseMultiplier, clip: r.clip };
  }
  if (hasSite(policy.mode)) plan.site = sitePlan(policy, siteStep);
  return plan;
}

/**
 * The site-level mechanism of one round: the manifest's clip, q = 1 (this member's own derivation), and either the
 * integer Skellam step the member's shares actually implement (`siteStep`, site-noise.ts: what a running member
 * always passes) or, without one, the Gaussian of the policy's z (library callers and tests of the q = 1 rule).
 */
function sitePlan(policy: PrivacyPolicy, siteStep?: SampledGaussian): NonNullable<RoundPlan['site']> {
  const s = policy.site;
  if (!s) throw new FedtwinError('CONFIG_INVALID', 'privacy.site is required for site-level DP', { hint: 'set privacy.site in the consortium manifest' });
  if (siteStep) {
    if (siteStep.sampleRate !== SITE_SAMPLE_RATE || siteStep.steps !== 1) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `a site-level round is one step at q = ${SITE_SAMPLE_RATE}, got q = ${siteStep.sampleRate}, ${siteStep.steps} steps`);
    return { ...siteStep, clip: s.clip, minParticipants: s.minParticipants };
  }
  return { sampleRate: SITE_SAMPLE_RATE, noiseMultiplier: s.noiseMultiplier, steps: 1, clip: s.clip, minParticipants: s.minParticipants };
}

/** A site plan's mechanism without its clip and minParticipants (what the accountant composes). */
function siteMechanismOf(p: NonNullable<RoundPlan['site']>): SampledGaussian {
  return { sampleRate: p.sampleRate, noiseMultiplier: p.noiseMultiplier, steps: 1, ...(p.skellam ? { skellam: p.skellam } : {}) };
}

/**
 * Whether the site's synthetic release may use its private layers (docs/privacy.md, "What a site releases").
 * With record-level DP (`record`, `both`) DP-SGD clips and noises every trainable variable, private ones
 * included; with DP off there is no guarantee to keep. In `site` mode only the shared update is clipped and
 * noised (at site level): the private layers train on the records without DP, so the release is generated
 * from the shared layers alone.
 */
export function releaseUsesPrivateLayers(mode: PrivacyPolicy['mode']): boolean {
  return mode !== 'site';
}

/**
 * Budgets per mode, restored from persisted state (never re-accumulated from rounded ε). The stricter of the
 * saved and the configured limits wins, ε and δ each: a budget set lower after the first run applies (the
 * spent ε is recomputed from the saved mechanisms at the smaller δ), a budget set higher does not lift the
 * one the member started under.
 */
export function openBudgets(state: PrivacyState | undefined, policy: PrivacyPolicy, own: SiteBudget): Budgets {
  const configured = { epsilon: own.epsilon ?? policy.epsilon, delta: own.delta ?? policy.delta };
  const open = (saved: PrivacyBudgetState | undefined) => {
    if (!saved) return new PrivacyBudget(configured);
    const b = PrivacyBudget.fromJSON(saved);
    const epsilon = Math.min(b.epsilon, configured.epsilon);
    const delta = Math.min(b.delta, configured.delta);
    if (epsilon === b.epsilon && delta === b.delta) return b;
    return new PrivacyBudget({ epsilon, delta, conversion: b.conversion, orders: b.orders, fractionalSeries: b.fractionalSeries, mechanisms: b.mechanisms });
  };
  const out: Budgets = {};
  if (hasRecord(policy.mode)) out.record = open(state?.record);
  if (hasSite(policy.mode)) out.site = open(state?.site);
  return out;
}

/** Saved budgets looser than this member's configuration says (the saved, stricter, limit stands): for a warning. */
export function looserConfig(state: PrivacyState | undefined, policy: PrivacyPolicy, own: SiteBudget): Array<{ mode: 'record' | 'site'; saved: { epsilon: number; delta: number }; configured: { epsilon: number; delta: number } }> {
  const configured = { epsilon: own.epsilon ?? policy.epsilon, delta: own.delta ?? policy.delta };
  const out: ReturnType<typeof looserConfig> = [];
  for (const mode of ['record', 'site'] as const) {
    const s = state?.[mode];
    if (s && (configured.epsilon > s.epsilon || configured.delta > s.delta)) out.push({ mode, saved: { epsilon: s.epsilon, delta: s.delta }, configured });
  }
  return out;
}

/** A Skellam round's parameters for its privacy spend (and so its signed ledger entry); nothing for a Gaussian one. */
function skellamOf(m: SampledGaussian): Pick<PrivacySpend, 'skellam'> {
  return m.skellam ? { skellam: { mu: m.skellam.mu, l1: m.skellam.l1, l2: m.skellam.l2 } } : {};
}

/** What the planned round would spend per mode; `affordable` false if any budget would be exceeded. */
export function checkAffordable(budgets: Budgets, plan: RoundPlan): { affordable: boolean; spends: PrivacySpend[]; reason?: string } {
  const spends: PrivacySpend[] = [];
  let reason: string | undefined;
  for (const mode of ['record', 'site'] as const) {
    const b = budgets[mode];
    const m = plan[mode];
    if (!b || !m) continue;
    const w = b.wouldSpend(m);
    const before = b.spent().epsilon;
    spends.push({ mode, epsilonRound: w.additional, epsilonTotal: w.affordable ? w.epsilon : before, delta: b.delta, budgetEpsilon: b.epsilon, noiseMultiplier: m.noiseMultiplier, sampleRate: m.sampleRate, steps: m.steps, clip: m.clip, ...skellamOf(m) });
    if (!w.affordable && !reason) {
      reason = `${mode}-level privacy budget exhausted: spent ε = ${fmt(before)} of ${fmt(b.epsilon)} (δ = ${b.delta}); this round would bring it to ${fmt(w.epsilon)}`;
    }
  }
  return { affordable: reason === undefined, spends, reason };
}

// --- the budget rebuilt from this member's own signed ledger entries (docs/privacy.md, "Budgets") -------

/** One of this member's own signed entries in its verified ledger replica. */
export interface OwnLedgerEntry {
  index: number;
  leafHash: string;
  type: 'contribution' | 'refusal';
  round: number;
  /** Contribution: what the member signed for its main mode (record-level if it has one, else site-level). */
  epsilonTotal?: number;
  delta?: number;
  /** Contribution with DP off: the record count it declared. */
  sampleCount?: number;
  /** Contribution under record-level DP-SGD: the DP count Ñ its q derives from, and that release's σ_N. */
  countEstimate?: number;
  countNoise?: number;
  /** Refusal: why. */
  reason?: string;
  time?: number;
}

export interface RebuiltSpending {
  privacy: PrivacyState;
  /** Highest round this member contributed to or refused (it takes no part in them again). */
  lastRound: number;
  contributions: Array<{ round: number; baseVersion: number; loss: number; weight: number; trainSeconds: number; at: number; privacy?: PrivacySpend[]; ledgerIndex: number }>;
  ledgerLeaves: Array<{ leafHash: string; index: number }>;
  /** ε the ledger says this member's main mode has spent (its last contribution's signed total), 0 if none. */
  ledgerEpsilon: number;
}

/** Relative agreement required between a replayed total and the one the member signed. */
const REPLAY_TOLERANCE = 1e-9;

/**
 * This member's spending, rebuilt exactly from its own signed ledger entries, or NODE_BUDGET_UNRECOVERABLE.
 * Each contribution entry signs the main mode's running total ε (at its δ); the mechanisms are what this
 * member's config gives (q = B/N, or B/U with a unit column, and its steps for DP-SGD; the manifest's site-level
 * z at q = 1), and a record-level z that config no longer gives (a budget changed between runs) is recovered as
 * the unique z whose composition reproduces the signed total (ε is strictly decreasing in z), and must reproduce the next
 * contribution too (one free z per entry would fit any q). Every entry's total must be reproduced to 1e-9,
 * or the spending is not rebuilt: a fresh budget is never the fallback. An entry naming a DP count Ñ (countEstimate,
 * every contribution since that release) replays at q = B/Ñ and charges the count release once, before the first
 * such entry's round, so the rebuilt state holds Ñ and never redraws it. Only entries from before the DP count
 * (none name Ñ) replay at the current N (U): a CSV changed since, with only one entry after a z change to go by,
 * is taken at its current N (U).
 */
export function rebuildSpending(entries: readonly OwnLedgerEntry[], input: { policy: PrivacyPolicy; rows: number; unitCount?: number; training: Pick<TrainingConfig, 'batchSize' | 'epochs'>; totalRounds: number; own: SiteBudget; scheduled?: readonly SampledGaussian[] | undefined; siteStep?: SampledGaussian | undefined; publicCount?: number | undefined; releaseStep?: SampledGaussian | undefined }): RebuiltSpending {
  const { policy } = input;
  const sorted = [...entries].sort((a, b) => a.index - b.index);
  const budgets = openBudgets(undefined, policy, input.own);
  const main: 'record' | 'site' | undefined = hasRecord(policy.mode) ? 'record' : hasSite(policy.mode) ? 'site' : undefined;
  // A declared public count is the population of every round (no release to charge, nothing to recover).
  let shape = input.publicCount !== undefined ? recordRound(input.publicCount, input.training) : recordRound(input.rows, input.training, input.unitCount);
  let calibrated = budgets.record ? recordNoiseMultiplier(policy, shape, input.totalRounds, budgets.record) : undefined;
  let count: PrivacyState['count'];
  const siteStep = hasSite(policy.mode) ? sitePlan(policy, input.siteStep) : undefined;
  const acc = { record: new RdpAccountant(), site: new RdpAccountant() };
  let lastZ: number | undefined;
  let unconfirmed: { round: number } | undefined;
  // A calibrating VAE consortium's column release (its Skellam steps are not rounds to the calibration).
  let releaseSteps = 0;
  let ledgerEpsilon = 0;
  const out: RebuiltSpending = { privacy: {}, lastRound: 0, contributions: [], ledgerLeaves: [], ledgerEpsilon: 0 };
  for (const e of sorted) {
    out.lastRound = Math.max(out.lastRound, e.round);
    if (e.type === 'refusal') {
      out.privacy.refused ??= { round: e.round, code: 'NODE_BUDGET_EXHAUSTED', reason: e.reason ?? 'refused a round for its privacy budget (rebuilt from the ledger)' };
      continue;
    }
    out.ledgerLeaves.push({ leafHash: e.leafHash, index: e.index });
    const spends: PrivacySpend[] = [];
    if (main) {
      const signed = e.epsilonTotal ?? NaN;
      const delta = e.delta ?? NaN;
      const unrecoverable = (why: string) => new FedtwinError('NODE_BUDGET_UNRECOVERABLE', `this member's privacy state is missing or behind its ledger, and its spending cannot be rebuilt exactly from its own ledger entries: ${why}`, {
        hint: 'restore <dataDir>/state from a backup, or run with the record count (data.csv) and manifest of the run that signed those entries; this member will not start on a budget it cannot account for',
        details: { ledgerIndex: e.index, round: e.round, signedEpsilonTotal: e.epsilonTotal ?? null, delta: e.delta ?? null },
      });
      if (!(signed >= 0) || !(delta > 0 && delta < 1)) throw unrecoverable(`its contribution to round ${e.round} (ledger entry ${e.index}) records no ε total at a valid δ`);
      const after = (a: RdpAccountant, m: SampledGaussian) => a.clone().compose(m).getEpsilon(delta).epsilon;
      const matches = (x: number) => Math.abs(x - signed) <= REPLAY_TOLERANCE * Math.max(1e-12, signed);
      if (e.countEstimate !== undefined && e.countNoise === undefined && input.publicCount !== undefined) {
        // An entry naming the declared public count (no σ: nothing was released): it must be this manifest's.
        if (e.countEstimate !== input.publicCount) throw unrecoverable(`round ${e.round} names the public count ${e.countEstimate}, the manifest declares ${input.publicCount}`);
      } else if (e.countEstimate !== undefined && main === 'record' && !input.scheduled) {
        if (count && count.estimate !== e.countEstimate) throw unrecoverable(`round ${e.round} names the count estimate ${e.countEstimate}, an earlier entry ${count.estimate}: a count is released once`);
        if (!count) {
          // The first entry naming Ñ: its release is charged once, before this round, and q is B/Ñ from here on.
          const sigma = e.countNoise ?? policy.record?.countNoise;
          if (!(sigma !== undefined && sigma > 0)) throw unrecoverable(`round ${e.round} names a count estimate but no count noise, and the policy has none`);
          count = { estimate: e.countEstimate, noiseMultiplier: sigma };
          acc.record.compose(countRelease(sigma));
          shape = recordRound(count.estimate, input.training);
          calibrated = budgets.record && policy.record?.noiseMultiplier === undefined
            ? recordNoiseMultiplier(policy, shape, input.totalRounds, new PrivacyBudget({ epsilon: budgets.record.epsilon, delta: budgets.record.delta, mechanisms: acc.record.mechanisms }), countSteps({ count }) + releaseSteps)
            : calibrated;
        }
      }
      let mech: SampledGaussian;
      if (main === 'record' && input.scheduled) {
        // The marginals generator: every contribution is one of the public schedule's measurements (a failed round's
        // measurement is made again under a later round number, so the entry's round does not say which): the one
        // whose mechanism reproduces the signed total. The mechanisms differ in z and steps, so at most one does.
        const found = input.scheduled.find((m) => matches(after(acc.record, m)));
        if (!found) throw unrecoverable(`round ${e.round} signed ε = ${signed}, which none of the marginals schedule's mechanisms (q = 1, z = ${input.scheduled.map((m) => m.noiseMultiplier.toPrecision(4)).join(' / ')}) reproduces`);
        mech = found;
      } else if (main === 'record' && input.releaseStep && releaseSteps === 0 && matches(after(acc.record, input.releaseStep))) {
        // The column release (model.calibrate): once, the public mechanism of the schedule; DP-SGD rounds follow it.
        mech = input.releaseStep;
        releaseSteps = input.releaseStep.steps;
      } else if (main === 'site') {
        mech = siteMechanismOf(siteStep!);
        if (!matches(after(acc.site, mech))) throw unrecoverable(`round ${e.round} signed ε = ${signed}, the manifest's site-level mechanism (q = 1, z = ${siteStep!.noiseMultiplier}${mech.skellam ? `, Skellam μ = ${mech.skellam.mu}` : ''}) replays to ${after(acc.site, mech)}`);
      } else {
        const replay = (z: number) => after(acc.record, { ...shape, noiseMultiplier: z });
        // What a member under this config would have used: the same z as its previous round, the policy's, the
        // calibration from scratch, or the calibration resumed on what it had spent (recordNoiseMultiplier).
        const resumed = () => (budgets.record && calibrated !== undefined
          ? recordNoiseMultiplier(policy, shape, input.totalRounds, new PrivacyBudget({ epsilon: budgets.record.epsilon, delta: budgets.record.delta, mechanisms: acc.record.mechanisms }), countSteps({ count }) + releaseSteps)
          : undefined);
        let z: number | undefined;
        for (const candidate of [() => lastZ, () => policy.record?.noiseMultiplier, () => calibrated, resumed]) {
          const c = candidate();
          if (c !== undefined && matches(replay(c))) { z = c; break; }
        }
        if (z === undefined && unconfirmed) {
          // One free z per entry would fit any q: a recovered z must reproduce the member's next round as well.
          throw unrecoverable(`the noise multiplier that reproduces round ${unconfirmed.round} does not reproduce round ${e.round}: this member's q = ${shape.sampleRate} (${shape.steps} steps per round) is not the one those rounds ran with (did its record count or the training config change?)`);
        }
        if (z === undefined) {
          z = smallestNoise(replay, signed);
          if (z === undefined || !matches(replay(z))) {
            throw unrecoverable(`round ${e.round} signed ε = ${signed} (δ = ${delta}), which no noise multiplier reproduces at this member's q = ${shape.sampleRate} and ${shape.steps} steps per round (did its record count or the training config change?)`);
          }
          unconfirmed = { round: e.round };
        } else if (z === lastZ) {
          unconfirmed = undefined;
        }
        lastZ = z;
        mech = { ...shape, noiseMultiplier: z };
      }
      ledgerEpsilon = signed;
      for (const mode of ['record', 'site'] as const) {
        const m = mode === 'record' ? (main === 'record' ? mech : undefined) : siteStep ? siteMechanismOf(siteStep) : undefined;
        const b = budgets[mode];
        if (!m || !b) continue;
        const before = acc[mode].getEpsilon(b.delta).epsilon;
        acc[mode].compose(m);
        const total = acc[mode].getEpsilon(b.delta).epsilon;
        spends.push({ mode, epsilonRound: total - before, epsilonTotal: total, delta: b.delta, budgetEpsilon: b.epsilon, noiseMultiplier: m.noiseMultiplier, sampleRate: m.sampleRate, steps: m.steps, clip: mode === 'record' ? policy.record!.clip : siteStep!.clip, ...skellamOf(m) });
      }
    }
    out.contributions.push({ round: e.round, baseVersion: Number.NaN, loss: Number.NaN, weight: e.sampleCount ?? 1, trainSeconds: Number.NaN, at: e.time ?? 0, privacy: spends, ledgerIndex: e.index });
  }
  for (const mode of ['record', 'site'] as const) {
    const b = budgets[mode];
    if (b) out.privacy[mode] = new PrivacyBudget({ epsilon: b.epsilon, delta: b.delta, mechanisms: acc[mode].mechanisms }).toJSON();
  }
  if (count) out.privacy.count = count;
  out.ledgerEpsilon = ledgerEpsilon;
  return out;
}

/** ε a saved state has spent in `mode` at `delta` (to compare with what the ledger signed). */
export function savedEpsilon(state: PrivacyState | undefined, mode: 'record' | 'site', delta: number): number {
  const s = state?.[mode];
  if (!s) return 0;
  return new RdpAccountant({ orders: s.orders, fractionalSeries: s.fractionalSeries, mechanisms: s.mechanisms }).getEpsilon(delta, s.conversion).epsilon;
}

/**
 * Smallest z in (2⁻²⁰, 2³⁰] with f(z) ≤ target for a non-increasing f, to 1e-12 relative (the returned upper
 * end meets the target); undefined if even 2³⁰ does not.
 */
export function smallestNoise(f: (z: number) => number, target: number): number | undefined {
  let hi = 1;
  while (f(hi) > target) {
    hi *= 2;
    if (hi > 2 ** 30) return undefined;
  }
  let lo = hi / 2;
  while (f(lo) <= target) {
    hi = lo;
    lo /= 2;
    if (lo < 2 ** -20) return hi;
  }
  while (hi - lo > 1e-12 * hi) {
    const mid = (lo + hi) / 2;
    if (f(mid) <= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));
