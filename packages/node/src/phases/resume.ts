// Resume: the durable state this member holds — what a restart left in Level, or version 0 (the seeded
// initial model, identical on every member), saved at once. Its privacy spending is checked against its own
// signed ledger entries first: a missing or stale state is rebuilt from them, never replaced by a fresh budget.
import { FedtwinError } from '@fedtwin/errors';
import { bytesToF32, f32ToBytes, genesisModelVersion, type JoinResponse } from '@fedtwin/protocol';
import { versionHash } from '@fedtwin/strategy';
import type { NodeInit } from '../api.ts';
import type { ModelWeights } from '../member-model.ts';
import type { SampledGaussian } from '@fedtwin/dp';
import type { AggregatorCall } from '../call.ts';
import { rebuildSpending, savedEpsilon, type OwnLedgerEntry, type RebuiltSpending } from '../privacy.ts';
import type { NodeState, NodeStore } from '../store.ts';
import type { Witness } from '../witness.ts';
import { pullLedger } from './witness-sync.ts';

export interface Resumed {
  state: NodeState;
  global: Float32Array;
  /** Bytes of an update persisted but not acknowledged before the restart. */
  pending: Uint8Array | undefined;
}

/** What the resume phase needs to read this member's own ledger entries: its replica, the aggregator, its record (and unit) count. */
export interface LedgerCheck {
  witness: Witness | undefined;
  call: AggregatorCall;
  rows: number;
  /** The marginals generator: the public schedule's mechanisms (the rebuild replays those). */
  scheduled?: readonly SampledGaussian[] | undefined;
  /** With a unit column: entries from before the DP count replay at q = batchSize / unitCount (later ones at B/Ũ, Ũ from the entries). */
  unitCount?: number | undefined;
  /** Site-level DP of the VAE: the Skellam step each contribution charged (site-noise.ts), which the rebuild replays. */
  siteStep?: SampledGaussian | undefined;
  /** The record (unit) count the manifest declares public for this member: its rounds replay at q = B/publicCount. */
  publicCount?: number | undefined;
  /** A calibrating VAE consortium: the column release's mechanism (replayed once), and its DP-SGD rounds (one fewer). */
  releaseStep?: SampledGaussian | undefined;
  trainingRounds?: number | undefined;
}

export async function resumeState(init: NodeInit, store: NodeStore, join: JoinResponse, vae: ModelWeights, ledger?: LedgerCheck): Promise<Resumed> {
  const saved = await store.load();
  const genesis = genesisModelVersion({ consortium: join.consortium, modelValues: join.modelValues, strategy: join.strategy, model: join.model, manifestHash: init.consortium.hash });
  const own = ledger?.witness ? await ownLedgerEntries(ledger.witness, ledger.call, init.host.peerId, saved?.state.ledgerLeaves ?? []) : [];
  const rebuild = () => rebuildSpending(own, { policy: join.privacy, rows: ledger!.rows, unitCount: ledger!.unitCount, training: init.consortium.manifest.training, totalRounds: ledger!.trainingRounds ?? join.totalRounds, own: init.privacy ?? {}, scheduled: ledger!.scheduled, siteStep: ledger!.siteStep, publicCount: ledger!.publicCount, releaseStep: ledger!.releaseStep });
  if (!saved) {
    const global = vae.getSharedWeights();
    let state: NodeState = { version: 0, hash: versionHash(global), base: genesis, lastRound: 0, contributions: [], losses: [] };
    if (own.length > 0) state = withRebuilt(init, state, rebuild(), 'no saved state');
    await store.save(state, f32ToBytes(global), f32ToBytes(vae.getPrivateWeights()));
    return { state, global, pending: undefined };
  }
  const global = bytesToF32(saved.global);
  let state = saved.state;
  if (state.base === undefined) {
    if (state.version !== 0) {
      throw new FedtwinError('STATE_CORRUPT', `the saved state at version ${state.version} has no model version id`, {
        hint: 'this state was written by an older fedtwin: move <dataDir>/state aside (keep the ledger replica and he-keys) and restart; the member rebuilds its privacy spending from its ledger entries and re-syncs the model',
      });
    }
    state = { ...state, base: genesis };
  }
  if (stateBehindLedger(state, own, join)) {
    // A state restored from an older backup: what the ledger says this member spent is more than it knows.
    state = withRebuilt(init, state, rebuild(), 'saved state behind the ledger');
    await store.save(state, saved.global);
  }
  if (saved.private) vae.setPrivateWeights(bytesToF32(saved.private));
  init.logger.info({ event: 'resume', version: state.version, lastRound: state.lastRound }, `resuming at global version ${state.version}`);
  return { state, global, pending: saved.pending };
}

