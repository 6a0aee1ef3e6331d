import { Level, type BatchOperation } from 'level';

type Ops = Array<BatchOperation<Level<string, unknown>, string, unknown>>;
import { FedtwinError } from '@fedtwin/errors';
import type { PrivacySpend } from '@fedtwin/protocol';

/**
 * What a masked round (scheme secagg) needs after a restart beyond the ledger: whether its keys and shares
 * phases closed, and the share bundles (the ledger holds each bundle's hash, not its shares). The
 * advertisements, the recovery request and the reveals are read back from the ledger.
 */
export interface SecaggSnapshot {
  round: number;
  keysClosed: boolean;
  sharesClosed: boolean;
  /** Bundles as received (wire form), written before their ledger entry; only those with an entry count. */
  bundles: Array<{ member: string; bCommit: string; shares: Array<{ from: string; to: string; nonce: string; ciphertext: string }> }>;
}

/** What the aggregator persists about a round. */
export interface RoundRecord {
  round: number;
  baseVersion: number;
  openedAt: number;
  deadline: number;
  status: 'open' | 'aggregated' | 'failed';
  contributions: ContributionRecord[];
  /** Why a round failed (e.g. too few participants by the deadline). */
  reason?: string;
  /** Members that declined this round (privacy budget), with their reason. */
  refusals?: RefusalRecord[];
  /** Contributions taken out of the round's aggregate after they broke it (their authors were excluded). */
  withdrawn?: ContributionRecord[];
  /** With BFV: the HE key id in force when the round opened (a rotation applies from the next round). */
  keyId?: string;
  /** Model version id of the round's base (protocol's model-version chain), fixed at open: never taken from an upload. */
  baseHash?: string;
  /** Under secagg, while a withdrawn sum's culprit is isolated: the suspect this round runs without (isolation.ts). */
  sitOut?: string;
}

export interface RefusalRecord {
  peer: string;
  code: string;
  reason: string;
  privacy: PrivacySpend[];
  at: number;
}

export interface ContributionRecord {
  peer: string;
  /** 1 under DP (uniform FedAvg); the member's record count with DP off. */
  weight: number;
  /** The member's training loss and time: kept with DP off only (docs/privacy.md, "What leaves a node"). */
  loss?: number;
  bytes: number;
  baseHash: string;
  trainSeconds?: number;
  receivedAt: number;
  /** What the member says this contribution cost it in privacy (per mode). */
  privacy: PrivacySpend[];
  /** Leaf index of the member's signed contribution entry in the audit log. */
  ledgerIndex?: number;
}

/** The HE key in force: id, epoch and each member's sealed copy (opaque to the aggregator). */
export interface KeyRecord {
  keyId: string;
  epoch: number;
  boxes: Record<string, unknown>;
}

export interface AggregateRecord {
  version: number;
  round: number;
  participants: string[];
  totalWeight: number;
  values: number;
  baseHash: string;
  createdAt: number;
  encoding?: 'f32le' | 'bfv' | 'secagg';
  keyId?: string;
}

export interface AggregatorState {
  /** Highest round number opened so far (0 = none). */
  round: number;
  /** Number of aggregates published (the global model's version). */
  version: number;
  status: 'waiting' | 'running' | 'finished';
  /** Members that declined for an exhausted privacy budget: they will not contribute again. */
  exhausted?: string[];
  /** Why the federation finished before `totalRounds`, if it did. */
  finishedEarly?: string;
  /** Members excluded for the rest of the federation (their contribution broke an aggregate, or they reported one falsely). */
  excluded?: string[];
  /** The published aggregate members reported unusable, while its culprit is searched for (restarts resume it). */
  investigating?: { version: number; round: number };
  /** Under secagg: the suspects of withdrawn masked sums, narrowed over fresh rounds (isolation.ts; restarts continue it). */
  isolation?: import('./isolation.ts').Isolation;
  /** Model version id of global version `version` (the next round's base). */
  modelVersion?: string;
}

