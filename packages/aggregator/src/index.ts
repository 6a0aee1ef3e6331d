export { createAggregator } from './aggregator.ts';
export type { Aggregator, AggregatorInit, RoundPolicy } from './aggregator.ts';
export type { AggregatorHost, Logger } from './types.ts';
export { AggregatorStore } from './store.ts';
export type { AggregateRecord, AggregatorState, ContributionRecord, RoundRecord } from './store.ts';
