// A malicious aggregator showing two members different histories (a split view): the aggregator's key signs
// two logs, one per member (two real aggregator processes holding the same key, the way an operator would
// fork its own service). Members gossip their co-signed checkpoints directly (witnesses:), so each finds
// that the other holds another tree: LEDGER_INCONSISTENT, evidence kept, nothing applied. Without gossip the
// witness quorum (a majority = both members) alone keeps either from applying its view.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, waitFor, type Daemon, type LogEvent } from '@fedtwin/sim';
import { createConsortium, freePort, type Consortium } from '../helpers/consortium.ts';

async function startSecondAggregator(c: Consortium, daemons: Daemon[]): Promise<string> {
  const config = join(c.dir, 'aggregator-b.json');
  const base = JSON.parse(await readFile(c.aggConfig, 'utf8')) as Record<string, unknown>;
  await writeFile(config, JSON.stringify({ ...base, dataDir: 'agg-b-data', listen: ['/ip4/127.0.0.1/tcp/0'] }));
  await mkdir(join(c.dir, 'agg-b-data'), { recursive: true });
  await rm(join(c.dir, 'agg-b-data', 'listening.json'), { force: true });
  const events: LogEvent[] = [];
  const daemon = startDaemon('aggregator-b', ['aggregator', 'start', '--config', config], (e) => events.push(e));
  daemons.push(daemon);
  const l = await waitFor('second aggregator listening', async () => {
    if (daemon.child.exitCode !== null) throw new Error(`aggregator-b exited: ${daemon.stderrTail()}`);
    return readFile(join(c.dir, 'agg-b-data', 'listening.json'), 'utf8').then((t) => { try { return JSON.parse(t) as { addrs: string[] }; } catch { return undefined; } }, () => undefined);
  }, 60_000);
  return l.addrs[0]!;
}

describe('a malicious aggregator showing two members different checkpoints', () => {
  let c: Consortium | undefined;
  const daemons: Daemon[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0)) d.child.kill('SIGKILL');
    await c?.cleanup(); c = undefined;
  });

  it('members gossiping their checkpoints both detect the split view (LEDGER_INCONSISTENT), keep both checkpoints and apply nothing', { timeout: 200_000 }, async () => {
    // Each view closes rounds with its one member (quorum 1); plaintext so no key ceremony spans the views.
    c = await createConsortium({
      nodes: 2, rounds: 3, quorum: 1, minParticipants: 1, deadlineSeconds: 60,
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }, manifest: { secureAggregation: { scheme: 'plaintext' } },
    });
    const a = await c.startAggregator();
    const bAddress = await startSecondAggregator(c, daemons);
    const ports = [await freePort(), await freePort()];
    const addr = (i: number) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${c!.nodeIds[i]}`;
    await c.writeNodeConfig(0, { aggregator: { address: a.address }, listen: [`/ip4/127.0.0.1/tcp/${ports[0]}`], witnesses: [addr(1)] });
    await c.writeNodeConfig(1, { aggregator: { address: bAddress }, listen: [`/ip4/127.0.0.1/tcp/${ports[1]}`], witnesses: [addr(0)] });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    const codes = await Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`members did not stop: ${nodes.map((n) => n.events.map((e) => `${String(e.time).slice(11, 23)} ${e.event} ${e.msg}`).join(' / ')).join(' | ')}`)), 150_000)),
    ]);
    for (const [i, n] of nodes.entries()) {
      const stderr = n.daemon.stderrTail();
      expect(codes[i], stderr).toBe(1);
      expect(stderr).toMatch(/LEDGER_INCONSISTENT/);
      expect(stderr).toMatch(/another log|split view/);
      expect(n.events.some((e) => e.event === 'global-updated'), 'no aggregate of either view is applied').toBe(false);
    }
    // The member that found it first keeps both signed checkpoints (its own view and the other member's).
    const kept = await Promise.all([0, 1].map((i) => readdir(join(c!.dir, `node${i}-data`, 'evidence')).catch(() => [] as string[])));
    expect(kept.some((files) => files.some((f) => f.endsWith('fork-served.note')) && files.some((f) => f.endsWith('fork-cosigned.note'))), JSON.stringify(kept)).toBe(true);
    // The intermittent stall of earlier runs (about 1 in 6): one member found the split on its first sync (from
    // the other's note, still pending in its empty replica) and stopped (its last event: ledger-replica; its error
    // on stderr), while the other had never seen its view and waited for a witness quorum, gossiping "0 of 1" to a
    // member that was gone. The finder now shows its view to its peers before it stops (packages/node/test/gossip.test.ts).
  });

  it('an honest aggregator: members gossiping the same log agree every round and finish (no false alarm)', async () => {
    c = await createConsortium({ nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
    const a = await c.startAggregator();
    const ports = [await freePort(), await freePort()];
    const addr = (i: number) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${c!.nodeIds[i]}`;
    for (const i of [0, 1]) await c.writeNodeConfig(i, { aggregator: { address: a.address }, listen: [`/ip4/127.0.0.1/tcp/${ports[i]}`], witnesses: [addr(1 - i)] });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    const codes = await Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('members did not finish')), 150_000)),
    ]);
    for (const [i, n] of nodes.entries()) {
      expect(codes[i], n.daemon.stderrTail()).toBe(0);
      expect(n.events.filter((e) => e.event === 'gossip' && Number(e.consistent) === 1).length).toBeGreaterThanOrEqual(1);
      expect(n.events.filter((e) => e.event === 'witness-quorum').length).toBe(2); // one per applied aggregate
    }
  }, 180_000);

  it('without gossip, the witness quorum keeps each member from applying its view (it waits, it never applies)', async () => {
    c = await createConsortium({
      nodes: 2, rounds: 2, quorum: 1, minParticipants: 1, deadlineSeconds: 60,
      privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 }, manifest: { secureAggregation: { scheme: 'plaintext' } },
    });
    const a = await c.startAggregator();
    const bAddress = await startSecondAggregator(c, daemons);
    await c.writeNodeConfig(0, { aggregator: { address: a.address } });
    await c.writeNodeConfig(1, { aggregator: { address: bAddress } });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    // Each view publishes round 1's aggregate with its one member's contribution and cosignature: 1 of 2.
    await waitFor('both members to contribute to round 1 of their view', async () => (nodes.every((n) => n.events.some((e) => e.event === 'contributed')) ? true : undefined), 120_000);
    await new Promise((r) => setTimeout(r, 8_000));
    for (const n of nodes) {
      expect(n.daemon.child.exitCode, n.daemon.stderrTail()).toBe(null);
      expect(n.events.some((e) => e.event === 'global-updated')).toBe(false);
      expect(n.events.some((e) => e.event === 'witness-quorum')).toBe(false);
    }
  }, 180_000);
});
