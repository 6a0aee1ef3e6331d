import { FedtwinError } from '@fedtwin/errors';
import type { EncodedUpdate, Strategy } from './strategy.ts';

/**
 * FedAvg (McMahan et al. 2017) weighted by sample count: members send n_i·Δ_i and n_i, so the sum the
 * aggregator publishes is Σ n_iΔ_i and the new global is w + serverLr · Σ n_iΔ_i / Σ n_i.
 */
export function fedAvg(init: { serverLearningRate?: number } = {}): Strategy {
  const serverLr = init.serverLearningRate ?? 1;
  return {
    name: 'fedavg',
    encodeUpdate(delta: Float32Array, numSamples: number): EncodedUpdate {
      if (!Number.isInteger(numSamples) || numSamples < 1) {
        throw new FedtwinError('STRATEGY_BAD_ARGUMENT', `numSamples must be a positive integer, got ${numSamples}`);
      }
      const values = new Float32Array(delta.length);
      for (let i = 0; i < delta.length; i++) values[i] = delta[i]! * numSamples;
      return { values, weight: numSamples };
    },
    applyAggregate(global: Float32Array, sum: Float64Array, totalWeight: number): Float32Array {
      if (sum.length !== global.length) {
        throw new FedtwinError('STRATEGY_SIZE_MISMATCH', `aggregate has ${sum.length} values, the model ${global.length}`);
      }
      if (!(totalWeight > 0)) throw new FedtwinError('STRATEGY_BAD_ARGUMENT', `total weight must be > 0, got ${totalWeight}`);
      const next = new Float32Array(global.length);
      const k = serverLr / totalWeight;
      for (let i = 0; i < global.length; i++) next[i] = global[i]! + sum[i]! * k;
      return next;
    },
  };
}
