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
    await deliver(ctx, pending.header, pendingBody, undefined);
    return true;
  }
  ctx.state = { ...ctx.state, pending: undefined };
  return false;
}

/** The round's training statistics, known to this member only: they stay in its own state and log (under DP the header has neither). */
export interface LocalStats {
  /** Loss per epoch. */
  losses: number[];
  trainSeconds: number;
}

/**
 * What this member records about its own contribution: from the training just done, or, for an update re-sent
 * after a restart, what its header carried (with DP off); under DP the crashed run's statistics are gone (NaN).
 */
export function localRecord(header: UpdateHeader, local: LocalStats | undefined): { loss: number; trainSeconds: number; losses: number[] } {
  if (local) return { loss: local.losses.at(-1) ?? NaN, trainSeconds: local.trainSeconds, losses: local.losses };
  return { loss: header.loss ?? NaN, trainSeconds: header.trainSeconds ?? NaN, losses: [] };
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : 'unknown');

/** Sends the update; on acknowledgement records the contribution (and its ledger leaf), on an AGG_ refusal moves on. Persists either way. */
export async function deliver(ctx: NodeContext, header: UpdateHeader, body: Uint8Array, local: LocalStats | undefined, phases: Record<string, number> = {}, cpuAtStart?: NodeJS.CpuUsage): Promise<void> {
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
    const own = localRecord(header, local);
    ctx.state = {
      ...state, lastRound: header.round, pending: undefined, pendingLeaf: undefined,
      ledgerLeaves: state.pendingLeaf ? [...(state.ledgerLeaves ?? []), { leafHash: state.pendingLeaf, ...(ack.ledgerIndex !== undefined ? { index: ack.ledgerIndex } : {}) }] : state.ledgerLeaves,
      contributions: [...state.contributions, { round: header.round, baseVersion: header.baseVersion, loss: own.loss, weight: header.weight, trainSeconds: own.trainSeconds, at: Date.now(), privacy: header.privacy }],
      losses: [...state.losses, { round: header.round, losses: own.losses }],
    };
    // This member's own log: the loss and the time stay here (whether the header carried them: `sentStats`).
    log.info({ event: 'contributed', round: header.round, loss: own.loss, trainSeconds: own.trainSeconds, sentStats: header.loss !== undefined, weight: header.weight, contributions: ack.contributions, privacy: header.privacy, phases }, `round ${header.round}: update sent (loss ${fixed(own.loss, 4)}, trained ${fixed(own.trainSeconds, 1)} s)`);
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
