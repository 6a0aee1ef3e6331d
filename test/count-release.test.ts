import { afterEach, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyLedgerDir } from '@fedtwin/ledger';
import { contributionEntries } from '../packages/node/test/helpers/in-process-federation.ts';
import { stopDaemon, waitFor } from '@fedtwin/sim';
import { createConsortium, freePort, type Consortium } from './helpers/consortium.ts';

// Issue 13 item 3 with real processes: under record-level DP every member draws its DP count Ñ once, and its
// signed contribution entries carry Ñ (never N); its q is min(1, B/Ñ). Node 0 is killed after its first contribution
// and its state deleted (the ledger replica kept): it rebuilds its spending from its entries, recovers the same Ñ
// and does not draw (release) a second count.
const BATCH = 64;
describe('the DP record count (real processes)', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('entries carry Ñ not N; a member that lost its state recovers Ñ from the ledger and never redraws it', async () => {
    const port = await freePort();
    c = await createConsortium({
      nodes: 2, rounds: 3, quorum: 2, minParticipants: 1, deadlineSeconds: 30, listen: `/ip4/127.0.0.1/tcp/${port}`,
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
    });
    const agg = await c.startAggregator();
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
    const first = c.startNode(0);
    const other = c.startNode(1);
    await waitFor('node 0 to contribute', async () => first.events.find((e) => e.event === 'contributed'), 120_000);
    first.daemon.child.kill('SIGKILL');
    await first.daemon.exited;
    await rm(join(c.dir, 'node0-data', 'state'), { recursive: true, force: true });
    const second = c.startNode(0);
    expect(await second.daemon.exited, second.daemon.stderrTail()).toBe(0);
    expect(await other.daemon.exited, other.daemon.stderrTail()).toBe(0);
    await stopDaemon(agg.daemon, 10_000);

    const drawn = [first, other].map((n) => n.events.filter((e) => e.event === 'count-released'));
    expect(drawn.map((d) => d.length)).toEqual([1, 1]);
    const nTilde = drawn.map((d) => d[0]!.estimate as number);
    // The restarted member rebuilt its spending from the ledger and drew no second count.
    expect(second.events.some((e) => e.event === 'budget-rebuilt')).toBe(true);
    expect(second.events.some((e) => e.event === 'count-released')).toBe(false);

    const ledgerDir = join(c.dir, 'agg-data', 'ledger');
    const v = await verifyLedgerDir(ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
    const contributions = await contributionEntries(ledgerDir);
    for (const i of [0, 1]) {
      const own = contributions.filter((p) => p.node === c!.nodeIds[i]);
      expect(own.length, `node ${i}`).toBeGreaterThanOrEqual(i === 0 ? 2 : 3);
      for (const p of own) {
        expect(p.countEstimate, `node ${i} round ${p.round}`).toBe(nTilde[i]);
        expect(p.countNoise).toBe(20);
        expect(p.sampleCount).toBeUndefined();
        expect(p.mechanism!.sampleRate).toBe(Math.min(1, BATCH / nTilde[i]!));
      }
      // Totals never drop across the restart: the rebuilt budget holds the count release and every round.
      const totals = own.map((p) => p.epsilonTotal);
      expect(totals).toEqual([...totals].sort((a, b) => a - b));
      expect(totals.at(-1)!).toBeLessThanOrEqual(8);
    }
  }, 400_000);
});
