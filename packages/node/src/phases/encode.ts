// Encode: the update as the strategy and secure-aggregation scheme send it (site-level DP noise, HE
// encryption with its offline phases), signed for the ledger, with the header it travels under.
import { FedtwinError } from '@fedtwin/errors';
import { privatizeSiteUpdate } from '@fedtwin/dp';
import { siteNoiseSource, siteSkellamUpdate } from '../site-noise.ts';
import { sha256Hex } from '@fedtwin/ledger';
import type { PrivacyPolicy, PrivacySpend, TaskResponse, UpdateHeader } from '@fedtwin/protocol';
import type { EncodedUpdate } from '@fedtwin/strategy';
import { persist, type NodeContext } from '../context.ts';
import type { RoundPlan } from '../privacy.ts';
import type { RoundRef } from '../scheme.ts';
import type { Trained } from './train.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

/** The round this task's update belongs to (under HE it names the round's common mask). */
export function roundRefOf(ctx: NodeContext, task: OpenTask): RoundRef {
  return { round: task.round, baseHash: ctx.state.base!, ...(task.keyId ? { keyId: task.keyId } : {}) };
}

/**
 * True if this member already encrypted an update for this round before it lost its state (it may have
 * been sent): a second one would share the round's mask, so the round is sat out; nothing is spent.
 */
export async function sitOutIfAlreadyEncrypted(ctx: NodeContext, ref: RoundRef): Promise<boolean> {
  if (!ctx.scheme.canContribute || (await ctx.scheme.canContribute(ref))) return false;
  ctx.log.warn({ event: 'round-skipped', round: ref.round, code: 'NODE_ROUND_ALREADY_ENCRYPTED' }, `round ${ref.round}: this member already encrypted an update for this round before a restart; sitting it out`);
  ctx.state = { ...ctx.state, lastRound: ref.round };
  await persist(ctx);
  return true;
}

/**
 * HE's offline phase (this update's encryption masks), posted to the HE workers synchronously: call it
 * right before training, which does not yield to the event loop until an epoch ends (scheme.ts).
 */
export function prepareUpdateMasks(ctx: NodeContext, ref: RoundRef): void {
  ctx.scheme.prepare?.(ctx.global.length, ref)?.catch((err: unknown) => {
    ctx.log.warn({ event: 'he-prepare-failed', err: String(err) }, 'could not prepare HE masks ahead; they will be made when needed');
  });
}

/**
 * What the strategy sends for this change, weighted as updateWeight says. Under site-level DP: with the Skellam
 * mechanism (every running member under BFV) whole quanta — clipped, randomly rounded, plus an integer share — that
 * BFV encrypts as they are; otherwise (library use without one) clipped plus a float Gaussian share.
 */
export function strategyUpdate(ctx: NodeContext, delta: Float32Array, plan: RoundPlan, round: number): { values: EncodedUpdate['values'] | Int32Array; weight: number } {
  if (!plan.site) return ctx.strategy.encodeUpdate(delta, updateWeight(ctx.privacy.policy.mode, ctx.data.rows));
  const site = ctx.privacy.siteSkellam;
  if (site) {
    if (plan.site.skellam?.mu !== site.params.mu || ctx.scheme.encoding === 'f32le') {
      throw new FedtwinError('NODE_PRIVACY_MISMATCH', `round ${round}: the update would carry Skellam μ ${site.params.mu} under ${ctx.scheme.encoding}; the accountant planned ${plan.site.skellam ? `μ ${plan.site.skellam.mu}` : 'a Gaussian'}`);
    }
    // Weight 1 (uniform FedAvg) and no strategy scaling: the integers are the update (BFV encrypts them, secagg masks them).
    return { values: siteSkellamUpdate(delta, site, siteNoiseSource(ctx.init, round)), weight: 1 };
  }
  return ctx.strategy.encodeUpdate(privatizeSiteUpdate(delta, plan.site.clip, plan.site.noiseMultiplier, plan.site.minParticipants, ctx.privacy.normal).values, 1);
}

// --- what leaves a member besides its (accounted) update: docs/privacy.md, "What leaves a node" ---------

/** Any DP mode: then nothing about the site's records leaves unless the accountant charges for it. */
export function dpOn(mode: PrivacyPolicy['mode']): boolean {
  return mode !== 'off';
}

/**
 * The FedAvg weight this member declares. Under DP: 1, uniform FedAvg (every member's change counts alike), since
 * the record count N is not accounted and would leave in clear (the header, the aggregate's total weight).
 * Without DP: N, classic sample-weighted FedAvg.
 */
