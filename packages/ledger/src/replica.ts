// Witness / replica side of ledger sync. No networking here: the caller moves a SyncBundle
// (from Ledger.syncBundle on the aggregator) over /fedtwin/ledger/1.0.0 and hands it to sync().
//
// sync() checks, before writing anything: the checkpoint's signature by the pinned aggregator key, each
// new entry's signature, that its own leaves plus the new ones hash to the checkpoint's root, that the
// checkpoint is consistent with the last one it accepted, and that the caller's own contributions are in.
// Then it appends the entries and the co-signed checkpoint in one batch and returns its cosignature.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { bytesEqual, toHex } from './bytes.ts';
import { authorshipViolation, decodeEntryAsync, isAuthorKey, type LedgerEntry } from './entry.ts';
import { pushLeaf, rootOfRange, verifyConsistency } from './merkle.ts';
import {
  cosignNote,
  cosignatureLine,
  formatVerifierKey,
  parseCheckpoint,
  parseVerifierKey,
  verifyCheckpoint,
  type NoteSigner,
  type NoteVerifier,
} from './checkpoint.ts';
import type { Ledger, SyncBundle } from './ledger.ts';

export interface ReplicaInit {
  /** the replica's own ledger, opened writable */
  ledger: Ledger;
  /** the aggregator's log origin (its checkpoint key name) */
  origin: string;
  /** the aggregator's checkpoint key: C2SP vkey text or a verifier */
  aggregatorKey: string | NoteVerifier;
  /** this member's note signer (key name = its peer ID) */
  witness: NoteSigner;
}

/** An own contribution that must be in the log: its leaf hash (or the entry), optionally where. */
export type InclusionExpectation = { leafHash: Uint8Array; index?: number } | LedgerEntry;

export interface SyncInput extends SyncBundle {
  mustInclude?: readonly InclusionExpectation[];
}

export interface SyncResult {
  size: number;
  rootHash: Uint8Array;
  appended: number;
  /** this witness's signature line, to send back to the aggregator */
  cosignature: string;
  /** the checkpoint note with this witness's line appended (as stored locally) */
  note: string;
}

function inconsistent(message: string, details: Record<string, unknown>): FedtwinError {
  return new FedtwinError('LEDGER_INCONSISTENT', message, {
    hint: 'the aggregator served a history that contradicts what this node already accepted (fork or edit); nothing was stored — keep the evidence and alert the consortium',
    details,
  });
}

export class Replica {
  readonly ledger: Ledger;
  readonly origin: string;
  readonly aggregator: NoteVerifier;
  readonly witness: NoteSigner;
  #busy: Promise<unknown> = Promise.resolve();

  constructor(init: ReplicaInit, aggregator: NoteVerifier) {
    this.ledger = init.ledger;
    this.origin = init.origin;
    this.aggregator = aggregator;
    this.witness = init.witness;
  }

  get size(): number {
    return this.ledger.size;
  }

