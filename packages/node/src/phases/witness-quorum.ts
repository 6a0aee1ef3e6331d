// Witness quorum: an aggregate is applied only once a checkpoint containing its ledger entry carries the
// verified cosignatures of `rounds.witnessQuorum` members (a majority by default). Two different histories
// cannot both win a majority, so an aggregator that shows members different logs cannot get both applied.
import { Protocols, WitnessesResponse } from '@fedtwin/protocol';
import type { NodeContext } from '../context.ts';
import { sleep } from '../util.ts';
import { syncLedger } from './witness-sync.ts';

/** Longest pause between two polls while waiting for other members' cosignatures. */
const MAX_POLL_MS = 2_000;
/** How often the wait is logged (an operator sees why the member does not move on). */
const LOG_EVERY_MS = 30_000;

/** The number of members' cosignatures an aggregate needs before this member uses it. */
export function witnessQuorumOf(m: NodeContext['consortium']['manifest']): number {
  return m.rounds.witnessQuorum ?? Math.floor(m.members.length / 2) + 1;
}

/**
 * Waits until members' cosignatures on checkpoints covering leaf `entryIndex` reach the quorum. Keeps
 * syncing and co-signing meanwhile (so members waiting for each other make progress). Never gives up on
 * its own: applying without the quorum is what an attacker would want; a stopped node stops waiting.
 * A forged cosignature line is logged and not counted; a served checkpoint that contradicts this replica
 * is fork evidence (LEDGER_INCONSISTENT, from the witness).
 */
export async function awaitWitnessQuorum(ctx: NodeContext, entryIndex: number, what: string): Promise<void> {
  const witness = ctx.witness;
  if (!witness) return;
  const m = ctx.consortium.manifest;
  const quorum = witnessQuorumOf(m);
  const members = m.members.map((x) => x.peerId);
  const started = performance.now();
  let lastLog = started;
  let pause = 100;
  const warned = new Set<string>();
  for (;;) {
    const { header } = await ctx.call(Protocols.witnesses, { fromSize: entryIndex + 1 }, WitnessesResponse);
    const r = await witness.attestations(header.notes, entryIndex + 1, members);
    for (const name of r.forged) {
      if (warned.has(name)) continue;
      warned.add(name);
      ctx.log.warn({ event: 'witness-forged-cosignature', name, what }, `a cosignature line under ${name.slice(0, 16)}… does not verify as that member's: not counted (the aggregator served it)`);
    }
    if (r.cosigners.length >= quorum) {
      ctx.log.info({ event: 'witness-quorum', what, cosigners: r.cosigners.length, quorum, waitedMs: Math.round(performance.now() - started) }, `${what}: ${r.cosigners.length} of ${members.length} members co-signed it (quorum ${quorum})`);
      return;
    }
    if (ctx.stopped()) return;
    const now = performance.now();
    if (now - lastLog >= LOG_EVERY_MS) {
      lastLog = now;
      ctx.log.warn({ event: 'witness-quorum-waiting', what, cosigners: r.cosigners.length, quorum, waitedMs: Math.round(now - started) }, `${what}: waiting for members' cosignatures (${r.cosigners.length} of ${quorum} needed)`);
    }
    await sleep(pause, ctx.signal);
    pause = Math.min(MAX_POLL_MS, pause * 2);
    await syncLedger(ctx);
  }
}