export function updateWeight(mode: PrivacyPolicy['mode'], rows: number): number {
  return dpOn(mode) ? 1 : rows;
}

/**
 * The training statistics the update header carries: none under DP (the loss is the canonical membership-inference
 * signal and the training time grows with N; neither is clipped, noised or accounted), the last loss and the
 * training time without DP (for debugging). The member logs and keeps both locally either way.
 */
export function releasedStats(mode: PrivacyPolicy['mode'], trained: Pick<Trained, 'losses' | 'trainSeconds'>): Pick<UpdateHeader, 'loss' | 'trainSeconds'> {
  if (dpOn(mode)) return {};
  const loss = trained.losses.at(-1) ?? NaN;
  return { loss: Number.isFinite(loss) ? loss : 0, trainSeconds: trained.trainSeconds };
}

/** The record count in the signed contribution entry (replicated to every member, kept forever): only without DP. */
export function entrySampleCount(mode: PrivacyPolicy['mode'], rows: number): { sampleCount?: number } {
  return dpOn(mode) ? {} : { sampleCount: rows };
}

/**
 * The DP count Ñ (and its σ_N) in every contribution entry under record-level DP-SGD: public already through q, it lets
 * a member that lost its state rebuild Ñ and its cost from the ledger instead of drawing (releasing) a second one.
 */
export function entryCountEstimate(count: { estimate: number; noiseMultiplier: number } | undefined): { countEstimate?: number; countNoise?: number } {
  return count ? { countEstimate: count.estimate, countNoise: count.noiseMultiplier } : {};
}

export interface SealedUpdate {
  header: UpdateHeader;
  body: Uint8Array;
  /** Leaf hash of the signed contribution entry (with a witness). */
  leafHash: string | undefined;
}

/** Encodes (HE: encrypts) the update, starts the sum's offline phase, signs the contribution entry and builds the header. */
export async function sealUpdate(ctx: NodeContext, task: OpenTask, ref: RoundRef, update: { values: EncodedUpdate['values'] | Int32Array; weight: number }, trained: Trained, spends: PrivacySpend[]): Promise<SealedUpdate> {
  const { scheme, init } = ctx;
  const mode = ctx.privacy.policy.mode;
  const body = await scheme.encode(update.values, ref, init.seededNoise ? [init.seed ?? 1, task.round] : undefined);
  // The round sum's decryption masks, on the HE workers while this thread persists and uploads.
  scheme.prepareSum?.(ctx.global.length, ref)?.catch((err: unknown) => {
    ctx.log.warn({ event: 'he-prepare-failed', err: String(err) }, 'could not prepare HE decryption masks ahead; they will be made when the sum arrives');
  });
  const keyId = task.keyId ?? scheme.keyId;
  const main = spends.find((p) => p.mode === 'record') ?? spends[0];
  const signed = ctx.witness
    ? await ctx.witness.sign({
      type: 'contribution', v: 1, round: task.round, node: ctx.host.peerId, ciphertextHash: sha256Hex(body), ciphertextSize: body.length,
      ...entrySampleCount(mode, ctx.data.rows),
      ...(ctx.privacy.publicCount !== undefined && !ctx.state.privacy?.count ? { countEstimate: ctx.privacy.publicCount } : entryCountEstimate(ctx.state.privacy?.count)),
      epsilon: main?.epsilonRound ?? 0, delta: main?.delta ?? 0, epsilonTotal: main?.epsilonTotal ?? 0, deltaTotal: main?.delta ?? 0,
      // the mechanism this round applied: `ledger verify` composes a member's recorded mechanisms and checks
      // its epsilonTotal reaches what they spend together (an auditor needs no trust in the member's arithmetic)
      // (a Skellam round names its μ and sensitivities: its ε is computed from them, not from z)
      ...(main ? { mechanism: { ...(main.skellam ? { kind: 'skellam' as const } : {}), sampleRate: main.sampleRate, noiseMultiplier: main.noiseMultiplier, steps: main.steps, delta: main.delta, ...main.skellam } } : {}),
      keyId: keyId ?? (scheme.encoding === 'secagg' ? 'secagg' : 'plaintext'), globalVersion: ctx.state.base!,
    })
    : undefined;
  const header: UpdateHeader = {
    round: task.round, baseVersion: task.baseVersion, baseHash: ctx.state.base!, weight: update.weight,
    values: update.values.length, encoding: scheme.encoding, ...(keyId ? { keyId } : {}), ...(trained.counts ? { payload: 'counts' as const } : {}),
    ...releasedStats(mode, trained), privacy: spends, entry: signed?.entry ?? '',
  };
  return { header, body, leafHash: signed?.leafHash };
}
