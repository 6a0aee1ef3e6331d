// Ledger witness: replicate the consortium's audit log, check it, co-sign its checkpoint. A fork or an
// edit stops this member (LEDGER_INCONSISTENT propagates): it will not contribute to a rewritten history.
import { CosignAck, LedgerSyncResponse, MAX_LEDGER_SYNC_BYTES, Protocols, type JoinResponse } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import type { NodeContext } from '../context.ts';
import type { AggregatorCall } from '../call.ts';
import { aggregatorPeerId } from '../util.ts';
import { openWitness, type Witness } from '../witness.ts';
import { startGossip, type Gossip } from '../gossip.ts';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import type { WireHost } from '@fedtwin/wire';

/** Gossip with other members, per witness (set up with it when the config lists other members). */
const gossips = new WeakMap<Witness, Gossip>();

/** This member's replica of the audit log, if it keeps one (needs a ledger directory and its identity). */
export async function openMemberWitness(init: NodeInit, join: JoinResponse): Promise<Witness | undefined> {
  if (!init.ledgerDir || !init.identity) return undefined;
  const witness = await openWitness({ dir: init.ledgerDir, identity: init.identity, aggregatorPeerId: aggregatorPeerId(init.aggregator), origin: `fedtwin/${join.consortium}` });
  if (init.witnesses?.length) {
    const host = init.host as NodeInit['host'] & Partial<Pick<WireHost, 'handle'>>;
    if (!host.handle) throw new FedtwinError('CONFIG_INVALID', 'witnesses: gossip needs a host that can answer requests');
    gossips.set(witness, await startGossip({ host: { handle: host.handle.bind(host), request: host.request.bind(host) }, witness, peers: init.witnesses, members: init.consortium.manifest.members.map((m) => m.peerId), log: init.logger }));
  }
  init.logger.info({ event: 'ledger-replica', size: witness.size, gossipPeers: init.witnesses?.length ?? 0 }, `ledger replica open at size ${witness.size}${init.witnesses?.length ? `, comparing views with ${init.witnesses.length} member(s)` : ''}`);
  return witness;
}

/**
 * A ledger sync is one bounded reply (≤ MAX_LEDGER_SYNC_BYTES), not a long-poll: an exchange still open after a
 * minute is stuck, and is retried (logged as aggregator-unreachable) rather than waited on for the default 120 s.
 */
export const LEDGER_SYNC_TIMEOUT_MS = 60_000;

/**
 * Runs `step` (a ledger sync, a gossip exchange); on a split view (LEDGER_INCONSISTENT), however this member
 * found it, first shows the other members this member's view, so each can find the split by itself before
 * this member stops.
 */
async function alertingPeers<T>(witness: Witness, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (isFedtwinError(err, 'LEDGER_INCONSISTENT')) await gossips.get(witness)?.alert();
    throw err;
  }
}

/**
 * One verified sync of this member's replica from the aggregator (no cosignature): the signed checkpoint and the
 * entries this member lacks, judged against what it holds. Peer views pending before the request are due after it.
 */
export async function pullLedger(witness: Witness, call: AggregatorCall, mustInclude: Array<{ leafHash: string; index?: number }>): Promise<{ note: string; size: number; rootHash: string; appended: number }> {
  return alertingPeers(witness, async () => {
    const requestedAt = Date.now();
    const { header, body } = await call(Protocols.ledger, { fromSize: witness.size }, LedgerSyncResponse, { maxBodyBytes: MAX_LEDGER_SYNC_BYTES, timeoutMs: LEDGER_SYNC_TIMEOUT_MS });
    // Every reply is judged by its signed checkpoint (equal size ⇒ same root, smaller ⇒ rollback), never by its unsigned size.
    return witness.syncReply({ checkpoint: header.checkpoint, body }, mustInclude, { requestedAt });
  });
}

/** Checkpoint size each witness last co-signed in this process (a re-sent cosignature is harmless, just noise). */
const lastCosigned = new WeakMap<Witness, number>();

/** Fetches the entries this member lacks, verifies them against its last co-signed checkpoint and co-signs the new one. */
export async function syncLedger(ctx: NodeContext): Promise<void> {
  const witness = ctx.witness;
  if (!witness) return;
  const gossip = gossips.get(witness);
  await alertingPeers(witness, async () => {
    if (gossip?.fatal) throw gossip.fatal; // another member showed this one a split view
    const accepted = await pullLedger(witness, ctx.call, ctx.state.ledgerLeaves ?? []);
    if (accepted.appended === 0 && accepted.size === lastCosigned.get(witness)) {
      // nothing new since this member's last cosignature; peers not yet compared with are tried again
      await gossip?.exchange(ctx.log);
      return;
    }
    lastCosigned.set(witness, accepted.size);
    const { header: ack } = await ctx.call(Protocols.cosign, { note: accepted.note }, CosignAck);
    ctx.log.info({ event: 'ledger-cosigned', size: accepted.size, root: accepted.rootHash, cosignatures: ack.cosignatures }, `ledger checkpoint ${accepted.size} verified and co-signed`);
    // Then compare views with the other members directly (a split view is caught by members, not the aggregator).
    await gossip?.exchange(ctx.log);
  });
}
