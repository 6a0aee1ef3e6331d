export { createAggregatorMetrics, ROUND_DURATION_BUCKETS, type AggregatorView, type DaemonMetrics } from './aggregator.ts';
export { createNodeMetrics, type NodeView } from './node.ts';
export type { BytesByProtocol } from './registry.ts';
