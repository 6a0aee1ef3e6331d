// Apply: catch up on published aggregates (fetch, check the base, decode, apply, save), and check a round
// is based on what this member then holds. An aggregate that does not decode is reported with a verdict.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { sha256Hex } from '@fedtwin/ledger';
import { AggregateResponse, Protocols, f32ToBytes, nextModelVersion, type TaskResponse } from '@fedtwin/protocol';
import { versionHash } from '@fedtwin/strategy';
import type { NodeContext } from '../context.ts';
import { cpuMsBetween } from '../util.ts';
import { addReleased, wireScale } from '../marginals/wire.ts';
import { siteSumToModel } from '../site-noise.ts';
import { modelPart, releaseUnits, unitsFor, vaeReleaseOf } from '../member-model.ts';
import { sendVerdict } from './probe.ts';
import { syncLedger } from './witness-sync.ts';
import { checkAggregate } from './aggregate-check.ts';
import { awaitWitnessQuorum } from './witness-quorum.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

/** A published aggregate this member cannot use (reported with a signed verdict); the node waits for the consortium's decision. */
export class AggregateUnusable extends Error {
  readonly version: number;
  constructor(version: number, reason: string) {
    super(`aggregate ${version} is unusable: ${reason}`);
    this.version = version;
  }
}

/** Applies every published aggregate up to version `target`, after syncing and co-signing the ledger. */
export async function catchUp(ctx: NodeContext, target: number): Promise<void> {
  // Before every round, not only when aggregates are missing: a log rolled back or rewritten while
  // the aggregator restarted is caught before this member contributes to it (one small request).
  await syncLedger(ctx);
  while (ctx.state.version < target) await applyNext(ctx);
}

async function applyNext(ctx: NodeContext): Promise<void> {
  const { scheme, state } = ctx;
  const v = state.version + 1;
  const tDownload = performance.now();
  const cDownload = process.cpuUsage();
  const { header: agg, body } = await ctx.call(Protocols.aggregate, { version: v }, AggregateResponse, { maxBodyBytes: scheme.sumBytes(ctx.join.modelValues) });
  if (agg.version !== v || agg.values !== ctx.global.length || !body || agg.encoding !== scheme.encoding) {
    throw new FedtwinError('NODE_BAD_AGGREGATE', `aggregate for version ${v} has the wrong shape or encoding (${agg.encoding})`);
  }
  if (agg.baseHash !== ctx.state.base) {
    throw new FedtwinError('NODE_DIVERGED', `aggregate ${v} applies to model version ${agg.baseHash.slice(0, 12)}…, this member holds ${ctx.state.base!.slice(0, 12)}…`, { hint: 'this member\'s state diverged from the consortium: stop it and move <dataDir>/state aside to resync (keep the ledger replica and evidence/: they show what it was served)' });
  }
  // Participants, count and the ledger's record of this sum, before anything is decrypted or applied.
  const entryIndex = await checkAggregate(ctx, agg, body);
  // …and only once a majority of members (witnessQuorum) co-signed a log that contains that entry.
  if (entryIndex !== undefined) await awaitWitnessQuorum(ctx, entryIndex, `aggregate ${v} (round ${agg.round})`);
  const tDecode = performance.now();
  const cDecode = process.cpuUsage();
  let decoded: Float64Array;
  try {
    decoded = await scheme.decode(body, ctx.global.length, { keyId: agg.keyId, participants: agg.participants, round: { round: agg.round, baseHash: ctx.state.base!, ...(agg.keyId ? { keyId: agg.keyId } : {}) } });
  } catch (err) {
    if (!isFedtwinError(err) || err.code !== 'NODE_BAD_AGGREGATE') throw err;
    // Not the end of this member: say so (signed, into the ledger) and wait for the consortium to
    // find the contribution that broke the sum; the aggregate is then replaced or withdrawn.
    await sendVerdict(ctx, { round: agg.round, version: v, body, participants: agg.participants.length, valid: false, reason: err.message });
    throw new AggregateUnusable(v, err.message);
  }
  // A model delta is averaged in by the strategy; a count vector is added to the counts released so far
  // (aggregate v is the schedule's measurement v, whatever round number it was summed in).
  const release = vaeReleaseOf(ctx.model);
  const minParticipants = ctx.consortium.manifest.rounds.minParticipants;
  if (ctx.model.kind === 'marginals') ctx.global = addReleased(ctx.global, decoded, unitsFor(ctx.model.marginals, agg.version, minParticipants));
  // A calibrating VAE consortium: aggregate 1 is the column release (counts, added behind the model's values);
  // later ones are model deltas, averaged into the model's values while the released counts stay as they are.
  else if (release && agg.version === 1) ctx.global = addReleased(ctx.global, decoded, releaseUnits(release, minParticipants));
  else {
    const weights = modelPart(ctx.model, ctx.global);
    const sum = ctx.privacy.siteSkellam ? siteSumToModel(decoded, ctx.privacy.siteSkellam, await heUnit(ctx)) : decoded;
    const model = ctx.strategy.applyAggregate(weights, sum.subarray(0, weights.length), agg.totalWeight, agg.participants.length);
    if (release) {
      const next = Float32Array.from(ctx.global);
      next.set(model, 0);
      ctx.global = next;
    } else ctx.global = model;
  }
  ctx.state = { ...ctx.state, version: v, hash: versionHash(ctx.global), base: nextModelVersion(ctx.state.base!, sha256Hex(body)) };
  const tSave = performance.now();
  const cSave = process.cpuUsage();
  await ctx.store.save(ctx.state, f32ToBytes(ctx.global));
  const ms = {
    downloadMs: Math.round(tDecode - tDownload), decodeMs: Math.round(tSave - tDecode), saveMs: Math.round(performance.now() - tSave), bytes: body.length,
    cpu: { downloadMs: cpuMsBetween(cDownload, cDecode), decodeMs: cpuMsBetween(cDecode, cSave), saveMs: cpuMsBetween(cSave) },
  };
  ctx.log.info({ event: 'global-updated', version: v, hash: ctx.state.hash, participants: agg.participants.length, ...ms }, `applied aggregate → global version ${v}`);
}

/** The round must be based on the global version this member holds after catching up. */
export function requireHeldVersion(ctx: NodeContext, task: OpenTask): void {
  if (ctx.state.version !== task.baseVersion) {
    throw new FedtwinError('NODE_DIVERGED', `round ${task.round} is based on version ${task.baseVersion}, this member holds ${ctx.state.version}`);
  }
}

/** …and on the model version id its applied aggregates lead to. */
export function requireHeldBase(ctx: NodeContext, task: OpenTask): void {
  if (task.baseHash !== ctx.state.base) {
    throw new FedtwinError('NODE_DIVERGED', `round ${task.round} is based on model version ${task.baseHash.slice(0, 12)}…, but the aggregates this member applied lead to ${ctx.state.base!.slice(0, 12)}…`, { hint: 'the aggregator announces a base its own published aggregates do not lead to; keep this member\'s ledger as evidence and alert the consortium' });
  }
}

/** Real value of one HE quantum (heClip / quantMax): what decode multiplied each summed integer by. */
async function heUnit(ctx: NodeContext): Promise<number> {
  return (await wireScale(ctx.join)).unit;
}
