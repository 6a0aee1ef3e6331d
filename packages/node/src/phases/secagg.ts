// Secure aggregation by pairwise masking (docs/he.md §9), the member's side: before training, advertise this
// round's fresh keys and share them (each step a signed ledger entry); after sending the masked update, answer
// the round's one recovery request — only the one read in this member's own ledger replica.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { createEntrySigner, secaggSharesHash, type LedgerEntry } from '@fedtwin/ledger';
import {
  MAX_TASK_WAIT_MS, Protocols, SecaggAck, SecaggRoundResponse, secaggAdFromWire, secaggAdToWire, secaggShareFromWire, secaggShareToWire,
  type TaskResponse,
} from '@fedtwin/protocol';
import type * as Secagg from '@fedtwin/secagg';
import { persist, type NodeContext } from '../context.ts';
import type { SecaggMemberScheme } from '../scheme.ts';
import type { Witness } from '../witness.ts';
import { syncLedger } from './witness-sync.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function isSecagg(scheme: NodeContext['scheme']): scheme is SecaggMemberScheme {
  return scheme.encoding === 'secagg';
}

/**
 * Long-polls the aggregator until `phase` closed. Bounded: a few round deadlines at most (the aggregator closes
 * each phase at a quarter of it), so a silent aggregator ends the wait as "closed".
 */
async function awaitPhase(ctx: NodeContext, task: OpenTask, phase: 'keys' | 'shares' | 'recovery'): Promise<SecaggRoundResponse> {
  const until = Date.now() + 3 * Math.max(60_000, task.deadline - Date.now());
  for (let i = 0; i < 1000 && !ctx.stopped() && Date.now() < until; i++) {
    const { header } = await ctx.call(Protocols.secaggRound, { round: task.round, phase, waitMs: MAX_TASK_WAIT_MS }, SecaggRoundResponse, { timeoutMs: MAX_TASK_WAIT_MS + 30_000 });
    if (header.status !== 'pending') return header;
  }
  return { status: 'closed', reason: `no answer for phase ${phase} in time` };
}

async function sitOut(ctx: NodeContext, task: OpenTask, why: string, code?: string): Promise<false> {
  ctx.log.warn({ event: 'secagg-sat-out', round: task.round, ...(code ? { code } : {}), reason: why }, `round ${task.round}: sitting out the masked round: ${why}`);
  ctx.state = { ...ctx.state, lastRound: task.round };
  await persist(ctx);
  return false;
}

/**
 * Phases keys and shares, before training: false if this member sat the round out (late for a phase, or the
 * round failed). A relayed list with a forged or substituted key throws (SECAGG_BAD_SIGNATURE / _BAD_MESSAGE):
 * the aggregator tampered with the key agreement, and this member stops with the evidence in its log.
 */
export async function secaggBeforeTraining(ctx: NodeContext, task: OpenTask): Promise<boolean> {
  const scheme = ctx.scheme as SecaggMemberScheme;
  const config = ctx.join.secureAggregation;
  if (config.scheme !== 'secagg' || !ctx.witness || !ctx.init.identity) throw new FedtwinError('NODE_BAD_INIT', 'a masked round needs the secagg config, the identity and a ledger replica');
  const sa = await import('@fedtwin/secagg');
  const consortium = ctx.join.consortium;
  const cfg: Secagg.SecaggConfig = { consortium, round: task.round, members: config.members, threshold: config.threshold, ...(config.degree !== undefined ? { degree: config.degree } : {}), length: ctx.global.length };
  const signer = createEntrySigner(ctx.init.identity, `fedtwin/${consortium}`);
  try {
    const { state, ad } = sa.advertise(cfg, signer);
    const wireAd = secaggAdToWire(ad);
    const keysEntry = await ctx.witness.sign({ type: 'secagg-keys', v: 1, round: task.round, node: signer.peerId, cPub: wireAd.cPub, sPub: wireAd.sPub, signature: wireAd.signature });
    await ctx.call(Protocols.secaggKeys, { round: task.round, ad: wireAd, entry: keysEntry.entry }, SecaggAck);
    ctx.log.info({ event: 'secagg-advertised', round: task.round }, `round ${task.round}: masking keys advertised`);
    const keys = await awaitPhase(ctx, task, 'keys');
    if (keys.status !== 'keys') return sitOut(ctx, task, keys.status === 'closed' ? keys.reason : `unexpected answer ${keys.status}`);
    const { state: shared, bundle } = sa.shareKeys(state, keys.ads.map((a) => secaggAdFromWire(consortium, task.round, a)));
    const shares = bundle.shares.map(secaggShareToWire);
    const sharesEntry = await ctx.witness.sign({ type: 'secagg-shares', v: 1, round: task.round, node: signer.peerId, bCommit: hex(bundle.bCommit), sharesHash: secaggSharesHash(shares), recipients: shares.map((x) => x.to) });
    await ctx.call(Protocols.secaggShares, { round: task.round, bCommit: hex(bundle.bCommit), shares, entry: sharesEntry.entry }, SecaggAck);
    const inbox = await awaitPhase(ctx, task, 'shares');
    if (inbox.status !== 'shares') return sitOut(ctx, task, inbox.status === 'closed' ? inbox.reason : `unexpected answer ${inbox.status}`);
    scheme.current = { round: task.round, state: shared, inbox: inbox.shares.map(secaggShareFromWire) };
    ctx.log.info({ event: 'secagg-shared', round: task.round, members: keys.ads.length, inbox: inbox.shares.length }, `round ${task.round}: masking keys agreed with ${keys.ads.length - 1} other member(s)`);
    return true;
  } catch (err) {
    // The aggregator declined a step (a phase closed, a restart mid-round): the round goes on without this member.
    if (isFedtwinError(err) && (err.code.startsWith('AGG_') || err.code === 'SECAGG_TOO_FEW_MEMBERS')) return sitOut(ctx, task, err.message, err.code);
    throw err;
  }
}

