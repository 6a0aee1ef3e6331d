// What a member federates, by the consortium's generator (the manifest's `model.kind`): the VAE's shared
// sub-model (rounds of DP-SGD deltas) or the marginals generator's count vector (three rounds of noisy
// counts, docs/marginals.md). Both are a fixed-size Float32 "global" every member holds, saved and resumed
// the same way; only how a round's update is made, how a sum is applied and how the release is sampled differ.
import { FedtwinError } from '@fedtwin/errors';
import type { FederatedFit, Table, TwinVae } from '@fedtwin/models';
import { capRowsPerUnit, columnRelease, marginalsFit, scheduleFor, type ColumnRelease, type MstSchedule } from '@fedtwin/marginals';
import type { JoinResponse, MarginalsModelConfig } from '@fedtwin/protocol';
import { roundUnits, wireScale, type CountUnits, type WireScale } from './marginals/wire.ts';
import { shareBound } from './marginals/noise.ts';

/** The weights the round machinery persists and resumes (the VAE's own methods; the marginals member's below). */
export interface ModelWeights {
  readonly sharedSize: number;
  /** Version 0 of the global: the VAE's seeded initial weights; no counts released yet (zeros). */
  getSharedWeights(): Float32Array;
  getPrivateWeights(): Float32Array;
  setPrivateWeights(w: Float32Array): void;
  dispose(): void;
}

/** A member of a marginals consortium: the public schedule and its own records (never sent). */
export interface MarginalsMember {
  readonly config: MarginalsModelConfig;
  readonly schedule: MstSchedule;
  /** The rounds as a FederatedFit: this member's contribution per round, the generator at the end. */
  readonly fit: FederatedFit;
  readonly table: Table;
  /** The wire's range (HE quanta); each round's encoding follows from it and the round's noise (unitsFor). */
  readonly scale: WireScale;
}

/**
 * A calibrating VAE consortium's column release (model.calibrate): its first measurement is a count round, whose
 * summed counts sit behind the model's `offset` values in the global every member holds.
 */
export interface VaeRelease {
  readonly release: ColumnRelease;
  /** Where the counts start in the global: the VAE's shared size. */
  readonly offset: number;
  readonly table: Table;
  readonly scale: WireScale;
}

export type MemberModel =
  | { kind: 'vae'; weights: ModelWeights; vae: TwinVae; release?: VaeRelease | undefined }
  | { kind: 'marginals'; weights: ModelWeights; marginals: MarginalsMember };

/**
 * The VAE member; with model.calibrate, its weights are the VAE's shared weights followed by the column release's
 * counts (zeros until the count round is summed). Its ε target is the consortium's, as the marginals member's.
 */
export async function vaeModel(vae: TwinVae, join?: JoinResponse, table?: Table): Promise<MemberModel> {
  if (!join || join.model.kind !== 'vae' || !join.model.calibrate || !table) return { kind: 'vae', weights: vae, vae };
  const p = join.privacy;
  if (p.mode === 'site' || p.mode === 'both' || p.record?.unitColumn !== undefined) {
    throw new FedtwinError('CONSORTIUM_INVALID', `model.calibrate releases record-level counts: it needs privacy.mode record (without unitColumn) or off, not "${p.mode}"${p.record?.unitColumn ? ' with a unit column' : ''}`, { hint: 'drop model.calibrate from the consortium manifest' });
  }
  const epsilon = consortiumEpsilon(p);
  const release = columnRelease(table.schema, { epsilon, delta: p.delta });
  const offset = vae.sharedSize;
  const weights: ModelWeights = {
    sharedSize: offset + release.values,
    getSharedWeights: () => {
      const out = new Float32Array(offset + release.values);
      out.set(vae.getSharedWeights());
      return out;
    },
    getPrivateWeights: () => vae.getPrivateWeights(),
    setPrivateWeights: (w) => vae.setPrivateWeights(w),
    dispose: () => vae.dispose(),
  };
  return { kind: 'vae', weights, vae, release: { release, offset, table, scale: await wireScale(join) } };
}

/**
 * The ε a count schedule is calibrated to: the consortium's (record.targetEpsilon, else its ε; ∞ with DP off), never a
 * member's own budget, so every member draws its noise share at the same μ.
 */
function consortiumEpsilon(p: JoinResponse['privacy']): number {
  return p.mode === 'off' ? Infinity : Math.min(p.record?.targetEpsilon ?? p.epsilon, p.epsilon);
}

