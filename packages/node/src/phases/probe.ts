// Verdicts and probes: say (signed, into the ledger) whether an aggregate or a probe — a subset sum of a
// round whose aggregate was reported unusable — decrypts; the consortium uses them to find a bad contribution.
import { isFedtwinError } from '@fedtwin/errors';
import { sha256Hex } from '@fedtwin/ledger';
import { ProbeResponse, Protocols, VerdictAck } from '@fedtwin/protocol';
import type { NodeContext } from '../context.ts';

export interface Verdict {
  round: number;
  version?: number;
  probe?: string;
  body: Uint8Array;
  participants: number;
  valid: boolean;
  reason: string;
}

export async function sendVerdict(ctx: NodeContext, v: Verdict): Promise<void> {
  const { log } = ctx;
  const sumHash = sha256Hex(v.body);
  const reason = v.reason.slice(0, 1000);
  const signed = ctx.witness
    ? await ctx.witness.sign({ type: 'verdict', v: 1, round: v.round, node: ctx.host.peerId, sumHash, participants: v.participants, valid: v.valid,
      ...(v.version !== undefined ? { version: v.version } : {}), ...(v.probe !== undefined ? { probe: v.probe } : {}), ...(reason ? { reason } : {}) })
    : undefined;
  try {
    await ctx.call(Protocols.verdict, { round: v.round, ...(v.version !== undefined ? { version: v.version } : {}), ...(v.probe !== undefined ? { probe: v.probe } : {}), sumHash, valid: v.valid, reason, entry: signed?.entry ?? '' }, VerdictAck);
  } catch (err) {
    // The probe closed or the aggregate moved on meanwhile: nothing to add.
    if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
    log.warn({ event: 'verdict-declined', round: v.round, code: err.code, reason: err.message }, `verdict not recorded: ${err.message}`);
  }
  log.warn({ event: 'verdict-sent', round: v.round, version: v.version, probe: v.probe, valid: v.valid, reason }, `round ${v.round}: ${v.probe ? `probe ${v.probe}` : `aggregate ${v.version}`} judged ${v.valid ? 'valid' : 'unusable'}`);
}

/** A probe: decrypt it and say whether it works (a probe that closed meanwhile is ignored). */
export async function answerProbe(ctx: NodeContext, id: string): Promise<void> {
  const probe = await fetchProbe(ctx, id);
  if (!probe) return;
  const { header: p, body } = probe;
  const { valid, reason } = await judgeProbe(ctx, p, body);
  await sendVerdict(ctx, { round: p.round, probe: p.id, body: body ?? new Uint8Array(), participants: p.participants.length, valid, reason });
}

async function fetchProbe(ctx: NodeContext, id: string): Promise<{ header: ProbeResponse; body?: Uint8Array } | undefined> {
  try {
    return await ctx.call(Protocols.probe, { id }, ProbeResponse, { maxBodyBytes: ctx.scheme.sumBytes(ctx.join.modelValues) });
  } catch (err) {
    if (isFedtwinError(err) && err.code === 'AGG_NO_SUCH_PROBE') return undefined;
    throw err;
  }
}

async function judgeProbe(ctx: NodeContext, p: ProbeResponse, body: Uint8Array | undefined): Promise<{ valid: boolean; reason: string }> {
  const { scheme, global } = ctx;
  if (!body || p.values !== global.length || p.encoding !== scheme.encoding) {
    return { valid: false, reason: 'the probe has the wrong shape or encoding' };
  }
  try {
    await scheme.decode(body, global.length, { keyId: p.keyId, participants: p.participants });
  } catch (err) {
    if (!isFedtwinError(err) || err.code !== 'NODE_BAD_AGGREGATE') throw err;
    return { valid: false, reason: err.message };
  }
  return { valid: true, reason: '' };
}
