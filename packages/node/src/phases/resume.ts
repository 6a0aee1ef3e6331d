// Resume: the durable state this member holds — what a restart left in Level, or version 0 (the seeded
// initial model, identical on every member), saved at once.
import { FedtwinError } from '@fedtwin/errors';
import type { TwinVae } from '@fedtwin/models';
import { bytesToF32, f32ToBytes, genesisModelVersion, type JoinResponse } from '@fedtwin/protocol';
import { versionHash } from '@fedtwin/strategy';
import type { NodeInit } from '../api.ts';
import type { NodeState, NodeStore } from '../store.ts';

export interface Resumed {
  state: NodeState;
  global: Float32Array;
  /** Bytes of an update persisted but not acknowledged before the restart. */
  pending: Uint8Array | undefined;
}

export async function resumeState(init: NodeInit, store: NodeStore, join: JoinResponse, vae: TwinVae): Promise<Resumed> {
  const saved = await store.load();
  const genesis = genesisModelVersion({ consortium: join.consortium, modelValues: join.modelValues, strategy: join.strategy, model: join.model, manifestHash: init.consortium.hash });
  if (!saved) {
    const global = vae.getSharedWeights();
    const state: NodeState = { version: 0, hash: versionHash(global), base: genesis, lastRound: 0, contributions: [], losses: [] };
    await store.save(state, f32ToBytes(global), f32ToBytes(vae.getPrivateWeights()));
    return { state, global, pending: undefined };
  }
  const global = bytesToF32(saved.global);
  let state = saved.state;
  if (state.base === undefined) {
    if (state.version !== 0) throw new FedtwinError('STATE_CORRUPT', `the saved state at version ${state.version} has no model version id`, { hint: 'this dataDir was written by an older fedtwin; start this member from a fresh dataDir' });
    state = { ...state, base: genesis };
  }
  if (saved.private) vae.setPrivateWeights(bytesToF32(saved.private));
  init.logger.info({ event: 'resume', version: state.version, lastRound: state.lastRound }, `resuming at global version ${state.version}`);
  return { state, global, pending: saved.pending };
}
