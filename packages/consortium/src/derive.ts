import { FedtwinError } from '@fedtwin/errors';
import { epsilonFor, noiseMultiplierFor } from '@fedtwin/dp';
import type { PrivacyPolicy, SecureAggregation } from '@fedtwin/protocol';
import type { Manifest, PrivacyConfig } from './manifest.ts';
import { DEFAULT_COUNT_NOISE } from './manifest.ts';

/**
 * What every party derives from the manifest the same way, so a member need not take it from the
 * aggregator: the privacy policy members apply and the secure-aggregation setup.
 */

/**
 * q of site-level DP: 1, always. Every member trains and sends every round, the aggregator sums the first
 * `quorum` arrivals and publishes who they were: nothing about a site's participation is secret, so there is
 * no amplification by sampling to claim (q = quorum ÷ members would be a claim the protocol never earns: with
 * 10 members, 50 rounds and a calibrated ε = 8 it is really ε = 17.2 at quorum 5 and 42.8 at quorum 2).
 * Members derive it themselves; no manifest field or announcement can lower it.
 */
export const SITE_SAMPLE_RATE = 1;

/**
 * Rounds a calibrated noise multiplier is planned for: the manifest's total plus one spare round per ten
 * (at least one). Why: a member pays for every update it sends, also when that round then fails (fewer than
 * minParticipants by the deadline) and is reopened under a new number; without headroom one failed round
 * would exhaust every budget one round before the federation ends. Rounds a member refuses, sits out or
 * abandons before its update leaves cost nothing.
 */
export function calibrationRounds(total: number): number {
  return total + Math.ceil(total / 10);
}

/** The smallest fixed record-level noise multiplier a manifest may name: @fedtwin/models' MIN_NOISE_MULTIPLIER (a test keeps them equal). */
export const RECORD_NOISE_FLOOR = 0.5;

/**
 * Why a manifest's fixed record-level noise cannot run, or undefined. DP-SGD refuses z below its floor at
 * training time (MODELS_NOISE_TOO_SMALL): such a manifest would validate and then stop every member in round 1.
 */
export function recordNoiseBelowFloor(c: PrivacyConfig): string | undefined {
  if (c.mode !== 'record' && c.mode !== 'both') return undefined;
  if (c.noiseMultiplier === undefined || c.noiseMultiplier >= RECORD_NOISE_FLOOR) return undefined;
  return `privacy.noiseMultiplier is ${c.noiseMultiplier}, below the ${RECORD_NOISE_FLOOR} DP-SGD enforces (its noise sampler's tail bound is accounted from there; docs/privacy.md)`;
}

/**
 * The manifest's `privacy` as the policy members apply. Site-level noise is resolved here (a target ε
 * becomes the smallest z that spends it over calibrationRounds(total) rounds at q = SITE_SAMPLE_RATE = 1);
 * record-level targets are resolved by each member, whose q depends on its own record count.
 */
export function resolvePrivacyPolicy(c: PrivacyConfig, rounds: { total: number; quorum: number; minParticipants: number }, _members: number): PrivacyPolicy {
  const bad = (field: string, msg: string) => new FedtwinError('CONSORTIUM_INVALID', `privacy.${field}: ${msg}`, { hint: 'see docs/privacy.md for the privacy settings' });
  const policy: PrivacyPolicy = { mode: c.mode, epsilon: c.epsilon, delta: c.delta };
  if (c.mode === 'off') return policy;
  const recordCfg = c.mode === 'site' ? undefined : c;
  const siteCfg = c.mode === 'site' ? c : c.mode === 'both' ? c.site : undefined;
  if (recordCfg) {
    if (recordCfg.clip === undefined) throw bad('clip', 'is required for record-level DP (per-example gradient clip)');

    policy.record = {
      clip: recordCfg.clip,
      ...(recordCfg.noiseMultiplier !== undefined ? { noiseMultiplier: recordCfg.noiseMultiplier } : { targetEpsilon: recordCfg.targetEpsilon ?? c.epsilon }),
      ...(c.unitColumn !== undefined ? { unitColumn: c.unitColumn } : {}),
      countNoise: c.countNoise ?? DEFAULT_COUNT_NOISE,
    };
  }
  if (c.mode === 'site' || c.mode === 'both') {
    if (!siteCfg) throw bad('site', 'is required with mode "both" (clip and noise of the site-level mechanism)');
    if (siteCfg.clip === undefined) throw bad(c.mode === 'both' ? 'site.clip' : 'clip', 'is required for site-level DP (update norm clip)');
    const z = siteCfg.noiseMultiplier ?? noiseMultiplierFor({ epsilon: siteCfg.targetEpsilon ?? c.epsilon, sampleRate: SITE_SAMPLE_RATE, steps: calibrationRounds(rounds.total), delta: c.delta }).noiseMultiplier;
    // `sampleRate` stays in the policy message for protocol 1.0.0 compatibility, always 1; members never read it.
    policy.site = { clip: siteCfg.clip, noiseMultiplier: z, minParticipants: rounds.minParticipants, sampleRate: SITE_SAMPLE_RATE };
  }
  return policy;
}

