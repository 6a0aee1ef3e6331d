import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, peerIdOf, saveIdentity } from '@fedtwin/wire';
import { CLI_BIN, waitFor } from '@fedtwin/sim';
import { createConsortium, freePort, runCli, type Consortium } from './helpers/consortium.ts';

// Faults a real deployment meets, each against real daemon processes on 127.0.0.1.
describe('faults', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('a node dying mid-federation does not stall it; restarted, it catches up to the same model', async () => {
    c = await createConsortium({ nodes: 3, rounds: 3, quorum: 3, minParticipants: 2, deadlineSeconds: 8 });
    const agg = await c.startAggregator();
    for (let i = 0; i < 3; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2].map((i) => c!.startNode(i));
    // Kill node 2 (SIGKILL: no clean shutdown) as soon as round 1 is aggregated.
    await waitFor('round 1 aggregated', async () => agg.events.find((e) => e.event === 'round-aggregated') ?? undefined, 120_000);
    nodes[2]!.daemon.child.kill('SIGKILL');
    const codes = await Promise.all([nodes[0]!.daemon.exited, nodes[1]!.daemon.exited]);
    expect(codes).toEqual([0, 0]);
    const aggregated = agg.events.filter((e) => e.event === 'round-aggregated');
    expect(aggregated.map((e) => e.version)).toEqual([1, 2, 3]);
    // Rounds after the crash closed at the deadline with the two survivors (round 2 may still have
    // received the dying node's update if it was that quick; round 3 cannot have).
    expect(aggregated.at(-1)).toMatchObject({ participants: 2, trigger: 'deadline' });

    // The dead node restarts on its persisted state and catches up from the published aggregates.
    const again = c.startNode(2);
    expect(await again.daemon.exited).toBe(0);
    const results = await Promise.all([0, 1, 2].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([3, 3, 3]);
    expect(new Set(results.map((r) => r.hash)).size).toBe(1);
    // Killed around round 1's acknowledgement: it may not have seen the ack for its one contribution.
    expect(results[2].contributions).toBeLessThanOrEqual(1);
    expect(results[0].contributions).toBe(3);
  }, 240_000);

  it('the aggregator killed mid-round restarts on its state and the members carry on', async () => {
    const port = await freePort();
    c = await createConsortium({ nodes: 2, rounds: 3, quorum: 2, minParticipants: 2, deadlineSeconds: 60, listen: `/ip4/127.0.0.1/tcp/${port}` });
    const agg = await c.startAggregator();
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1].map((i) => c!.startNode(i));
    await waitFor('round 1 aggregated', async () => agg.events.find((e) => e.event === 'round-aggregated') ?? undefined, 120_000);
    agg.daemon.child.kill('SIGKILL');
    await agg.daemon.exited;
    const again = await c.startAggregator();
    const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
    const resumed = again.events.filter((e) => e.event === 'round-aggregated').map((e) => e.version);
    expect(resumed.at(-1)).toBe(3);
    const results = await Promise.all([0, 1].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([3, 3]);
    expect(results[0].hash).toBe(results[1].hash);
  }, 240_000);

  it('an unknown peer is refused, with a clear error, and the aggregator keeps serving members', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
    const agg = await c.startAggregator();
    const stranger = await generateIdentity();
    await saveIdentity(join(c.dir, 'stranger.key'), stranger);
    await c.writeNodeConfig(0);
    const cfg = JSON.parse(await readFile(c.nodeConfig(0), 'utf8'));
    // With the consortium's manifest, the stranger's own node already says it is not a member (exit 3).
    await writeFile(join(c.dir, 'stranger.json'), JSON.stringify({ ...cfg, identity: 'stranger.key', dataDir: 'stranger-data' }));
    const own = await runCli(['node', 'start', '--config', join(c.dir, 'stranger.json')]);
    expect(own.code, own.stderr).toBe(3);
    expect(own.stderr).toMatch(/CONSORTIUM_MISMATCH.*not in the consortium manifest's members/);
    // With a manifest of its own that lists it, the aggregator's gate refuses it: WIRE_NOT_MEMBER within seconds
    // (a few quick retries first, since an overloaded aggregator drops a fresh connection the same way).
    const forged = { ...c.manifest, members: [...c.manifest.members, { peerId: peerIdOf(stranger) }] };
    await writeFile(join(c.dir, 'stranger-manifest.json'), JSON.stringify(forged));
    await writeFile(join(c.dir, 'stranger2.json'), JSON.stringify({ ...cfg, consortium: 'stranger-manifest.json', identity: 'stranger.key', dataDir: 'stranger2-data' }));
    const t0 = Date.now();
    const r = await runCli(['node', 'start', '--config', join(c.dir, 'stranger2.json')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/WIRE_NOT_MEMBER/);
    expect(r.stderr).toMatch(/allowlist|member/i);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(agg.daemon.child.exitCode).toBeNull();
    expect(agg.events.some((e) => e.event === 'member-joined')).toBe(false);
    // A listed member still gets through afterwards.
    const ok = c.startNode(0);
    expect(await ok.daemon.exited).toBe(0);
    expect(peerIdOf(stranger)).not.toBe(c.nodeIds[0]);
  }, 120_000);

  it('a port in use gives WIRE_ADDRESS_IN_USE and exit 1', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60, listen: `/ip4/127.0.0.1/tcp/${port}` });
      const r = await runCli(['aggregator', 'start', '--config', c.aggConfig]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/WIRE_ADDRESS_IN_USE/);
      expect(r.stderr).toContain(String(port));
    } finally {
      server.close();
    }
  }, 60_000);

  it('a config with a wrong field names the field and exits 2', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
    const cfg = JSON.parse(await readFile(c.aggConfig, 'utf8'));
    // A bad field of the consortium manifest the config names: the manifest's field, exit 2.
    const good = await readFile(c.manifestPath, 'utf8');
    await writeFile(c.manifestPath, JSON.stringify({ ...c.manifest, rounds: { ...c.manifest.rounds, quorum: 'three' } }));
    const r = await runCli(['aggregator', 'start', '--config', c.aggConfig]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONSORTIUM_INVALID/);
    expect(r.stderr).toContain('rounds.quorum');
    await writeFile(c.manifestPath, good);
    await writeFile(c.aggConfig, JSON.stringify({ ...cfg, qourum: 3 }));
    const typo = await runCli(['aggregator', 'start', '--config', c.aggConfig]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/qourum/);
    const missing = await runCli(['node', 'start', '--config', join(c.dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/CONFIG_NOT_FOUND/);
  }, 60_000);

  it('a site CSV with a missing column or a bad value is refused with row/column, and nothing is sent', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
    const agg = await c.startAggregator();
    await c.writeNodeConfig(0);
    const csv = await readFile(join(c.dir, 'node0.csv'), 'utf8');
    const lines = csv.trimEnd().split('\n');
    // Drop the second column everywhere.
    await writeFile(join(c.dir, 'missing.csv'), lines.map((l) => l.split(',').filter((_, j) => j !== 1).join(',')).join('\n'));
    await c.writeNodeConfig(0, { data: { csv: 'missing.csv' } });
    const r1 = await runCli(['node', 'start', '--config', c.nodeConfig(0)]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/DATA_MISSING_COLUMN/);
    expect(r1.stderr).toContain('mean_texture');
    // A non-number in a numeric column.
    const bad = [...lines];
    bad[3] = bad[3]!.replace(/^[^,]+/, 'abc');
    await writeFile(join(c.dir, 'bad.csv'), bad.join('\n'));
    await c.writeNodeConfig(0, { data: { csv: 'bad.csv' } });
    const r2 = await runCli(['node', 'start', '--config', c.nodeConfig(0)]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/DATA_BAD_VALUE/);
    expect(r2.stderr).toMatch(/abc/);
    expect(agg.events.filter((e) => e.event === 'contribution')).toHaveLength(0);
    expect(agg.daemon.child.exitCode).toBeNull();
  }, 120_000);

  it('the CLI entry used by the tests is the real one', () => {
    expect(CLI_BIN).toMatch(/packages\/cli\/src\/bin\.ts$/);
  });
});
