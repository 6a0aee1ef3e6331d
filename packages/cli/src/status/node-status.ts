import { existsSync } from 'node:fs';
import { FedtwinError } from '@fedtwin/errors';
import type { NodeState } from '@fedtwin/node';
import type { PrivacySpend } from '@fedtwin/protocol';
import { readLedgerDir, type LedgerView } from './ledger-view.ts';

/** `fedtwin status` of a node: its model version, its own budget and contributions, its replica of the ledger. */
export interface NodeStatus {
  role: 'node';
  consortium: string;
  peerId: string;
  source: 'live' | 'dataDir';
  updatedAt: number;
  /** Global model version held (aggregates applied) and its hash. */
  version: number;
  hash: string | null;
  lastRound: number;
  /** Live only: the federation finished for this member (null when read from the dataDir). */
  finished: boolean | null;
  contributions: number;
  contributedRounds: number[];
  /** Per DP mode: ε spent of this member's own budget (its accountant's figure). */
  privacy: Array<{ mode: 'record' | 'site'; spent: number; budget: number; delta: number }>;
  /** The round this member declined for budget (it then declines every later one). */
  refused: { round: number; reason: string } | null;
  /**
   * This member's replica of the ledger. Its checkpoint's `cosignatures`: live, the members' cosignatures the
   * aggregator counted when this member co-signed; from the dataDir, those in the replica's stored note (its own,
   * plus the others' when a later witness sync stored the aggregator's more co-signed note).
   */
  replica: LedgerView | null;
}

type PrivacyRow = NodeStatus['privacy'][number];

/** From a stopped node's dataDir: its Level state (the accountant's state) and its ledger replica. */
export async function readNodeDataDir(opts: { stateDir: string; ledgerDir: string; consortium: string; peerId: string; now: number }): Promise<NodeStatus> {
  if (!existsSync(opts.stateDir)) {
    throw new FedtwinError('STATUS_NO_STATE', `no node state in ${opts.stateDir}: this node has not run with this config yet`, { hint: 'start it with fedtwin node start --config <the same file>' });
  }
  const { NodeStore } = await import('@fedtwin/node');
  const store = await NodeStore.open(opts.stateDir);
  let state: NodeState | undefined;
  try {
    state = (await store.load())?.state;
  } finally {
    await store.close();
  }
  return nodeStatusFromState({ ...opts, state, replica: await readLedgerDir(opts.ledgerDir), source: 'dataDir', finished: null });
}

export async function nodeStatusFromState(i: { consortium: string; peerId: string; now: number; state: NodeState | undefined; replica: LedgerView | null; source: NodeStatus['source']; finished: boolean | null }): Promise<NodeStatus> {
  const s = i.state;
  const privacy: PrivacyRow[] = [];
  if (s?.privacy) {
    const { PrivacyBudget } = await import('@fedtwin/dp');
    for (const mode of ['record', 'site'] as const) {
      const b = s.privacy[mode];
      if (b) privacy.push({ mode, spent: PrivacyBudget.fromJSON(b).spent().epsilon, budget: b.epsilon, delta: b.delta });
    }
  }
  const refused = s?.privacy?.refused;
  return {
    role: 'node', consortium: i.consortium, peerId: i.peerId, source: i.source, updatedAt: i.now,
    version: s?.version ?? 0, hash: s?.hash ?? null, lastRound: s?.lastRound ?? 0, finished: i.finished,
    contributions: s?.contributions.length ?? 0, contributedRounds: (s?.contributions ?? []).map((c) => c.round),
    privacy, refused: refused ? { round: refused.round, reason: refused.reason } : null, replica: i.replica,
  };
}

/**
 * A running node's status, kept from its own log events (its Level state and replica are locked by the node):
 * the dataDir's status at start, then `resume`, `privacy`, `global-updated`, `contributed`, `budget-refusal`,
 * `ledger-cosigned` and `federation-finished` as the node logs them. Returns whether an event changed anything.
 */
export function applyNodeEvent(s: NodeStatus, e: Record<string, unknown>, now: number): boolean {
  const num = (k: string) => (typeof e[k] === 'number' ? (e[k] as number) : undefined);
  switch (e.event) {
    case 'resume':
      s.version = num('version') ?? s.version;
      s.lastRound = num('lastRound') ?? s.lastRound;
      break;
    case 'privacy':
    case 'budget-refusal': {
      const spent = e.spent as Record<string, { epsilon: number; budget: number; delta: number }> | undefined;
      if (spent) s.privacy = Object.entries(spent).map(([mode, x]) => ({ mode: mode as PrivacyRow['mode'], spent: x.epsilon, budget: x.budget, delta: x.delta }));
      if (e.event === 'budget-refusal') s.refused = { round: num('round') ?? 0, reason: String(e.reason ?? '') };
      break;
    }
    case 'global-updated':
      s.version = num('version') ?? s.version;
      s.hash = typeof e.hash === 'string' ? e.hash : s.hash;
      break;
    case 'contributed': {
      const round = num('round') ?? 0;
      s.contributions++;
      s.contributedRounds.push(round);
      s.lastRound = Math.max(s.lastRound, round);
      for (const p of (e.privacy as PrivacySpend[] | undefined) ?? []) {
        const row = { mode: p.mode, spent: p.epsilonTotal, budget: p.budgetEpsilon, delta: p.delta };
        const k = s.privacy.findIndex((x) => x.mode === p.mode);
        if (k >= 0) s.privacy[k] = row;
        else s.privacy.push(row);
      }
      break;
    }
    case 'ledger-cosigned': {
      const size = num('size') ?? 0;
      s.replica = { size, rootHash: String(e.root ?? ''), checkpoint: { size, cosignatures: num('cosignatures') ?? 0 } };
      break;
    }
    case 'federation-finished':
      s.finished = true;
      s.version = num('version') ?? s.version;
      s.hash = typeof e.hash === 'string' ? e.hash : s.hash;
      break;
    default:
      return false;
  }
  s.updatedAt = now;
  return true;
}
