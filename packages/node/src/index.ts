export { createNode } from './node.ts';
export type { FedtwinNode, NodeInit, NodeRunResult, SyntheticOutput } from './node.ts';
export type { NodeHost, Logger } from './types.ts';
export { NodeStore } from './store.ts';
export type { NodeState } from './store.ts';