/**
 * The round's one recovery request from this member's ledger replica: exactly one `secagg-recovery` entry by the
 * aggregator for the round, at the leaf the aggregator named. Two (or one elsewhere) is an aggregator showing
 * different requests: refused (NODE_SECAGG_RECOVERY_CONFLICT), so no two answers can unmask one member.
 */
export async function recoveryFromLedger(witness: Pick<Witness, 'entriesFor'>, round: number, ledgerIndex: number, consortium: string): Promise<Secagg.RecoveryRequest> {
  const found: Array<{ index: number; entry: LedgerEntry }> = await witness.entriesFor('secagg-recovery', round);
  if (found.length !== 1 || found[0]!.index !== ledgerIndex) {
    throw new FedtwinError('NODE_SECAGG_RECOVERY_CONFLICT', `round ${round}: the ledger holds ${found.length} recovery request(s) (leaves ${found.map((f) => f.index).join(', ') || 'none'}), the aggregator named leaf ${ledgerIndex}`, {
      hint: 'a round has exactly one recovery request, read in the ledger: this member reveals nothing (keep the ledger as evidence)',
      details: { round, leaves: found.map((f) => f.index), named: ledgerIndex },
    });
  }
  const p = found[0]!.entry.payload;
  if (p.type !== 'secagg-recovery' || p.consortium !== consortium) {
    throw new FedtwinError('NODE_SECAGG_RECOVERY_CONFLICT', `round ${round}: the recovery entry is for consortium ${(p as { consortium?: string }).consortium}, not ${consortium}`, { hint: 'this member reveals nothing' });
  }
  const sa = await import('@fedtwin/secagg');
  const req = { consortium: p.consortium, round: p.round, survivors: p.survivors, dropped: p.dropped };
  if (hex(sa.requestDigest(req)) !== p.digest) throw new FedtwinError('NODE_SECAGG_RECOVERY_CONFLICT', `round ${round}: the recovery entry's digest does not match its sets`, { hint: 'this member reveals nothing' });
  return req;
}

/**
 * Phase recovery, after the masked update was accepted: waits for the request, reads it in the replica, runs the
 * SecAgg consistency check (answerRecovery) and sends the signed reveal. A refused request is logged (with its
 * code) and answered with nothing; the round then fails or goes on with the other members' reveals.
 */
export async function secaggAfterSending(ctx: NodeContext, task: OpenTask): Promise<void> {
  const scheme = ctx.scheme as SecaggMemberScheme;
  const cur = scheme.current;
  if (!cur || cur.round !== task.round || cur.state.phase !== 'sent' || !ctx.witness) return;
  try {
    const r = await awaitPhase(ctx, task, 'recovery');
    if (r.status !== 'recovery') {
      ctx.log.info({ event: 'secagg-no-reveal', round: task.round, reason: r.status === 'closed' ? r.reason : r.status }, `round ${task.round}: no reveal needed (${r.status === 'closed' ? r.reason : r.status})`);
      return;
    }
    await syncLedger(ctx);
    const req = await recoveryFromLedger(ctx.witness, task.round, r.ledgerIndex, ctx.join.consortium);
    const sa = await import('@fedtwin/secagg');
    const { state, response } = sa.answerRecovery(cur.state, req);
    scheme.current = { ...cur, state };
    const reveal = (xs: readonly Secagg.ShareReveal[]) => xs.map((x) => ({ owner: x.owner, y: b64(x.y) }));
    const entry = await ctx.witness.sign({ type: 'secagg-reveal', v: 1, round: task.round, node: ctx.host.peerId, digest: hex(response.request), bShares: reveal(response.bShares), sShares: reveal(response.sShares) });
    await ctx.call(Protocols.secaggReveal, { round: task.round, entry: entry.entry }, SecaggAck);
    ctx.log.info({ event: 'secagg-revealed', round: task.round, survivors: req.survivors.length, dropped: req.dropped.length, ledgerIndex: r.ledgerIndex }, `round ${task.round}: revealed shares for the recovery request at ledger leaf ${r.ledgerIndex} (${req.dropped.length} dropped)`);
  } catch (err) {
    if (!isFedtwinError(err)) throw err;
    if (err.code.startsWith('SECAGG_RECOVERY') || err.code === 'NODE_SECAGG_RECOVERY_CONFLICT') {
      ctx.log.error({ event: 'secagg-recovery-refused', round: task.round, code: err.code, reason: err.message }, `round ${task.round}: recovery request refused: ${err.message}`);
      return;
    }
    if (err.code.startsWith('AGG_')) {
      ctx.log.info({ event: 'secagg-no-reveal', round: task.round, code: err.code, reason: err.message }, `round ${task.round}: reveal not taken: ${err.message}`);
      return;
    }
    throw err;
  }
}
