import { FedtwinError } from '@fedtwin/errors';
import { noiseMultiplierFor } from '@fedtwin/dp';
import type { PrivacyPolicy, SecureAggregation } from '@fedtwin/protocol';
import type { Manifest, PrivacyConfig } from './manifest.ts';

/**
 * What every party derives from the manifest the same way, so a member need not take it from the
 * aggregator: the privacy policy members apply and the secure-aggregation setup.
 */

/**
 * The manifest's `privacy` as the policy members apply. Site-level noise is resolved here (a target ε
 * becomes the smallest z that spends it over all rounds at q = quorum / members); record-level targets are
 * resolved by each member, whose q depends on its own record count.
 */
export function resolvePrivacyPolicy(c: PrivacyConfig, rounds: { total: number; quorum: number; minParticipants: number }, members: number): PrivacyPolicy {
  const bad = (field: string, msg: string) => new FedtwinError('CONSORTIUM_INVALID', `privacy.${field}: ${msg}`, { hint: 'see docs/privacy.md for the privacy settings' });
  const policy: PrivacyPolicy = { mode: c.mode, epsilon: c.epsilon, delta: c.delta };
  if (c.mode === 'off') return policy;
  const recordCfg = c.mode === 'site' ? undefined : c;
  const siteCfg = c.mode === 'site' ? c : c.mode === 'both' ? c.site : undefined;
  if (recordCfg) {
    if (recordCfg.clip === undefined) throw bad('clip', 'is required for record-level DP (per-example gradient clip)');
    policy.record = { clip: recordCfg.clip, ...(recordCfg.noiseMultiplier !== undefined ? { noiseMultiplier: recordCfg.noiseMultiplier } : { targetEpsilon: recordCfg.targetEpsilon ?? c.epsilon }) };
  }
  if (c.mode === 'site' || c.mode === 'both') {
    if (!siteCfg) throw bad('site', 'is required with mode "both" (clip and noise of the site-level mechanism)');
    if (siteCfg.clip === undefined) throw bad(c.mode === 'both' ? 'site.clip' : 'clip', 'is required for site-level DP (update norm clip)');
    const sampleRate = Math.min(1, rounds.quorum / members);
    const z = siteCfg.noiseMultiplier ?? noiseMultiplierFor({ epsilon: siteCfg.targetEpsilon ?? c.epsilon, sampleRate, steps: rounds.total, delta: c.delta }).noiseMultiplier;
    policy.site = { clip: siteCfg.clip, noiseMultiplier: z, minParticipants: rounds.minParticipants, sampleRate };
  }
  return policy;
}

export function privacyPolicyOf(m: Manifest): PrivacyPolicy {
  return resolvePrivacyPolicy(m.privacy, m.rounds, m.members.length);
}

export function secureAggregationOf(m: Manifest): SecureAggregation {
  const sa = m.secureAggregation;
  if (sa.scheme === 'plaintext') return { scheme: 'plaintext' };
  const members = m.members.map((x) => x.peerId);
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
