import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stopDaemon } from '@fedtwin/sim';
import { createConsortium, freePort, runCli, type Consortium } from './helpers/consortium.ts';

// Issue 16: an aggregator restart must not cost a masked round. Killed (SIGKILL, packages/aggregator/src/
// crash-points.ts) right after each secagg phase closes — keys closed, shares closed, recovery request in the
// ledger — and restarted on its state, it resumes the round at that phase: the round it was in is aggregated
// (not failed and reopened, as before), every member ends on the same model, the ledger holds one recovery
// request per round and `fedtwin ledger verify` replays each. Real daemons, 2 members (t = 2), 2 rounds.
describe('secagg: the aggregator killed inside a masked round resumes it', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  for (const point of ['after-secagg-keys-closed', 'after-secagg-shares-closed', 'after-secagg-recovery-ledger']) {
    it(`kill -9 ${point}: round 1 resumes at its phase and is aggregated; both rounds verify`, async () => {
      const port = await freePort();
      c = await createConsortium({ nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 60, listen: `/ip4/127.0.0.1/tcp/${port}`, manifest: { secureAggregation: { scheme: 'secagg' } } });
      const first = await c.startAggregator({ crashAt: point });
      for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
      const nodes = [0, 1].map((i) => c!.startNode(i));
      const code = await Promise.race([first.daemon.exited, new Promise((r) => setTimeout(() => r('alive'), 60_000))]);
      expect(code, 'the aggregator killed itself at the crash point').toBe(128);
      const again = await c.startAggregator();
      const codes = await Promise.race([
        Promise.all(nodes.map((n) => n.daemon.exited)),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`members did not finish: ${again.events.map((e) => `${e.event} ${e.msg}`).join(' / ')}`)), 150_000)),
      ]);
      expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
      // Before: "round 1 failed: the aggregator restarted during this secure-aggregation round", then rounds 2 and 3.
      expect(again.events.filter((e) => e.event === 'round-failed'), JSON.stringify(again.events.filter((e) => e.event === 'round-failed'))).toEqual([]);
      expect(again.events.find((e) => e.event === 'secagg-resume')).toMatchObject({ round: 1 });
      expect(again.events.filter((e) => e.event === 'round-aggregated').map((e) => e.round)).toEqual([1, 2]);
      const results = await Promise.all([0, 1].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
      expect(results.map((r) => r.version)).toEqual([2, 2]);
      expect(results[0].hash).toBe(results[1].hash);
      await stopDaemon(again.daemon, 10_000);
      const v = await runCli(['ledger', 'verify', '--dir', join(c.dir, 'agg-data', 'ledger'), '--json']);
      expect(v.code, v.stderr).toBe(0);
      const out = JSON.parse(v.stdout) as { secagg: Array<{ round: number; survivors: number; dropped: number }> };
      expect(out.secagg.map((x) => [x.round, x.survivors, x.dropped])).toEqual([[1, 2, 0], [2, 2, 0]]);
    }, 240_000);
  }
});
