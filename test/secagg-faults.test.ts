import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@fedtwin/sim';
import { createConsortium, runCli, type Consortium } from './helpers/consortium.ts';

// Issue 16 with real daemon processes on 127.0.0.1: a consortium under secure aggregation by masking
// (secureAggregation.scheme secagg, t = 2 of 3) loses a member to SIGKILL right after it shared its keys in
// round 1. Round 1 still completes (the member is named dropped and its mask key is rebuilt, or, if its update
// beat the kill, it is in the sum), round 2 goes on with the two others, both finish on the same model, and
// `fedtwin ledger verify` on a member's replica replays every recovery.
describe('secagg: a member killed mid-round', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('SIGKILL after sharing: the round and the next complete without it; the ledger shows and replays the recovery', async () => {
    // Quorum 3: inputs close when every sharer sent or at the deadline, never while a live member is still training
    // (a quorum of 2 could name a slow live member dropped if node 2's update beat the kill).
    c = await createConsortium({ nodes: 3, rounds: 2, quorum: 3, minParticipants: 2, deadlineSeconds: 15, manifest: { secureAggregation: { scheme: 'secagg', threshold: 2 } } });
    const agg = await c.startAggregator();
    for (let i = 0; i < 3; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2].map((i) => c!.startNode(i));
    await waitFor('node 2 shared its keys', async () => nodes[2]!.events.find((e) => e.event === 'secagg-shared') ?? undefined, 120_000);
    nodes[2]!.daemon.child.kill('SIGKILL');
    const codes = await Promise.all([nodes[0]!.daemon.exited, nodes[1]!.daemon.exited]);
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
    const aggregated = agg.events.filter((e) => e.event === 'round-aggregated');
    expect(aggregated.map((e) => e.version)).toEqual([1, 2]);
    expect(aggregated.at(-1)).toMatchObject({ participants: 2 });
    const requests = agg.events.filter((e) => e.event === 'secagg-recovery');
    expect(requests.map((e) => e.round)).toEqual([1, 2]);
    const results = await Promise.all([0, 1].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2]);
    expect(results[0].hash).toBe(results[1].hash);

    const v = await runCli(['ledger', 'verify', '--dir', join(c.dir, 'node0-data', 'ledger'), '--json']);
    expect(v.code, v.stderr).toBe(0);
    const out = JSON.parse(v.stdout) as { secagg: Array<{ round: number; survivors: number; dropped: number; reconstructed: number }> };
    expect(out.secagg.map((x) => x.round)).toEqual([1, 2]);
    // Round 2: node 2 was gone before the keys phase (a dropout before advertising): the phase closed without it.
    expect(out.secagg[1]).toMatchObject({ survivors: 2, dropped: 0, reconstructed: 2 });
    // Round 1: three shared; node 2's update is in the sum only if it beat the kill.
    expect(out.secagg[0]!.survivors + out.secagg[0]!.dropped).toBe(3);
    expect(out.secagg[0]!.reconstructed).toBe(3);
  }, 240_000);
});
