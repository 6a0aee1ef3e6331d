import { mkdir } from 'node:fs/promises';
import { Level, type BatchOperation } from 'level';

type Ops = Array<BatchOperation<Level<string, unknown>, string, unknown>>;
import { FedtwinError } from '@fedtwin/errors';
import type { PrivacySpend, UpdateHeader } from '@fedtwin/protocol';
import type { PrivacyState } from './privacy.ts';

export interface NodeState {
  /** Global model version this member holds (number of aggregates applied). */
  version: number;
  /** Version hash of those global weights. */
  hash: string;
  /** Model version id of that version (protocol's model-version chain: what rounds and aggregates name as their base). */
  base?: string;
  /** Highest round this member has handled (contributed to or skipped). */
  lastRound: number;
  /** Rounds this member contributed to, with what it reported. */
  contributions: Array<{ round: number; baseVersion: number; loss: number; weight: number; trainSeconds: number; at: number; privacy?: PrivacySpend[];
    /** Set on a contribution rebuilt from this member's ledger entry at that index (its statistics and base are unknown: NaN). */
    ledgerIndex?: number }>;
  /** Loss per epoch of each round's local training, for reports. */
  losses: Array<{ round: number; losses: number[] }>;
  /** Privacy budgets per mode and a standing refusal (see privacy.ts). */
  privacy?: PrivacyState;
  /** An update whose privacy cost is recorded but whose delivery is not yet acknowledged: after a
   *  crash it is re-sent as is (never retrained, so the round is never paid for twice). */
  pending?: { round: number; header: UpdateHeader };
  /** Leaf hash (hex) of the signed entry of the pending update. */
  pendingLeaf?: string;
  /** Leaf hashes (hex) of this member's accepted contributions: every later checkpoint must include them. */
  ledgerLeaves?: Array<{ leafHash: string; index?: number }>;
}

/**
 * A member's durable state: the global weights it holds, its private sub-model and what it has
 * contributed. Each transition is one atomic, synced batch, so a restart resumes where it stopped
 * and never contributes twice to a round.
 */
export class NodeStore {
  private readonly db: Level<string, unknown>;
  private readonly meta;
  private readonly blobs;

  private constructor(db: Level<string, unknown>) {
    this.db = db;
    this.meta = db.sublevel<string, NodeState>('meta', { valueEncoding: 'json' });
    this.blobs = db.sublevel<string, Uint8Array>('blobs', { valueEncoding: 'view' });
  }

  static async open(dir: string): Promise<NodeStore> {
    // Owner-only (it holds the private adapter trained on the site's records); Level would make it 0755.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (code === 'LEVEL_LOCKED') {
        throw new FedtwinError('STATE_LOCKED', `state directory ${dir} is in use by another process`, { hint: 'stop the other node daemon or give this one its own dataDir', cause: err });
      }
      throw new FedtwinError('STATE_OPEN_FAILED', `cannot open state directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return new NodeStore(db);
  }

  async load(): Promise<{ state: NodeState; global: Uint8Array; private: Uint8Array | undefined; pending: Uint8Array | undefined } | undefined> {
    const state = await this.meta.get('state');
    if (!state) return undefined;
    const global = await this.blobs.get('global');
    if (!global) throw new FedtwinError('STATE_CORRUPT', 'node state lists a global model but its weights are missing', { hint: 'move <dataDir>/state aside (keep the ledger replica and he-keys) and restart: the member rebuilds its privacy spending from its own ledger entries and re-syncs the model from the aggregator' });
    return { state, global, private: await this.blobs.get('private'), pending: state.pending ? await this.blobs.get('pending') : undefined };
  }

  async save(state: NodeState, global: Uint8Array, priv?: Uint8Array, pending?: Uint8Array): Promise<void> {
    const ops: Ops = [
      { type: 'put', sublevel: this.meta, key: 'state', value: state },
      { type: 'put', sublevel: this.blobs, key: 'global', value: global },
    ];
    if (priv) ops.push({ type: 'put', sublevel: this.blobs, key: 'private', value: priv });
    if (pending) ops.push({ type: 'put', sublevel: this.blobs, key: 'pending', value: pending });
    else if (!state.pending) ops.push({ type: 'del', sublevel: this.blobs, key: 'pending' });
    await this.db.batch(ops, { sync: true });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