/** Keys sort bytewise: fixed-width big-endian-ish decimal keeps rounds in order. */
export const roundKey = (r: number): string => r.toString().padStart(12, '0');

/**
 * Level layout (sublevels): meta/state, rounds/<round>, updates/<round>/<peer> (bytes, kept until
 * the round is aggregated), aggregates/<version> (record) and aggbody/<version> (bytes).
 * Every transition is one atomic batch with sync, so a crash leaves the previous or the next state.
 */
export class AggregatorStore {
  readonly db: Level<string, unknown>;
  private readonly meta;
  private readonly rounds;
  private readonly updates;
  private readonly aggregates;
  private readonly aggbody;
  private readonly secagg;

  private constructor(db: Level<string, unknown>) {
    this.db = db;
    this.meta = db.sublevel<string, AggregatorState | KeyRecord>('meta', { valueEncoding: 'json' });
    this.rounds = db.sublevel<string, RoundRecord>('rounds', { valueEncoding: 'json' });
    this.updates = db.sublevel<string, Uint8Array>('updates', { valueEncoding: 'view' });
    this.aggregates = db.sublevel<string, AggregateRecord>('aggregates', { valueEncoding: 'json' });
    this.aggbody = db.sublevel<string, Uint8Array>('aggbody', { valueEncoding: 'view' });
    this.secagg = db.sublevel<string, SecaggSnapshot>('secagg', { valueEncoding: 'json' });
  }

  /** The open masked round's phase closures and share bundles (what the ledger does not hold), or undefined. */
  async getSecagg(round: number): Promise<SecaggSnapshot | undefined> {
    return this.secagg.get(roundKey(round));
  }

