import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createConsortium, freePort, type Consortium } from './helpers/consortium.ts';
import { waitFor } from '@fedtwin/sim';

// Sites and the consortium are started by different people: a node that comes up before its
// aggregator waits for it (as it does when the aggregator goes away mid-run) instead of exiting.
describe('start-up order', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('a node started 3 s before its aggregator joins once it is up, and the federation finishes', async () => {
    const port = await freePort();
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 30, listen: `/ip4/127.0.0.1/tcp/${port}` });
    await c.writeNodeConfig(0, { aggregator: { peerId: c.aggregatorId, address: `/ip4/127.0.0.1/tcp/${port}` } });
    const node = c.startNode(0);
    // The node finds nothing listening and waits (a loaded machine may take seconds to start it).
    await waitFor('the node to find the aggregator unreachable', async () => {
      if (node.daemon.child.exitCode !== null) throw new Error(`node exited: ${node.daemon.stderrTail()}`);
      return node.events.find((e) => e.event === 'aggregator-unreachable' && e.code === 'WIRE_DIAL_FAILED');
    }, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(node.daemon.child.exitCode, node.daemon.stderrTail()).toBeNull();
    // Nodes only dial out: no listener unless configured.
    expect(node.events.find((e) => e.event === 'node-host')?.listenAddrs).toEqual([]);
    const agg = await c.startAggregator();
    expect(await node.daemon.exited, node.daemon.stderrTail()).toBe(0);
    expect(agg.events.filter((e) => e.event === 'round-aggregated').map((e) => e.version)).toEqual([1]);
    expect(JSON.parse(await readFile(join(c.dir, 'node0-data', 'result.json'), 'utf8'))).toMatchObject({ version: 1, contributions: 1 });
  }, 60_000);
});
