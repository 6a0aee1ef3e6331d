import { createHash } from 'node:crypto';

/**
 * The consortium's model version id: a hash chain both sides compute without the weights, so the
 * aggregator can fix a round's base when it opens (under HE it cannot hash weights it cannot read).
 * version 0 names the configuration every member builds its seeded initial model from; version v
 * names version v−1 and the exact bytes of aggregate v. The ledger's `aggregate.modelVersion` is
 * this id and the `round.globalVersion` of a round is its base.
 */
const PREFIX = 'fedtwin-model-version/v1\n';

export function genesisModelVersion(c: { consortium: string; modelValues: number; strategy: string; model: { kind: string; latentDim: number; hidden: number; seed: number; sharedLayers?: string[] | undefined }; manifestHash?: string | undefined }): string {
  const model = { kind: c.model.kind, latentDim: c.model.latentDim, hidden: c.model.hidden, seed: c.model.seed, sharedLayers: c.model.sharedLayers ?? null };
  // The manifest hash enters the chain's root, so every round tag (which names the round's base) binds it.
  return sha256Hex(`${PREFIX}genesis\n${JSON.stringify({ consortium: c.consortium, modelValues: c.modelValues, strategy: c.strategy, model, manifestHash: c.manifestHash ?? null })}`);
}

/** The id of the version that aggregate bytes with hash `aggregateHash` make from `base`. */
export function nextModelVersion(base: string, aggregateHash: string): string {
  return sha256Hex(`${PREFIX}${base}\n${aggregateHash}`);
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
