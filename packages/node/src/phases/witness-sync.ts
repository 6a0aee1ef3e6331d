// Ledger witness: replicate the consortium's audit log, check it, co-sign its checkpoint. A fork or an
// edit stops this member (LEDGER_INCONSISTENT propagates): it will not contribute to a rewritten history.
import { FedtwinError } from '@fedtwin/errors';
import { CosignAck, LedgerSyncResponse, MAX_LEDGER_SYNC_BYTES, Protocols, type JoinResponse } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import type { NodeContext } from '../context.ts';
import { aggregatorPeerId } from '../util.ts';
import { openWitness, type Witness } from '../witness.ts';

/** This member's replica of the audit log, if it keeps one (needs a ledger directory and its identity). */
export async function openMemberWitness(init: NodeInit, join: JoinResponse): Promise<Witness | undefined> {
  if (!init.ledgerDir || !init.identity) return undefined;
  return openWitness({ dir: init.ledgerDir, identity: init.identity, aggregatorPeerId: aggregatorPeerId(init.aggregator), origin: `fedtwin/${join.consortium}` });
}

/** Fetches the entries this member lacks, verifies them against its last co-signed checkpoint and co-signs the new one. */
export async function syncLedger(ctx: NodeContext): Promise<void> {
  const witness = ctx.witness;
  if (!witness) return;
  const { header, body } = await ctx.call(Protocols.ledger, { fromSize: witness.size }, LedgerSyncResponse, { maxBodyBytes: MAX_LEDGER_SYNC_BYTES });
  if (header.size < witness.size) {
    throw new FedtwinError('LEDGER_INCONSISTENT', `the aggregator's log has ${header.size} entries, but this member already verified and co-signed a checkpoint of ${witness.size}: history was rolled back or rewritten`, {
      hint: 'do not contribute; keep this member\'s ledger directory as evidence (fedtwin ledger verify --dir …) and alert the consortium',
      details: { served: header.size, accepted: witness.size },
    });
  }
  if (header.size === witness.size) return;
  const accepted = await witness.accept(syncBundle(header.checkpoint, body), ctx.state.ledgerLeaves ?? []);
  const { header: ack } = await ctx.call(Protocols.cosign, { note: accepted.note }, CosignAck);
  ctx.log.info({ event: 'ledger-cosigned', size: accepted.size, root: accepted.rootHash, cosignatures: ack.cosignatures }, `ledger checkpoint ${accepted.size} verified and co-signed`);
}

/** A sync reply's body (JSON: base64 entries, hex consistency proof) with its checkpoint. */
function syncBundle(checkpoint: string, body: Uint8Array | undefined): { entries: Uint8Array[]; consistencyProof: Uint8Array[]; checkpoint: string } {
  const parsed = JSON.parse(new TextDecoder().decode(body ?? new Uint8Array())) as { entries: string[]; consistencyProof: string[] };
  return {
    entries: parsed.entries.map((e) => Uint8Array.from(Buffer.from(e, 'base64'))),
    consistencyProof: parsed.consistencyProof.map((h) => Uint8Array.from(Buffer.from(h, 'hex'))),
    checkpoint,
  };
}
