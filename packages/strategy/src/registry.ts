import { FedtwinError } from '@fedtwin/errors';
import { fedAvg } from './fedavg.ts';
import type { Strategy } from './strategy.ts';

export const STRATEGY_NAMES = ['fedavg'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export function createStrategy(name: string, options: { serverLearningRate?: number } = {}): Strategy {
  switch (name) {
    case 'fedavg':
      return fedAvg(options);
    default:
      throw new FedtwinError('STRATEGY_UNKNOWN', `unknown strategy "${name}"`, { hint: `use one of: ${STRATEGY_NAMES.join(', ')}` });
  }
}
