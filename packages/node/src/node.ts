// createNode(): a member's daemon. Opens its state, links to the aggregator and runs the round loop
// (round-loop.ts, one file per phase under phases/); stop() releases what the run opened.
import { NodeStore } from './store.ts';
import type { FedtwinNode, NodeInit } from './api.ts';
import { linkToAggregator } from './call.ts';
import { runNode, type Resources } from './round-loop.ts';

export type { FedtwinNode, NodeInit, NodeRunResult, SyntheticOutput } from './api.ts';

/**
 * A hospital's daemon: trains the consortium's model on local records, sends only the shared
 * sub-model's update, and applies the published aggregates. Raw records never leave this process.
 */
export async function createNode(init: NodeInit): Promise<FedtwinNode> {
  const store = await NodeStore.open(init.dataDir);
  const abort = new AbortController();
  let stopped = false;
  const isStopped = () => stopped;
  const resources: Resources = {};
  const giveUpMs = (init.unreachableGiveUpSeconds ?? 300) * 1000;
  const link = linkToAggregator({ host: init.host, aggregator: init.aggregator, log: init.logger, giveUpMs, signal: abort.signal, stopped: isStopped });

  return {
    peerId: init.host.peerId,
    run: () => runNode({ init, store, link, giveUpMs, signal: abort.signal, stopped: isStopped }, resources),
    async stop() {
      if (stopped) return;
      stopped = true;
      abort.abort();
      resources.model?.weights.dispose();
      await resources.scheme?.close();
      await resources.witness?.close();
      await store.close();
    },
  };
}
