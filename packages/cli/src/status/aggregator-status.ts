import { existsSync } from 'node:fs';
import { FedtwinError } from '@fedtwin/errors';
import type { AggregateRecord, AggregatorState, RoundRecord } from '@fedtwin/aggregator';
import type { Manifest } from '@fedtwin/consortium';
import type { PrivacySpend } from '@fedtwin/protocol';
import { readLedgerDir, type LedgerView } from './ledger-view.ts';

/**
 * `fedtwin status` of an aggregator: the same shape whether it was read from a stopped daemon's dataDir (Level
 * state + ledger) or from the status.json a running one publishes (Level lets one process open a directory).
 */
export interface AggregatorStatus {
  role: 'aggregator';
  consortium: string;
  peerId: string;
  /** `live`: published by the running daemon at `updatedAt`; `dataDir`: read from a stopped daemon's files. */
  source: 'live' | 'dataDir';
  updatedAt: number;
  status: AggregatorState['status'];
  finishedEarly?: string;
  /** Aggregates published (the global model's version) out of the manifest's rounds.total. */
  version: number;
  totalRounds: number;
  rounds: RoundStatus[];
  members: MemberStatus[];
  /** The HE key in force (BFV), or null (plaintext, or before the key ceremony). */
  he: { scheme: 'bfv' | 'secagg' | 'plaintext'; keyId: string | null; epoch: number | null };
  ledger: LedgerView | null;
}

export interface RoundStatus {
  round: number;
  status: RoundRecord['status'];
  baseVersion: number;
  participants: number;
  refusals: number;
  openedAt: number;
  /** When its aggregate was published (aggregated rounds only). */
  aggregatedAt?: number;
  seconds?: number;
  reason?: string;
}

export interface MemberStatus {
  peerId: string;
  name?: string;
  /** Joined this daemon since it started (live only; null when read from the dataDir, which does not record joins). */
  joined: boolean | null;
  /** Its last request (live), or its last contribution or refusal (dataDir). */
  lastSeenAt: number | null;
  contributions: number;
  refusals: number;
  /** ε this member reported in its latest contribution or refusal, against its budget (what its signed entries say). */
  epsilon: { spent: number; budget: number; delta: number; mode: 'record' | 'site' } | null;
  excluded: boolean;
  exhausted: boolean;
}

/** What the daemon observed of its members (not persisted): joins and last requests. */
export type Observed = Record<string, { joinedAt?: number; lastSeenAt?: number }>;

export interface AggregatorStatusInput {
  manifest: Manifest;
  peerId: string;
  state: AggregatorState;
  rounds: RoundRecord[];
  aggregates: AggregateRecord[];
  key: { keyId: string; epoch: number | null } | undefined;
  ledger: LedgerView | null;
  observed?: Observed;
  source: AggregatorStatus['source'];
  now: number;
}

export function aggregatorStatus(i: AggregatorStatusInput): AggregatorStatus {
  const aggregatedAt = new Map(i.aggregates.map((a) => [a.round, a.createdAt]));
  const rounds = [...i.rounds].sort((a, b) => a.round - b.round).map((r): RoundStatus => {
    const at = r.status === 'aggregated' ? aggregatedAt.get(r.round) : undefined;
    return {
      round: r.round, status: r.status, baseVersion: r.baseVersion, participants: r.contributions.length, refusals: r.refusals?.length ?? 0, openedAt: r.openedAt,
      ...(at !== undefined ? { aggregatedAt: at, seconds: (at - r.openedAt) / 1000 } : {}), ...(r.reason ? { reason: r.reason } : {}),
    };
  });
  const excluded = new Set(i.state.excluded ?? []);
  const exhausted = new Set(i.state.exhausted ?? []);
  const members = i.manifest.members.map((m): MemberStatus => {
    let contributions = 0;
    let refusals = 0;
    let last = 0;
    let spend: { at: number; privacy: PrivacySpend[] } | undefined;
    for (const r of i.rounds) {
      for (const c of r.contributions) {
        if (c.peer !== m.peerId) continue;
        contributions++;
        last = Math.max(last, c.receivedAt);
        if (!spend || c.receivedAt >= spend.at) spend = { at: c.receivedAt, privacy: c.privacy };
      }
      for (const f of r.refusals ?? []) {
        if (f.peer !== m.peerId) continue;
        refusals++;
        last = Math.max(last, f.at);
        if (!spend || f.at >= spend.at) spend = { at: f.at, privacy: f.privacy };
      }
    }
    const seen = i.observed?.[m.peerId];
    const lastSeenAt = Math.max(seen?.lastSeenAt ?? 0, last) || null;
    const p = spend?.privacy.find((x) => x.mode === 'record') ?? spend?.privacy[0];
    return {
      peerId: m.peerId, ...(m.name ? { name: m.name } : {}),
      joined: i.observed ? seen?.joinedAt !== undefined : null, lastSeenAt, contributions, refusals,
      epsilon: p ? { spent: p.epsilonTotal, budget: p.budgetEpsilon, delta: p.delta, mode: p.mode } : null,
      excluded: excluded.has(m.peerId), exhausted: exhausted.has(m.peerId),
    };
  });
  const scheme = i.manifest.secureAggregation.scheme;
  return {
    role: 'aggregator', consortium: i.manifest.consortium, peerId: i.peerId, source: i.source, updatedAt: i.now,
    status: i.state.status, ...(i.state.finishedEarly ? { finishedEarly: i.state.finishedEarly } : {}),
    version: i.state.version, totalRounds: i.manifest.rounds.total, rounds, members,
    he: { scheme, keyId: i.key?.keyId ?? null, epoch: i.key?.epoch ?? null }, ledger: i.ledger,
  };
}

/**
 * From a stopped aggregator's dataDir. Level would let this process take the directory's lock (and so keep a
 * starting daemon out for a moment): the caller reads here only when no live daemon published a status.
 */
export async function readAggregatorDataDir(opts: { stateDir: string; ledgerDir: string; manifest: Manifest; peerId: string; now: number }): Promise<AggregatorStatus> {
  if (!existsSync(opts.stateDir)) {
    throw new FedtwinError('STATUS_NO_STATE', `no aggregator state in ${opts.stateDir}: this aggregator has not run with this config yet`, { hint: 'start it with fedtwin aggregator start --config <the same file>' });
  }
  const { AggregatorStore } = await import('@fedtwin/aggregator');
  const store = await AggregatorStore.open(opts.stateDir);
  let input: Omit<AggregatorStatusInput, 'ledger'>;
  try {
    const key = await store.getKey();
    input = {
      manifest: opts.manifest, peerId: opts.peerId, state: await store.state(), rounds: await store.listRounds(), aggregates: await store.listAggregates(),
      key: key ? { keyId: key.keyId, epoch: key.epoch } : undefined, source: 'dataDir', now: opts.now,
    };
  } finally {
    await store.close();
  }
  return aggregatorStatus({ ...input, ledger: await readLedgerDir(opts.ledgerDir) });
}
