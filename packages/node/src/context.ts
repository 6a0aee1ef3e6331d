// What every phase of a member's run works with: set up once by the join, key, witness and resume
// phases, then shared by the round loop. `state` and `global` change as rounds are applied and contributed.
import type { PrivacyBudget, SkellamSite } from '@fedtwin/dp';
import type { EncodedTable, TableSchema } from '@fedtwin/models';
import { f32ToBytes, type JoinResponse } from '@fedtwin/protocol';
import type { Strategy } from '@fedtwin/strategy';
import type { NodeInit } from './api.ts';
import type { AggregatorCall } from './call.ts';
import type { MemberModel } from './member-model.ts';
import type { PinnedConsortium } from './consortium-check.ts';
import type { MemberScheme } from './scheme.ts';
import type { NodeState, NodeStore } from './store.ts';
import type { Logger, NodeHost } from './types.ts';
import type { Witness } from './witness.ts';

/** The consortium's privacy policy with this member's own budgets (persisted) and its noise source. */
export interface Privacy {
  policy: JoinResponse['privacy'];
  budgets: { record?: PrivacyBudget; site?: PrivacyBudget };
  budgetEps: number;
  budgetDelta: number;
  /** Fills `out` with N(0, std²) noise (OS CSPRNG; seeded only in simulations). */
  normal(out: Float32Array, std: number): void;
  /** Site-level DP of the VAE (site, both): the integer Skellam mechanism its updates carry (site-noise.ts). */
  siteSkellam?: SkellamSite | undefined;
  /** The manifest declares this member's record (unit) count public: DP-SGD's population, no DP count drawn. */
  publicCount?: number | undefined;
}

export interface NodeContext {
  readonly init: NodeInit;
  readonly host: NodeHost;
  readonly log: Logger;
  readonly store: NodeStore;
  readonly call: AggregatorCall;
  readonly signal: AbortSignal;
  stopped(): boolean;
  /** This member's own copy of the manifest (never the aggregator's). */
  readonly consortium: PinnedConsortium;
  /** What the aggregator announced at join, checked against (and replaced by) the pinned values. */
  readonly join: JoinResponse;
  readonly schema: TableSchema;
  readonly data: EncodedTable;
  /**
   * Patient-level DP (the manifest's privacy.unitColumn): each row's unit index and the number of units. DP-SGD
   * samples and clips per unit, and its DP count Ũ (state.privacy.count) counts units: q = batchSize / Ũ. Undefined: a row is a unit.
   */
  readonly units: Int32Array | undefined;
  readonly unitCount: number | undefined;
  readonly strategy: Strategy;
  /** What this member federates: the VAE, or the marginals generator's schedule and records (member-model.ts). */
  readonly model: MemberModel;
  readonly scheme: MemberScheme;
  readonly witness: Witness | undefined;
  readonly privacy: Privacy;
  /** The update persisted before a restart (its bytes), re-sent as is if its round is still open. */
  readonly resumedPending: Uint8Array | undefined;
  /** Durable state: the global version held, contributions, pending update, privacy spent. */
  state: NodeState;
  /** The global shared weights this member holds (version `state.version`). */
  global: Float32Array;
}

/** Saves the state with the current budgets, the global and private weights (and a pending update's bytes) in one synced batch. */
export async function persist(ctx: NodeContext, pending?: Uint8Array): Promise<void> {
  const { budgets } = ctx.privacy;
  ctx.state = { ...ctx.state, privacy: { ...ctx.state.privacy, record: budgets.record?.toJSON(), site: budgets.site?.toJSON() } };
  await ctx.store.save(ctx.state, f32ToBytes(ctx.global), f32ToBytes(ctx.model.weights.getPrivateWeights()), pending);
}