/** The model's part of a global (the VAE's shared weights, without a column release's counts behind them). */
export function modelPart(model: MemberModel, global: Float32Array): Float32Array {
  return model.kind === 'vae' && model.release ? global.subarray(0, model.release.offset) : global;
}

/** The column release of a calibrating VAE consortium, or undefined. */
export function vaeReleaseOf(model: MemberModel): VaeRelease | undefined {
  return model.kind === 'vae' ? model.release : undefined;
}

/** The count round's encoding (resolution 1 needed: integer shares cannot be split across quanta). */
export function releaseUnits(r: VaeRelease, minParticipants: number): CountUnits {
  return roundUnits(r.scale, shareBound(r.release.mu, minParticipants));
}

/**
 * The marginals member: its schedule from the pinned schema, generator options and privacy target. The target is
 * the consortium's (record.targetEpsilon, else its ε; ∞ with DP off), never this member's own budget: the noise
 * shares add up to the accounted σ² only if every member draws them at the same σ. A member with a stricter
 * budget refuses the rounds it cannot afford instead.
 */
export async function marginalsModel(join: JoinResponse, table: Table, units?: Int32Array): Promise<MemberModel> {
  if (join.model.kind !== 'marginals') throw new FedtwinError('NODE_MODEL_MISMATCH', `the consortium's generator is ${join.model.kind}, not marginals`);
  const p = join.privacy;
  if (p.mode === 'site' || p.mode === 'both') {
    throw new FedtwinError('CONSORTIUM_INVALID', `the marginals generator protects records (privacy.mode record) or nothing (off), not mode "${p.mode}"`, { hint: 'set privacy.mode to record in the consortium manifest' });
  }
  // Patient-level DP: at most maxRowsPerUnit rows of a unit are counted, and the noise is scaled to that sensitivity.
  const perUnit = p.record?.unitColumn !== undefined ? join.model.maxRowsPerUnit ?? 1 : undefined;
  if (perUnit !== undefined && !units) throw new FedtwinError('NODE_MODEL_MISMATCH', 'patient-level DP: the member has no unit index per row');
  const counted = perUnit !== undefined ? capRowsPerUnit(table, units!, perUnit) : table;
  const epsilon = consortiumEpsilon(p);
  const schedule = scheduleFor(table.schema, join.model, { epsilon, delta: p.delta, sensitivity: perUnit });
  const weights: ModelWeights = {
    sharedSize: schedule.values,
    getSharedWeights: () => new Float32Array(schedule.values),
    getPrivateWeights: () => new Float32Array(0),
    setPrivateWeights: (w) => {
      if (w.length !== 0) throw new FedtwinError('STATE_CORRUPT', `a marginals member keeps no private weights, the saved state holds ${w.length}`);
    },
    dispose: () => undefined,
  };
  return { kind: 'marginals', weights, marginals: { config: join.model, schedule, fit: marginalsFit(schedule), table: counted, scale: await wireScale(join) } };
}

/** Round `round`'s count encoding: from the wire's range and the bound of the round's Skellam share (public, same on every member). */
export function unitsFor(m: MarginalsMember, round: number, minParticipants: number): CountUnits {
  return roundUnits(m.scale, shareBound(muFor(m, round), minParticipants));
}

/** The Skellam μ of the round's summed noise (0 with DP off): the schedule's, the same on every member. */
export function muFor(m: MarginalsMember, round: number): number {
  const p = m.schedule.plan;
  if (p.epsilon === Infinity) return 0;
  const mu = round === 1 ? p.oneWay.mu : round === 2 ? (p.select.kind === 'measured' ? p.select.mu : undefined) : p.edges.mu;
  if (p.noise !== 'skellam' || mu === undefined) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `the marginals schedule's round ${round} has no Skellam noise (noise "${p.noise}")`, { hint: 'members draw integer Skellam shares: the schedule must come from scheduleFor' });
  return mu;
}

/** The VAE of a VAE consortium (NODE_MODEL_MISMATCH otherwise: a phase of the other generator was called). */
export function vaeOf(model: MemberModel): TwinVae {
  if (model.kind !== 'vae') throw new FedtwinError('NODE_MODEL_MISMATCH', `this consortium's generator is ${model.kind}: there is no VAE to train or sample`);
  return model.vae;
}