/**
 * Why a manifest's site-level DP would not hold, or undefined. With plaintext aggregation the aggregator sees
 * each update with only its own noise share N(0, (zC)²/minParticipants), i.e. noise multiplier z/√m per
 * visible update, not z: the ε the policy states is for the sum only, which secure aggregation alone hides.
 */
export function siteDpWithoutSecureAggregation(m: Pick<Manifest, 'privacy' | 'secureAggregation' | 'rounds'>): string | undefined {
  const mode = m.privacy.mode;
  if (m.secureAggregation.scheme !== 'plaintext' || (mode !== 'site' && mode !== 'both')) return undefined;
  let figures = '';
  try {
    const site = resolvePrivacyPolicy(m.privacy, m.rounds, 1).site!;
    const perUpdate = site.noiseMultiplier / Math.sqrt(site.minParticipants);
    const steps = calibrationRounds(m.rounds.total);
    const eps = epsilonFor({ sampleRate: 1, noiseMultiplier: perUpdate, steps, delta: m.privacy.delta }).epsilon;
    figures = ` (z = ${site.noiseMultiplier.toPrecision(4)}, minParticipants = ${site.minParticipants}: z/√m = ${perUpdate.toPrecision(4)} per visible update, ε ≈ ${eps.toPrecision(3)} over ${steps} rounds, against the ε = ${m.privacy.epsilon} the policy states)`;
  } catch { /* an incomplete site policy: its own error comes later; the refusal stands without figures */ }
  return `privacy.mode "${mode}" needs secure aggregation: with secureAggregation.scheme "plaintext" the aggregator sees every update with only its own share of the site-level noise${figures}`;
}

/** The hint that goes with siteDpWithoutSecureAggregation. */
export const SITE_DP_PLAINTEXT_HINT = 'use secureAggregation.scheme "bfv" (the default) so only sums are visible, or privacy.mode "record" (DP-SGD in every node holds for each update on its own)';

export function privacyPolicyOf(m: Manifest): PrivacyPolicy {
  return resolvePrivacyPolicy(m.privacy, m.rounds, m.members.length);
}

export function secureAggregationOf(m: Manifest): SecureAggregation {
  const sa = m.secureAggregation;
  if (sa.scheme === 'plaintext') return { scheme: 'plaintext' };
  const members = m.members.map((x) => x.peerId);
  if (sa.scheme === 'secagg') return { scheme: 'secagg', threshold: sa.threshold!, ...(sa.degree !== undefined ? { degree: sa.degree } : {}), clip: sa.clip, members };
  return { scheme: 'bfv', params: { clip: sa.clip, maxParticipants: Math.max(sa.maxParticipants, members.length) }, keyHolder: sa.keyHolder ?? members[0]!, members };
}

export function memberIds(m: Manifest): string[] {
  return m.members.map((x) => x.peerId);
}

/** Per-member FedAvg weight bounds (peer ID → max). */
export function maxWeights(m: Manifest): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of m.members) if (x.maxWeight !== undefined) out[x.peerId] = x.maxWeight;
  return out;
}

/** A member's own floor: the weakest privacy it agrees to contribute under. */
export interface PrivacyFloor {
  /** Minimum mode: `record` needs record-level DP (record or both), `site` site-level (site or both), `both` both. */
  mode?: 'record' | 'site' | 'both';
  maxEpsilon?: number;
  maxDelta?: number;
}

/** Throws CONSORTIUM_PRIVACY_TOO_WEAK (exit 3) when the manifest's policy is weaker than the member's floor. */
export function checkPrivacyFloor(m: Manifest, floor: PrivacyFloor): void {
  const p = m.privacy;
  const has = { record: p.mode === 'record' || p.mode === 'both', site: p.mode === 'site' || p.mode === 'both' };
  const weak = (what: string) => new FedtwinError('CONSORTIUM_PRIVACY_TOO_WEAK', `the consortium manifest's privacy is weaker than this member requires: ${what}`, {
    hint: 'this member will not contribute under it; ask the consortium for a stricter manifest, or relax privacy.require in this node\'s config',
    details: { manifest: p, require: floor },
  });
  if (floor.mode === 'record' && !has.record) throw weak(`mode ${p.mode}, required record-level DP`);
  if (floor.mode === 'site' && !has.site) throw weak(`mode ${p.mode}, required site-level DP`);
  if (floor.mode === 'both' && !(has.record && has.site)) throw weak(`mode ${p.mode}, required both record- and site-level DP`);
  if (floor.maxEpsilon !== undefined && (p.mode === 'off' || p.epsilon > floor.maxEpsilon)) throw weak(`ε = ${p.mode === 'off' ? '∞ (mode off)' : p.epsilon}, required ≤ ${floor.maxEpsilon}`);
  if (floor.maxDelta !== undefined && (p.mode === 'off' || p.delta > floor.maxDelta)) throw weak(`δ = ${p.mode === 'off' ? '1 (mode off)' : p.delta}, required ≤ ${floor.maxDelta}`);
}
