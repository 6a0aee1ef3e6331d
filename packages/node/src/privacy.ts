import { FedtwinError } from '@fedtwin/errors';
import { PrivacyBudget, noiseMultiplierFor, type PrivacyBudgetState, type SampledGaussian } from '@fedtwin/dp';
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
  /** Set once the member declined a round for budget; it then declines every later round. */
  refused?: { round: number; code: string; reason: string };
}

/**
 * Record-level: DP-SGD with Poisson sampling at q = batchSize / rows, round(1/q) steps per epoch
 * (what the trainer does). Site-level: one sampled-Gaussian step per round at the consortium's
 * q = expected participants / members. A target ε is turned into the smallest noise multiplier
 * that spends exactly it over every planned round.
 */
export function planRound(policy: PrivacyPolicy, rows: number, training: TrainingConfig, totalRounds: number, budgetDelta: number, budgetEpsilon: number): RoundPlan {
  const plan: RoundPlan = {};
  if (policy.mode === 'record' || policy.mode === 'both') {
    const r = policy.record;
    if (!r) throw new FedtwinError('CONFIG_INVALID', 'privacy.record is required for record-level DP', { hint: 'set privacy.record.clip and noiseMultiplier or targetEpsilon in the aggregator config' });
    const sampleRate = Math.min(1, training.batchSize / rows);
    const steps = training.epochs * Math.max(1, Math.round(1 / sampleRate));
    let noiseMultiplier = r.noiseMultiplier;
    if (noiseMultiplier === undefined) {
      const target = Math.min(r.targetEpsilon ?? budgetEpsilon, budgetEpsilon);
      noiseMultiplier = noiseMultiplierFor({ epsilon: target, sampleRate, steps: steps * totalRounds, delta: budgetDelta }).noiseMultiplier;
    }
    plan.record = { sampleRate, noiseMultiplier, steps, clip: r.clip };
  }
  if (policy.mode === 'site' || policy.mode === 'both') {
    const s = policy.site;
    if (!s) throw new FedtwinError('CONFIG_INVALID', 'privacy.site is required for site-level DP', { hint: 'set privacy.site in the aggregator config' });
    plan.site = { sampleRate: s.sampleRate, noiseMultiplier: s.noiseMultiplier, steps: 1, clip: s.clip, minParticipants: s.minParticipants };
  }
  return plan;
}

/** Budgets per mode, restored from persisted state (never re-accumulated from rounded ε). */
export function openBudgets(state: PrivacyState | undefined, policy: PrivacyPolicy, own: SiteBudget): { record?: PrivacyBudget; site?: PrivacyBudget } {
  const epsilon = own.epsilon ?? policy.epsilon;
  const delta = own.delta ?? policy.delta;
  const open = (saved: PrivacyBudgetState | undefined) =>
    saved ? PrivacyBudget.fromJSON(saved) : new PrivacyBudget({ epsilon, delta });
  const out: { record?: PrivacyBudget; site?: PrivacyBudget } = {};
  if (policy.mode === 'record' || policy.mode === 'both') out.record = open(state?.record);
  if (policy.mode === 'site' || policy.mode === 'both') out.site = open(state?.site);
  return out;
}

/** What the planned round would spend per mode; `affordable` false if any budget would be exceeded. */
export function checkAffordable(budgets: { record?: PrivacyBudget; site?: PrivacyBudget }, plan: RoundPlan): { affordable: boolean; spends: PrivacySpend[]; reason?: string } {
  const spends: PrivacySpend[] = [];
  let reason: string | undefined;
  for (const mode of ['record', 'site'] as const) {
    const b = budgets[mode];
    const m = plan[mode];
    if (!b || !m) continue;
    const w = b.wouldSpend(m);
    const before = b.spent().epsilon;
    spends.push({ mode, epsilonRound: w.additional, epsilonTotal: w.affordable ? w.epsilon : before, delta: b.delta, budgetEpsilon: b.epsilon, noiseMultiplier: m.noiseMultiplier, sampleRate: m.sampleRate, steps: m.steps, clip: m.clip });
    if (!w.affordable && !reason) {
      reason = `${mode}-level privacy budget exhausted: spent ε = ${fmt(before)} of ${fmt(b.epsilon)} (δ = ${b.delta}); this round would bring it to ${fmt(w.epsilon)}`;
    }
  }
  return { affordable: reason === undefined, spends, reason };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));

