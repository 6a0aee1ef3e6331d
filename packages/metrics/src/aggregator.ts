import { Counter, Histogram, type Registry } from 'prom-client';
import { daemonRegistry, derivedCounter, derivedGauge, verificationFailures, wireBytes, type BytesByProtocol } from './registry.ts';

/**
 * What the aggregator's metrics read: the shape of `fedtwin status`'s AggregatorStatus (structurally; this
 * package does not depend on the CLI that builds it).
 */
export interface AggregatorView {
  rounds: Array<{ round: number; status: string; seconds?: number; participants: number; refusals: number }>;
  members: Array<{ peerId: string; name?: string; contributions: number; refusals: number; epsilon: { spent: number; budget: number } | null; excluded: boolean }>;
  version: number;
  ledger: { size: number; checkpoint: { size: number; cosignatures: number } | null } | null;
}

/** Round durations from a few seconds (small sims) to half an hour (large models, slow sites). */
export const ROUND_DURATION_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];

/** Log events of the aggregator that are failed verifications, and the `check` label each gets. */
const FAILURE_EVENTS: Record<string, string> = {
  'sum-mismatch': 'aggregate-sum',
  'member-excluded': 'contribution',
  'aggregate-withdrawn': 'aggregate',
};

export interface DaemonMetrics {
  registry: Registry;
  /** Feed the daemon's structured log events (observeEvents) here: some metrics are counted from them. */
  onEvent(e: Record<string, unknown>): void;
  /** A request the daemon refused with a typed error (its code), e.g. a forged signature on an upload. */
  refused(protocol: string, code: string): void;
  /** The exposition text and its content type, for GET /metrics. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * The aggregator's metrics. Counts that the aggregator keeps in its state (rounds, contributions, refusals, ε
 * each member's signed entries report, the ledger's size and cosignatures) are read from `status()` at scrape
 * time, so they agree with `fedtwin status`; the round-duration histogram observes each aggregated round once.
 */
export function createAggregatorMetrics(init: { status: () => Promise<AggregatorView>; bytes: () => BytesByProtocol }): DaemonMetrics {
  const registry = daemonRegistry('aggregator');
  // One status per scrape: every collector below reads the same snapshot.
  let pending: Promise<AggregatorView> | undefined;
  const view = (): Promise<AggregatorView> => (pending ??= init.status().finally(() => { setImmediate(() => { pending = undefined; }); }));
  const observed = new Set<number>();
  // Each aggregated round observed once, when a scrape first sees it (its duration is in the state already).
  new Histogram({
    name: 'fedtwin_round_duration_seconds', help: 'Time from a round\'s opening to its aggregate', buckets: ROUND_DURATION_BUCKETS, registers: [registry],
    async collect() {
      for (const r of (await view()).rounds) {
        if (r.status !== 'aggregated' || r.seconds === undefined || observed.has(r.round)) continue;
        observed.add(r.round);
        this.observe(r.seconds);
      }
    },
  });
  derivedCounter(registry, 'fedtwin_rounds_opened_total', 'Rounds opened', [] as const, async () => [[{}, (await view()).rounds.length]]);
  derivedCounter(registry, 'fedtwin_rounds_closed_total', 'Rounds closed, by outcome (aggregated, or failed at the deadline)', ['outcome'] as const, async () => {
    const v = await view();
    const aggregated = v.rounds.filter((r) => r.status === 'aggregated').length;
    const closed = v.rounds.filter((r) => r.status !== 'open').length;
    return [[{ outcome: 'aggregated' }, aggregated], [{ outcome: 'failed' }, closed - aggregated]];
  });
  derivedGauge(registry, 'fedtwin_model_version', 'Aggregates published (the global model\'s version)', [] as const, async () => [[{}, (await view()).version]]);
  const perMember = (pick: (m: AggregatorView['members'][number]) => number | undefined) => async () => {
    const out: Array<[Partial<Record<'member' | 'name', string>>, number]> = [];
    for (const m of (await view()).members) {
      const v = pick(m);
      if (v !== undefined) out.push([{ member: m.peerId, name: m.name ?? '' }, v]);
    }
    return out;
  };
  derivedCounter(registry, 'fedtwin_contributions_total', 'Contributions accepted, by member', ['member', 'name'] as const, perMember((m) => m.contributions));
  derivedCounter(registry, 'fedtwin_refusals_total', 'Rounds a member declined (its budget would not allow them), by member', ['member', 'name'] as const, perMember((m) => m.refusals));
  derivedGauge(registry, 'fedtwin_privacy_epsilon_spent', 'ε a member has spent, as its latest signed contribution or refusal reports', ['member', 'name'] as const, perMember((m) => m.epsilon?.spent));
  derivedGauge(registry, 'fedtwin_privacy_epsilon_budget', 'A member\'s ε budget over the whole federation', ['member', 'name'] as const, perMember((m) => m.epsilon?.budget));
  derivedGauge(registry, 'fedtwin_member_excluded', '1 when a member was excluded for a bad contribution', ['member', 'name'] as const, perMember((m) => (m.excluded ? 1 : 0)));
  derivedGauge(registry, 'fedtwin_ledger_entries', 'Entries in the consortium\'s ledger', [] as const, async () => [[{}, (await view()).ledger?.size ?? 0]]);
  derivedGauge(registry, 'fedtwin_ledger_checkpoint_cosignatures', 'Member cosignatures on the latest signed checkpoint', [] as const, async () => [[{}, (await view()).ledger?.checkpoint?.cosignatures ?? 0]]);
  wireBytes(registry, init.bytes);
  const failure = verificationFailures(registry);
  const rejected = new Counter({ name: 'fedtwin_requests_rejected_total', help: 'Requests refused with a typed error (a bad signature, a stale round, a non-member …), by protocol and code', labelNames: ['protocol', 'code'], registers: [registry] });
  // Codes of refusals that are failed checks of what a member sent (not an idle or early request).
  const verifyCodes = /SIGNATURE|FORGED|MISMATCH|INVALID|BAD_|NOT_MEMBER|DUPLICATE|REPLAY/;
  return {
    registry,
    onEvent(e) {
      const check = typeof e.event === 'string' ? FAILURE_EVENTS[e.event] : undefined;
      if (check) failure(check);
    },
    refused(protocol, code) {
      rejected.inc({ protocol, code });
      if (verifyCodes.test(code)) failure(`request:${protocol}`);
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
