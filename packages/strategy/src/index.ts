export type { Strategy, EncodedUpdate } from './strategy.ts';
export { fedAvg } from './fedavg.ts';
export { createStrategy, STRATEGY_NAMES } from './registry.ts';
export type { StrategyName } from './registry.ts';
export { versionHash } from './version.ts';
