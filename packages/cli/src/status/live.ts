import type { Aggregator } from '@fedtwin/aggregator';
import type { Manifest } from '@fedtwin/consortium';
import type { NodeState } from '@fedtwin/node';
import type { Served } from '../host-tap.ts';
import { aggregatorStatus, type AggregatorStatus, type Observed } from './aggregator-status.ts';
import { checkpointOf, readLedgerDir } from './ledger-view.ts';
import { applyNodeEvent, nodeStatusFromState, type NodeStatus } from './node-status.ts';

/**
 * A running aggregator's status: what the aggregator reports (state, rounds, aggregates, key id, ledger) plus
 * what only the daemon sees (joins, last requests, the key epoch). Call before createAggregator: the key's epoch
 * is read from the state directory while it is still free; later epochs come with the key holder's publications.
 */
export async function liveAggregatorStatus(opts: { stateDir: string; manifest: Manifest; peerId: string }): Promise<{ observe(s: Served): boolean; build(a: Aggregator): Promise<AggregatorStatus> }> {
  const epochs = new Map<string, number>();
  if (opts.manifest.secureAggregation.scheme === 'bfv') {
    // A state the aggregator cannot open either fails its start a moment later, with its own error: not here.
    await readState(async () => {
      const { AggregatorStore } = await import('@fedtwin/aggregator');
      const store = await AggregatorStore.open(opts.stateDir);
      try {
        const key = await store.getKey();
        if (key) epochs.set(key.keyId, key.epoch);
      } finally {
        await store.close();
      }
    });
  }
  const observed: Observed = {};
  return {
    observe(s) {
      const seen = (observed[s.peer] ??= {});
      seen.lastSeenAt = s.at;
      if (s.protocol === 'join') seen.joinedAt ??= s.at;
      const h = s.header as { keyId?: unknown; epoch?: unknown } | undefined;
      if (s.protocol === 'key-publish' && typeof h?.keyId === 'string' && typeof h.epoch === 'number') epochs.set(h.keyId, h.epoch);
      // Every answered request may have changed what the status shows, except an idle poll.
      return !(s.protocol === 'task' && (s.response as { status?: string } | undefined)?.status === 'idle');
    },
    async build(a) {
      const keyId = await a.keyId();
      const ledger = await a.ledger();
      return aggregatorStatus({
        manifest: opts.manifest, peerId: opts.peerId, state: await a.state(), rounds: await a.rounds(), aggregates: await a.aggregates(),
        key: keyId ? { keyId, epoch: epochs.get(keyId) ?? null } : undefined,
        ledger: ledger ? { size: ledger.size, rootHash: ledger.rootHash, checkpoint: await checkpointOf(ledger.checkpoint) } : null,
        observed, source: 'live', now: Date.now(),
      });
    },
  };
}

/**
 * A running node's status: read from its dataDir before the node opens it (Level allows one process), then kept
 * from the node's own log events (applyNodeEvent).
 */
export async function liveNodeStatus(opts: { stateDir: string; ledgerDir: string; consortium: string; peerId: string }): Promise<{ onEvent(e: Record<string, unknown>): boolean; build(): Promise<NodeStatus> }> {
  let state: NodeState | undefined;
  await readState(async () => {
    const { NodeStore } = await import('@fedtwin/node');
    const store = await NodeStore.open(opts.stateDir);
    try {
      state = (await store.load())?.state;
    } finally {
      await store.close();
    }
  });
  // A first start has an empty ledger directory (no Level files yet): no replica.
  const replica = await readLedgerDir(opts.ledgerDir).catch(() => null);
  const status = await nodeStatusFromState({ ...opts, now: Date.now(), state, replica, source: 'live', finished: false });
  return {
    onEvent: (e) => applyNodeEvent(status, e, Date.now()),
    build: async () => structuredClone(status),
  };
}

/** The status is a view: a state it cannot read (corrupt, locked) leaves it empty, and the daemon reports the cause. */
async function readState(read: () => Promise<void>): Promise<void> {
  try {
    await read();
  } catch {
    // the daemon opens the same directory next and fails with the precise error
  }
}
