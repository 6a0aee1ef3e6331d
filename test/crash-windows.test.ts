import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLedger, sha256Hex, verifyLedgerDir, type EntryPayload } from '@fedtwin/ledger';
import { AggregatorStore } from '@fedtwin/aggregator';
import { stopDaemon } from '@fedtwin/sim';
import { createConsortium, freePort, type Consortium } from './helpers/consortium.ts';

// Issue 11, item 5: the aggregator writes two stores (state, ledger). Killed (SIGKILL, via
// packages/aggregator/src/crash-points.ts) at the exact point between the two, then restarted without the
// crash, it must leave a ledger that verifies with one contribution per node and round, a `round` entry for
// every round in state and an `aggregate` entry for every aggregated round. Real daemons, 2 nodes, 2 rounds.
describe('aggregator crash windows between state and ledger', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  async function run(point: string, reconciled: (e: Record<string, unknown> | undefined) => void): Promise<void> {
    const port = await freePort();
    c = await createConsortium({ nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 60, listen: `/ip4/127.0.0.1/tcp/${port}` });
    const first = await c.startAggregator({ crashAt: point });
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1].map((i) => c!.startNode(i));
    const code = await Promise.race([first.daemon.exited, new Promise((r) => setTimeout(() => r('alive'), 45_000))]);
    expect(code, 'the aggregator killed itself at the crash point').toBe(128);
    // Restarted on the same address without the crash; the members retry meanwhile and finish.
    const again = await c.startAggregator();
    const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
    const results = await Promise.all([0, 1].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2]);
    expect(results[0].hash).toBe(results[1].hash);
    await stopDaemon(again.daemon, 10_000);

    // The ledger verifies (at most one contribution or refusal per node and round is a verify rule now) ...
    const ledgerDir = join(c.dir, 'agg-data', 'ledger');
    const v = await verifyLedgerDir(ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
    const ledger = await openLedger({ dir: ledgerDir, readOnly: true });
    const entries: { index: number; p: EntryPayload }[] = [];
    try {
      for (let i = 0; i < ledger.size; i++) entries.push({ index: i, p: (await ledger.getEntry(i)).payload });
    } finally {
      await ledger.close();
    }
    // ... with exactly one contribution per node per round (each ε counted once) ...
    const perNodeRound = new Map<string, number>();
    for (const { p } of entries) if (p.type === 'contribution') perNodeRound.set(`${p.node}/${p.round}`, (perNodeRound.get(`${p.node}/${p.round}`) ?? 0) + 1);
    expect(Object.fromEntries(perNodeRound)).toEqual(Object.fromEntries(c.nodeIds.flatMap((n) => [1, 2].map((r) => [`${n}/${r}`, 1]))));
    // ... and it says what state says: a `round` entry for every round, the `aggregate` entry of every aggregated one.
    const store = await AggregatorStore.open(join(c.dir, 'agg-data', 'state'));
    try {
      const rounds = await store.listRounds();
      expect(rounds.map((r) => r.status)).toEqual(['aggregated', 'aggregated']);
      for (const rec of rounds) {
        expect(entries.filter(({ p }) => p.type === 'round' && p.round === rec.round), `round entry of round ${rec.round}`).toHaveLength(1);
        const aggs = entries.filter(({ p }) => p.type === 'aggregate' && p.round === rec.round);
        expect(aggs, `aggregate entry of round ${rec.round}`).toHaveLength(1);
        const a = (await store.listAggregates()).find((x) => x.round === rec.round)!;
        const body = (await store.getAggregate(a.version))!.body;
        const p = aggs[0]!.p as Extract<EntryPayload, { type: 'aggregate' }>;
        expect(p.aggregateHash).toBe(sha256Hex(body));
        expect(p.contributions).toEqual(rec.contributions.map((x) => x.ledgerIndex).sort((x, y) => x! - y!));
        for (const leaf of p.contributions) expect(entries[leaf]!.p).toMatchObject({ type: 'contribution', round: rec.round });
      }
    } finally {
      await store.close();
    }
    reconciled(again.events.find((e) => e.event === 'reconciled'));
  }

  it('after a contribution entry is appended, before the update is in state (the member re-sends it)', () => run('after-contribution-ledger', (e) => {
    // the entry already in the ledger awaited its member's re-send, which was mapped to it
    expect(e).toMatchObject({ rounds: [], aggregates: [], pending: [{ round: 1 }] });
  }), 90_000);
  it('after an aggregate is in state, before its aggregate entry', () => run('after-close-store', (e) => {
    expect(e).toMatchObject({ rounds: [], aggregates: [{ round: 1, version: 1 }], pending: [] });
  }), 90_000);
  it('after a round is opened in state, before its round entry (round 2)', () => run('after-round-store:2', (e) => {
    expect(e).toMatchObject({ rounds: [{ round: 2 }], aggregates: [], pending: [] });
  }), 90_000);
});
