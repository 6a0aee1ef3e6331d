import { createHash } from 'node:crypto';

/**
 * The consortium's model version id: a hash chain both sides compute without the weights, so the
 * aggregator can fix a round's base when it opens (under HE it cannot hash weights it cannot read).
 * version 0 names the configuration every member builds its seeded initial model from; version v
 * names version v−1 and the exact bytes of aggregate v. The ledger's `aggregate.modelVersion` is
 * this id and the `round.globalVersion` of a round is its base.
 */
const PREFIX = 'fedtwin-model-version/v1\n';

type GenesisModel =
  | { kind: 'vae'; latentDim: number; hidden: number; seed: number; sharedLayers?: string[] | undefined }
  | { kind: 'marginals'; seed: number; fineBins?: number | undefined; maxBins?: number | undefined; selectionBins?: number | undefined };

export function genesisModelVersion(c: { consortium: string; modelValues: number; strategy: string; model: GenesisModel; manifestHash?: string | undefined }): string {
  // The VAE's form is the one chains started with before there was a second generator: kept byte for byte.
  const model = c.model.kind === 'vae'
    ? { kind: c.model.kind, latentDim: c.model.latentDim, hidden: c.model.hidden, seed: c.model.seed, sharedLayers: c.model.sharedLayers ?? null }
    : { kind: c.model.kind, seed: c.model.seed, fineBins: c.model.fineBins ?? null, maxBins: c.model.maxBins ?? null, selectionBins: c.model.selectionBins ?? null };
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
