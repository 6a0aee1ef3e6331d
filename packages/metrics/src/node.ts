import type { DaemonMetrics } from './aggregator.ts';
import { daemonRegistry, derivedCounter, derivedGauge, verificationFailures, wireBytes, type BytesByProtocol } from './registry.ts';

/** What the node's metrics read: the shape of `fedtwin status`'s NodeStatus (structurally). */
export interface NodeView {
  version: number;
  contributions: number;
  privacy: Array<{ mode: string; spent: number; budget: number }>;
  refused: { round: number } | null;
  replica: { size: number; checkpoint: { size: number; cosignatures: number } | null } | null;
}

/** Node log events that are failed verifications of what the aggregator or a peer served, and their `check` label. */
const FAILURE_EVENTS: Record<string, string> = {
  'split-view': 'ledger-split-view',
  'witness-forged-cosignature': 'cosignature',
};

/**
 * A member's own metrics: its contributions, its own ε against its budget (its accountant's figures), its
 * replica's verified size and the checks that failed on what it was served. Read from `status()` at scrape time.
 */
export function createNodeMetrics(init: { status: () => Promise<NodeView>; bytes: () => BytesByProtocol }): DaemonMetrics {
  const registry = daemonRegistry('node');
  derivedGauge(registry, 'fedtwin_model_version', 'Global model version this member holds (aggregates applied)', [] as const, async () => [[{}, (await init.status()).version]]);
  derivedCounter(registry, 'fedtwin_contributions_total', 'Updates this member contributed', [] as const, async () => [[{}, (await init.status()).contributions]]);
  derivedCounter(registry, 'fedtwin_refusals_total', 'Rounds this member declined for its budget', [] as const, async () => [[{}, (await init.status()).refused ? 1 : 0]]);
  derivedGauge(registry, 'fedtwin_privacy_epsilon_spent', 'ε this member has spent (its own accountant), by DP mode', ['mode'] as const, async () => (await init.status()).privacy.map((p) => [{ mode: p.mode }, p.spent]));
  derivedGauge(registry, 'fedtwin_privacy_epsilon_budget', 'This member\'s ε budget, by DP mode', ['mode'] as const, async () => (await init.status()).privacy.map((p) => [{ mode: p.mode }, p.budget]));
  derivedGauge(registry, 'fedtwin_ledger_entries', 'Entries of this member\'s verified ledger replica', [] as const, async () => [[{}, (await init.status()).replica?.size ?? 0]]);
  derivedGauge(registry, 'fedtwin_ledger_checkpoint_cosignatures', 'Cosignatures on the checkpoint this member last verified and co-signed', [] as const, async () => [[{}, (await init.status()).replica?.checkpoint?.cosignatures ?? 0]]);
  wireBytes(registry, init.bytes);
  const failure = verificationFailures(registry);
  return {
    registry,
    onEvent(e) {
      const check = typeof e.event === 'string' ? FAILURE_EVENTS[e.event] : undefined;
      if (check) failure(check);
    },
    refused() {
      // a node answers only gossip; a refused gossip request is the peer's problem, counted by the peer
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
