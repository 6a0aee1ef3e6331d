/**
 * A federated optimisation strategy, split the way fedtwin's rounds are: the aggregator only ever
 * *sums* what members send (it may not be able to read it: under HE it sums ciphertexts), so a
 * strategy says what a member sends (`encodeUpdate`) and how every member turns the published sum
 * into the next global weights (`applyAggregate`). `applyAggregate` must be deterministic: every
 * member computes the same new global weights and the same version hash from the same sum.
 */
export interface Strategy {
  readonly name: string;
  /** Member side: the vector to be summed and the weight it carries (e.g. its sample count). */
  encodeUpdate(delta: Float32Array, numSamples: number): EncodedUpdate;
  /** Every member: next global weights from the current ones and the round's sum. Pure. */
  applyAggregate(global: Float32Array, sum: Float64Array, totalWeight: number, participants: number): Float32Array;
}

export interface EncodedUpdate {
  values: Float32Array;
  weight: number;
}
