import { afterEach, describe, expect, it } from 'vitest';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@fedtwin/sim';
import { createConsortium, freePort, runCli, type Consortium } from './helpers/consortium.ts';

// An operator who rewrites the audit log is caught by the members acting as witnesses: a member that
// co-signed a checkpoint refuses a history that does not extend it, stops, and keeps its evidence.
describe('ledger witnesses (real processes)', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('a member shown a rewritten history refuses it, stops with LEDGER_INCONSISTENT, and its replica still verifies', async () => {
    const port = await freePort();
    // A fixed port, so the members find the restarted aggregator where they left it.
    c = await createConsortium({ nodes: 2, rounds: 6, quorum: 2, minParticipants: 2, deadlineSeconds: 60, listen: `/ip4/127.0.0.1/tcp/${port}` });
    const agg = await c.startAggregator();
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1].map((i) => c!.startNode(i));
    // Both members have verified and co-signed a checkpoint that includes round 1's aggregate.
    await waitFor('both members to co-sign after round 1', async () =>
      nodes.every((n) => n.events.some((e) => e.event === 'ledger-cosigned' && Number(e.size) >= 7)) ? true : undefined, 120_000);
    const seenBeforeKill = nodes.map((n) => n.events.length);
    agg.daemon.child.kill('SIGKILL');
    await agg.daemon.exited;
    // The operator throws the log away and starts a new one: same consortium, different history.
    await rename(join(c.dir, 'agg-data', 'ledger'), join(c.dir, 'agg-data', 'ledger-old'));
    await c.startAggregator();
    const codes = await Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`members did not stop: ${nodes.map((n) => JSON.stringify(n.events.slice(-4).map((e) => e.msg))).join(' | ')} ${nodes.map((n) => n.daemon.stderrTail()).join(' | ')}`)), 90_000)),
    ]);
    expect(codes).toEqual([1, 1]);
    // A member that reconnects re-verifies the log before anything else: it hands the rewritten log's
    // aggregator no update (it used to, then waited for that round's deadline to find the fork).
    nodes.forEach((n, i) => expect(n.events.slice(seenBeforeKill[i]).filter((e) => e.event === 'contributed').map((e) => e.msg)).toEqual([]));
    for (const n of nodes) expect(n.daemon.stderrTail()).toMatch(/LEDGER_INCONSISTENT/);
    // A shorter log is a rollback; a log as long or longer whose root differs is a fork: both are refused.
    expect(nodes[0]!.daemon.stderrTail()).toMatch(/rolled back or rewritten|is smaller than the \d+ entries this replica already accepted|does not match the root/);
    // Each member's replica is intact evidence: it verifies offline.
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['ledger', 'verify', '--dir', join(c.dir, `node${i}-data`, 'ledger')]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 240_000);
});