/** The state with the spending, rounds and ledger leaves rebuilt from the ledger (logged). */
function withRebuilt(init: NodeInit, state: NodeState, r: RebuiltSpending, why: string): NodeState {
  init.logger.warn({ event: 'budget-rebuilt', reason: why, contributions: r.contributions.length, lastRound: r.lastRound, epsilon: r.ledgerEpsilon, refused: r.privacy.refused ?? null },
    `${why}: privacy spending rebuilt from this member's ${r.contributions.length} signed contribution(s) in its ledger (ε = ${Number(r.ledgerEpsilon.toPrecision(3))}, last round ${r.lastRound})`);
  const known = new Set(state.contributions.map((c) => c.round));
  return {
    ...state,
    lastRound: Math.max(state.lastRound, r.lastRound),
    contributions: [...state.contributions, ...r.contributions.filter((c) => !known.has(c.round))].sort((a, b) => a.round - b.round),
    ledgerLeaves: r.ledgerLeaves,
    privacy: r.privacy,
  };
}

/**
 * True if the ledger records more spending by this member than its saved state: the ε its last contribution
 * signed (main mode, at that entry's δ) is above what the saved mechanisms give at the same δ. A state that is
 * ahead (an update charged and sent, then declined, has no entry) is not behind.
 */
function stateBehindLedger(state: NodeState, own: readonly OwnLedgerEntry[], join: JoinResponse): boolean {
  const mode = join.privacy.mode === 'record' || join.privacy.mode === 'both' ? 'record' : join.privacy.mode === 'site' ? 'site' : undefined;
  const last = own.filter((e) => e.type === 'contribution').at(-1);
  if (!mode || !last || last.epsilonTotal === undefined || last.delta === undefined) return false;
  return savedEpsilon(state.privacy, mode, last.delta) < last.epsilonTotal * (1 - 1e-9);
}

/**
 * This member's own contribution and refusal entries, in log order, from its replica brought up to date first
 * (the same verified sync as every round's: the aggregator's signed checkpoint, consistent with the last one
 * this member accepted, holding the leaves it knows are its own). Co-signing waits for the round loop.
 */
async function ownLedgerEntries(witness: Witness, call: AggregatorCall, self: string, mustInclude: Array<{ leafHash: string; index?: number }>): Promise<OwnLedgerEntry[]> {
  await pullLedger(witness, call, mustInclude);
  const out: OwnLedgerEntry[] = [];
  for (let index = 0; index < witness.size; index++) {
    const e = await witness.entryAt(index);
    if (e.author !== self) continue;
    const p = e.payload;
    const leafHash = Buffer.from(e.leafHash).toString('hex');
    if (p.type === 'contribution') {
      out.push({ index, leafHash, type: 'contribution', round: p.round, epsilonTotal: p.epsilonTotal, delta: p.delta, ...(p.sampleCount !== undefined ? { sampleCount: p.sampleCount } : {}), ...(p.countEstimate !== undefined ? { countEstimate: p.countEstimate } : {}), ...(p.countNoise !== undefined ? { countNoise: p.countNoise } : {}), ...(p.time !== undefined ? { time: p.time } : {}) });
    } else if (p.type === 'refusal') {
      out.push({ index, leafHash, type: 'refusal', round: p.round, reason: p.reason, ...(p.time !== undefined ? { time: p.time } : {}) });
    }
  }
  return out;
}