  async saveSecagg(snap: SecaggSnapshot): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.secagg, key: roundKey(snap.round), value: snap }] as Ops, { sync: true });
  }

  static async open(dir: string): Promise<AggregatorStore> {
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      throw lockedOrCorrupt(dir, err);
    }
    return new AggregatorStore(db);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async state(): Promise<AggregatorState> {
    return ((await this.meta.get('state')) as AggregatorState | undefined) ?? { round: 0, version: 0, status: 'waiting' };
  }

  async getKey(): Promise<KeyRecord | undefined> {
    return (await this.meta.get('he-key')) as KeyRecord | undefined;
  }

  async saveKey(key: KeyRecord): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: 'he-key', value: key }] as Ops, { sync: true });
  }

  async getRound(round: number): Promise<RoundRecord | undefined> {
    return this.rounds.get(roundKey(round));
  }

  async listRounds(): Promise<RoundRecord[]> {
    return this.rounds.values().all();
  }

  async getAggregate(version: number): Promise<{ record: AggregateRecord; body: Uint8Array } | undefined> {
    const [record, body] = await Promise.all([this.aggregates.get(roundKey(version)), this.aggbody.get(roundKey(version))]);
    if (record === undefined || body === undefined) return undefined;
    return { record, body };
  }

  async listAggregates(): Promise<AggregateRecord[]> {
    return this.aggregates.values().all();
  }

  async updatesOf(round: number): Promise<Map<string, Uint8Array>> {
    const prefix = `${roundKey(round)}/`;
    const out = new Map<string, Uint8Array>();
    for await (const [k, v] of this.updates.iterator({ gte: prefix, lt: `${prefix}\xff` })) out.set(k.slice(prefix.length), v);
    return out;
  }

  async openRound(state: AggregatorState, record: RoundRecord): Promise<void> {
    await this.db.batch([
      { type: 'put', sublevel: this.rounds, key: roundKey(record.round), value: record },
      { type: 'put', sublevel: this.meta, key: 'state', value: state },
    ] as Ops, { sync: true });
  }

  /**
   * Replaces (a culprit excluded: the honest members' sum) or withdraws (none left) the aggregate of a round
   * members could not use; round record and state move with it in one batch.
   */
  async replaceAggregate(record: RoundRecord, state: AggregatorState, version: number, aggregate: { record: AggregateRecord; body: Uint8Array } | undefined): Promise<void> {
    const ops: Ops = [
      { type: 'put', sublevel: this.rounds, key: roundKey(record.round), value: record },
      { type: 'put', sublevel: this.meta, key: 'state', value: state },
    ];
    if (aggregate) {
      ops.push({ type: 'put', sublevel: this.aggregates, key: roundKey(version), value: aggregate.record });
      ops.push({ type: 'put', sublevel: this.aggbody, key: roundKey(version), value: aggregate.body });
    } else {
      ops.push({ type: 'del', sublevel: this.aggregates, key: roundKey(version) });
      ops.push({ type: 'del', sublevel: this.aggbody, key: roundKey(version) });
    }
    await this.db.batch(ops, { sync: true });
  }

  async saveState(state: AggregatorState): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: 'state', value: state }] as Ops, { sync: true });
  }

  async saveRound(record: RoundRecord): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.rounds, key: roundKey(record.round), value: record }] as Ops, { sync: true });
  }

  /** Persists one contribution and the round record that lists it, atomically. */
  async addContribution(record: RoundRecord, peer: string, body: Uint8Array): Promise<void> {
    await this.db.batch([
      { type: 'put', sublevel: this.updates, key: `${roundKey(record.round)}/${peer}`, value: body },
      { type: 'put', sublevel: this.rounds, key: roundKey(record.round), value: record },
    ] as Ops, { sync: true });
  }

  /**
   * Closes a round: publishes its aggregate (or marks it failed), moves state. The raw updates of an
   * aggregated round are kept until the next round closes (members may report its sum unusable, and the
   * culprit is found from subset sums of them); older rounds' updates are dropped.
   */
  async closeRound(record: RoundRecord, state: AggregatorState, aggregate?: { record: AggregateRecord; body: Uint8Array }): Promise<void> {
    const ops: Ops = [
      { type: 'put', sublevel: this.rounds, key: roundKey(record.round), value: record },
      { type: 'put', sublevel: this.meta, key: 'state', value: state },
    ];
    // Keep the updates of the latest aggregated round (this one, or the one the current version came from).
    const keepFrom = aggregate ? record.round : ((await this.getAggregate(state.version))?.record.round ?? record.round);
    for await (const k of this.updates.keys({ lt: roundKey(keepFrom) })) ops.push({ type: 'del', sublevel: this.updates, key: k });
    if (!aggregate) for (const c of record.contributions) ops.push({ type: 'del', sublevel: this.updates, key: `${roundKey(record.round)}/${c.peer}` });
    ops.push({ type: 'del', sublevel: this.secagg, key: roundKey(record.round) });
    if (aggregate) {
      ops.push({ type: 'put', sublevel: this.aggregates, key: roundKey(aggregate.record.version), value: aggregate.record });
      ops.push({ type: 'put', sublevel: this.aggbody, key: roundKey(aggregate.record.version), value: aggregate.body });
    }
    await this.db.batch(ops, { sync: true });
  }
}

export function lockedOrCorrupt(dir: string, err: unknown): FedtwinError {
  const cause = err as { code?: string; cause?: { code?: string } };
  if (cause.code === 'LEVEL_LOCKED' || cause.cause?.code === 'LEVEL_LOCKED') {
    return new FedtwinError('STATE_LOCKED', `state directory ${dir} is in use by another process`, {
      hint: 'stop the daemon that uses it, or give this one its own dataDir', cause: err,
    });
  }
  return new FedtwinError('STATE_OPEN_FAILED', `cannot open state directory ${dir}: ${(err as Error).message}`, {
    hint: 'check the path and its permissions; restore it from a backup if it is corrupt', cause: err,
  });
}
