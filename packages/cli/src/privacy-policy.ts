import { FedtwinError } from '@fedtwin/errors';
import { noiseMultiplierFor } from '@fedtwin/dp';
import type { PrivacyPolicy } from '@fedtwin/protocol';
import type { PrivacyConfig } from './config.ts';

/**
 * Turns the aggregator's `privacy` config into the policy members receive. Site-level noise is
 * resolved here (a target ε becomes the smallest z that spends it over all rounds at
 * q = quorum / members); record-level targets are resolved by each member, whose q depends on
 * its own record count.
 */
export function resolvePrivacyPolicy(c: PrivacyConfig, rounds: { total: number; quorum: number; minParticipants: number }, members: number): PrivacyPolicy {
  const bad = (field: string, msg: string) => new FedtwinError('CONFIG_INVALID', `privacy.${field}: ${msg}`, { hint: 'see docs/privacy.md for the privacy settings' });
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