  /** Verifies a bundle, persists it atomically and returns this witness's cosignature. Serialized. */
  sync(input: SyncInput): Promise<SyncResult> {
    const run = this.#busy.then(() => this.#sync(input));
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async #sync(input: SyncInput): Promise<SyncResult> {
    if (!input || typeof input.checkpoint !== 'string' || !Array.isArray(input.entries) || !Array.isArray(input.consistencyProof)) {
      throw new FedtwinError('LEDGER_SYNC_INVALID', 'sync needs { entries, checkpoint, consistencyProof }');
    }
    // 1. the aggregator's signature on the checkpoint
    const { checkpoint } = verifyCheckpoint(input.checkpoint, [this.aggregator], { origin: this.origin, require: [this.aggregator.name] });
    const local = this.ledger.size;
    const localRoot = this.ledger.rootHash;
    const cpRoot = toHex(checkpoint.rootHash);
    if (checkpoint.size < local) {
      throw inconsistent(`checkpoint for size ${checkpoint.size} is smaller than the ${local} entries this replica already accepted`, {
        localSize: local,
        localRoot: toHex(localRoot),
        checkpointSize: checkpoint.size,
        checkpointRoot: cpRoot,
      });
    }
    if (input.entries.length !== checkpoint.size - local) {
      throw new FedtwinError('LEDGER_SYNC_INVALID', `sync carries ${input.entries.length} entries; from size ${local} to checkpoint size ${checkpoint.size} needs ${checkpoint.size - local}`);
    }
    // 2. every new entry parses and its signature verifies
    const entries = await Promise.all(
      input.entries.map((b, k) =>
        decodeEntryAsync(b, this.origin).catch((e: unknown) => {
          const err = e as FedtwinError;
          throw new FedtwinError(isFedtwinError(err) ? err.code : 'LEDGER_ENTRY_INVALID', `entry ${local + k}: ${err.message}`, {
            ...(isFedtwinError(err) && err.hint !== undefined ? { hint: err.hint } : {}),
            details: { ...(isFedtwinError(err) ? (err.details as object | undefined) : undefined), index: local + k },
          });
        }),
      ),
    );
    // 2b. authorship: member entries by the node they name, everything else by the aggregator
    const isAggregator = isAuthorKey(this.aggregator.publicKey);
    entries.forEach((e, k) => {
      const why = authorshipViolation(e, isAggregator);
      if (why) {
        throw new FedtwinError('LEDGER_ENTRY_INVALID', `entry ${local + k}: ${why}`, {
          hint: 'the aggregator appended an entry its author could not have made; nothing was stored and nothing co-signed',
          details: { index: local + k, author: e.author, type: e.payload.type },
        });
      }
    });
    // 3. own leaves + new leaves must hash to the checkpoint's root
    const range = this.ledger.compactRange();
    entries.forEach((e, k) => pushLeaf(range, local + k, e.leafHash));
    const calculated = rootOfRange(range);
    if (!bytesEqual(calculated, checkpoint.rootHash)) {
      throw inconsistent(`checkpoint root ${cpRoot} at size ${checkpoint.size} does not match the root ${toHex(calculated)} of this replica's entries plus the ${entries.length} new ones`, {
        checkpointSize: checkpoint.size,
        expectedRoot: cpRoot,
        calculatedRoot: toHex(calculated),
        localSize: local,
        localRoot: toHex(localRoot),
      });
    }
    // 4. consistency with the last checkpoint this replica accepted
    const last = await this.ledger.latestCheckpoint();
    if (last && last.size > 0) {
      const prev = parseCheckpoint(last.note).checkpoint;
      try {
        verifyConsistency(prev.size, checkpoint.size, input.consistencyProof, prev.rootHash, checkpoint.rootHash);
      } catch (e) {
        if (!isFedtwinError(e, 'LEDGER_PROOF_INVALID')) throw e;
        throw inconsistent(`checkpoint (size ${checkpoint.size}, root ${cpRoot}) is not consistent with the accepted checkpoint (size ${prev.size}, root ${toHex(prev.rootHash)}): ${e.message}`, {
          previousSize: prev.size,
          previousRoot: toHex(prev.rootHash),
          checkpointSize: checkpoint.size,
          checkpointRoot: cpRoot,
          proofError: e.details,
        });
      }
    }
    // 5. own contributions are included
    for (const want of input.mustInclude ?? []) {
      const leafHash = want.leafHash;
      const index = 'index' in want ? want.index : undefined;
      let found: boolean;
      if (index !== undefined) {
        if (!Number.isSafeInteger(index) || index < 0 || index >= checkpoint.size) found = false;
        else found = bytesEqual(index < local ? await this.ledger.leafHash(index) : entries[index - local].leafHash, leafHash);
      } else {
        found = entries.some((e) => bytesEqual(e.leafHash, leafHash));
      }
      if (!found) {
        throw new FedtwinError('LEDGER_NOT_INCLUDED', `own entry ${toHex(leafHash)}${index === undefined ? '' : ` at index ${index}`} is not in the log at size ${checkpoint.size}`, {
          hint: 'the aggregator dropped or replaced this contribution; do not co-sign, report it',
          details: { leafHash: toHex(leafHash), index, checkpointSize: checkpoint.size },
        });
      }
    }
    // 6. co-sign and persist entries + co-signed checkpoint in one batch
    const note = cosignNote(input.checkpoint, this.witness);
    const cosignature = cosignatureLine(input.checkpoint, this.witness);
    await this.ledger.commitWithCheckpoint(entries, checkpoint.size, note);
    return { size: checkpoint.size, rootHash: checkpoint.rootHash, appended: entries.length, cosignature, note };
  }
}

/** Pins the aggregator's origin and key in the replica's ledger (once) and returns the replica. */
export async function createReplica(init: ReplicaInit): Promise<Replica> {
  const aggregator = typeof init.aggregatorKey === 'string' ? parseVerifierKey(init.aggregatorKey) : init.aggregatorKey;
  if (aggregator.name !== init.origin) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `aggregator key name ${aggregator.name} is not the origin ${init.origin}`);
  }
  await init.ledger.setCheckpointIdentity(init.origin, formatVerifierKey(aggregator));
  return new Replica(init, aggregator);
}
