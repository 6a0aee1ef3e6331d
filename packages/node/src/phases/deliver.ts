// Deliver: make the update (and its privacy cost) durable, send it, record the acknowledgement; after a
// crash between paying for an update and its acknowledgement, re-send the very same bytes.
import { isFedtwinError } from '@fedtwin/errors';
import { Protocols, UpdateAck, type TaskResponse, type UpdateHeader } from '@fedtwin/protocol';
import { persist, type NodeContext } from '../context.ts';
import { cpuMsBetween } from '../util.ts';
import type { SealedUpdate } from './encode.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

/** Spending is durable before the update leaves: a crash now re-sends, never forgets or re-pays. */
export async function persistPending(ctx: NodeContext, round: number, sealed: SealedUpdate): Promise<void> {
  ctx.state = { ...ctx.state, pending: { round, header: sealed.header }, pendingLeaf: sealed.leafHash };
  await persist(ctx, sealed.body);
}

/**
 * Re-sends the update persisted before a restart if it belongs to this round (true: the round is handled);
 * a pending update of another round is dropped.
 */
export async function resendPending(ctx: NodeContext, task: OpenTask): Promise<boolean> {
  const pending = ctx.state.pending;
  if (!pending) return false;
  const pendingBody = ctx.resumedPending;
  if (pending.round === task.round && pendingBody) {
    ctx.log.info({ event: 'resend', round: task.round }, `round ${task.round}: re-sending the update persisted before a restart`);
    await deliver(ctx, pending.header, pendingBody, []);
    return true;
  }
  ctx.state = { ...ctx.state, pending: undefined };
  return false;
}

/** Sends the update; on acknowledgement records the contribution (and its ledger leaf), on an AGG_ refusal moves on. Persists either way. */
export async function deliver(ctx: NodeContext, header: UpdateHeader, body: Uint8Array, losses: number[], phases: Record<string, number> = {}, cpuAtStart?: NodeJS.CpuUsage): Promise<void> {
  const { log } = ctx;
  try {
    const tUpload = performance.now();
    const cUpload = process.cpuUsage();
    const { header: ack } = await ctx.call(Protocols.update, header, UpdateAck, { body });
    phases.uploadMs = Math.round(performance.now() - tUpload);
    phases.uploadCpuMs = cpuMsBetween(cUpload);
    if (cpuAtStart) {
      // CPU of this process (HE worker threads included) from the task to the acknowledgement
      phases.cpuMs = cpuMsBetween(cpuAtStart);
    }
    const state = ctx.state;
    ctx.state = {
      ...state, lastRound: header.round, pending: undefined, pendingLeaf: undefined,
      ledgerLeaves: state.pendingLeaf ? [...(state.ledgerLeaves ?? []), { leafHash: state.pendingLeaf, ...(ack.ledgerIndex !== undefined ? { index: ack.ledgerIndex } : {}) }] : state.ledgerLeaves,
      contributions: [...state.contributions, { round: header.round, baseVersion: header.baseVersion, loss: header.loss, weight: header.weight, trainSeconds: header.trainSeconds, at: Date.now(), privacy: header.privacy }],
      losses: [...state.losses, { round: header.round, losses }],
    };
    log.info({ event: 'contributed', round: header.round, loss: header.loss, trainSeconds: header.trainSeconds, contributions: ack.contributions, privacy: header.privacy, phases }, `round ${header.round}: update sent (loss ${header.loss.toFixed(4)}, trained ${header.trainSeconds.toFixed(1)} s)`);
  } catch (err) {
    if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
    // The aggregator declined (round closed, version moved on, already has it): move on.
    // The privacy cost stays recorded: the update left this member.
    ctx.state = { ...ctx.state, lastRound: header.round, pending: undefined, pendingLeaf: undefined };
    const level = err.code === 'AGG_DUPLICATE' ? 'info' : 'warn';
    log[level]({ event: 'update-declined', round: header.round, code: err.code, reason: err.message }, `round ${header.round}: update declined: ${err.message}`);
  }
  await persist(ctx);
}
