import type { PrivateKey } from '@libp2p/interface';
import {
  createEntry, createEntrySigner, createNoteSigner, createReplica, noteVerifierFromPeerId, openLedger,
  type EntryPayloadInput, type Ledger, type Replica,
} from '@fedtwin/ledger';

/**
 * This member's side of the audit log: it signs its own contribution and refusal entries, keeps a
 * replica of the consortium's log, checks every new checkpoint is consistent with the last one it
 * accepted and includes its own contributions, and co-signs it (docs/ledger.md).
 */
export interface Witness {
  /** Signs a member-authored entry; returns its bytes (base64) and leaf hash (hex). */
  sign(payload: EntryPayloadInput): Promise<{ entry: string; leafHash: string }>;
  readonly size: number;
  /** Verifies and stores a sync bundle; returns the cosigned note to send back. */
  accept(bundle: { entries: Uint8Array[]; checkpoint: string; consistencyProof: Uint8Array[] }, mustInclude: Array<{ leafHash: string; index?: number }>): Promise<{ note: string; size: number; rootHash: string }>;
  close(): Promise<void>;
}

export async function openWitness(init: { dir: string; identity: PrivateKey; aggregatorPeerId: string; origin: string }): Promise<Witness> {
  const ledger: Ledger = await openLedger({ dir: init.dir });
  const signer = createEntrySigner(init.identity);
  const replica: Replica = await createReplica({
    ledger, origin: init.origin,
    aggregatorKey: noteVerifierFromPeerId(init.aggregatorPeerId, init.origin),
    witness: createNoteSigner(signer.peerId, init.identity),
  });
  return {
    get size() { return ledger.size; },
    async sign(payload) {
      const e = await createEntry({ ...payload, time: Date.now() } as EntryPayloadInput, signer);
      return { entry: Buffer.from(e.bytes).toString('base64'), leafHash: Buffer.from(e.leafHash).toString('hex') };
    },
    async accept(bundle, mustInclude) {
      // Each own contribution must sit at the leaf index the aggregator acknowledged.
      const r = await replica.sync({ ...bundle, mustInclude: mustInclude.map((h) => ({ leafHash: Uint8Array.from(Buffer.from(h.leafHash, 'hex')), ...(h.index !== undefined ? { index: h.index } : {}) })) });
      return { note: r.note, size: r.size, rootHash: Buffer.from(r.rootHash).toString('hex') };
    },
    close: () => ledger.close(),
  };
}

