import { FedtwinError } from '@fedtwin/errors';
import {
  checkPrivacyFloor, parseManifest, privacyPolicyOf, requireSame, schemaHash, secureAggregationOf, siteDpWithoutSecureAggregation, SITE_DP_PLAINTEXT_HINT,
  type Manifest, type PrivacyFloor,
} from '@fedtwin/consortium';
import type { JoinResponse, TrainingConfig } from '@fedtwin/protocol';
import type { Logger } from './types.ts';

/** The consortium manifest this member installed (its own copy, never the aggregator's). */
export interface PinnedConsortium {
  manifest: Manifest;
  /** manifestHash(manifest) */
  hash: string;
}

/**
 * Before contacting anyone: does this member agree to the manifest at all? Site-level DP only with secure
 * aggregation, its own privacy floor, and an explicit opt-in for a consortium without DP.
 */
export function checkOwnFloor(pinned: PinnedConsortium, peerId: string, opts: { floor?: PrivacyFloor; allowPrivacyOff?: boolean }): void {
  const m = pinned.manifest;
  if (!m.members.some((x) => x.peerId === peerId)) {
    throw new FedtwinError('CONSORTIUM_MISMATCH', `this member (${peerId}) is not in the consortium manifest's members`, { hint: 'install the manifest that lists this member\'s peer ID', details: { field: 'members', pinned: m.members.map((x) => x.peerId), announced: peerId } });
  }
  // parseManifest refuses this already; a manifest built in code reaches here unparsed, so the member checks itself.
  const weak = siteDpWithoutSecureAggregation(m);
  if (weak) throw new FedtwinError('CONSORTIUM_PRIVACY_TOO_WEAK', `the consortium manifest's site-level DP would not hold: ${weak}`, { hint: SITE_DP_PLAINTEXT_HINT, details: { field: 'privacy.mode', mode: m.privacy.mode, scheme: m.secureAggregation.scheme } });
  if (opts.floor) checkPrivacyFloor(m, opts.floor);
  if (m.privacy.mode === 'off' && !opts.allowPrivacyOff) {
    throw new FedtwinError('CONSORTIUM_PRIVACY_TOO_WEAK', 'the consortium manifest has privacy mode off: updates would carry no differential privacy', {
      hint: 'a member contributes without DP only if its own config says so explicitly: privacy: { mode: off }',
    });
  }
}

/**
 * Everything the aggregator announces at join is checked against the pinned manifest, field by field
 * (CONSORTIUM_MISMATCH names the first difference). What this member then uses is derived from its own
 * copy: the announced values only have to agree with it.
 */
export function agreedJoin(pinned: PinnedConsortium, join: JoinResponse): JoinResponse {
  const m = pinned.manifest;
  if (join.manifestHash !== pinned.hash) {
    let announced: unknown = join.manifest;
    try { announced = parseManifest(join.manifest, 'the manifest the aggregator announced'); } catch { /* compare the raw value */ }
    requireSame('a consortium manifest', m, announced);
    requireSame('a consortium manifest hash', pinned.hash, join.manifestHash);
  }
  requireSame('the consortium id', m.consortium, join.consortium, 'consortium');
  requireSame('the model', m.model, join.model, 'model');
  requireSame('the strategy', m.strategy, join.strategy, 'strategy');
  requireSame('the number of rounds', m.rounds.total, join.totalRounds, 'rounds.total');
  const privacy = privacyPolicyOf(m);
  requireSame('the privacy policy', privacy.mode, join.privacy.mode, 'privacy.mode');
  requireSame('the privacy policy', privacy, join.privacy, 'privacy');
  const secureAggregation = secureAggregationOf(m);
  requireSame('the secure aggregation scheme', secureAggregation.scheme, join.secureAggregation.scheme, 'secureAggregation.scheme');
  requireSame('the secure aggregation', secureAggregation, join.secureAggregation, 'secureAggregation');
  if (m.schemaHash !== undefined) requireSame('the table schema', m.schemaHash, schemaHash(join.schema), 'schemaHash');
  return { ...join, consortium: m.consortium, model: m.model, strategy: m.strategy, totalRounds: m.rounds.total, privacy, secureAggregation };
}

/** A round's training config must be the manifest's. */
export function checkTaskTraining(pinned: PinnedConsortium, training: TrainingConfig): void {
  requireSame('a round training config', pinned.manifest.training, training);
}

/** The warning a member without DP logs every round (it opted in explicitly). */
export function warnPrivacyOff(log: Logger, round: number): void {
  log.warn({ event: 'privacy-off', round }, `round ${round}: this member contributes WITHOUT differential privacy (privacy: { mode: off } in its config)`);
}
