// Issue 15 items 1 and 6 on a real federation (an aggregator and two nodes as processes, BFV, record-level DP):
// `fedtwin status` while it runs (what the daemons publish: Level lets one process open their state) and once it
// is over (their dataDirs), and `aggregator start --exit-when-finished` leaving by itself, with code 0, only after
// the members have what they need from it (they exit 0 too: none was stranded retrying), or after --finish-grace
// for a member that never comes.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, stopDaemon, waitFor, type Daemon, type LogEvent } from '@fedtwin/sim';
import { createConsortium, runCli, type Consortium } from '../../../test/helpers/consortium.ts';
import type { AggregatorStatus } from '../src/status/aggregator-status.ts';
import type { NodeStatus } from '../src/status/node-status.ts';

const status = async <S>(config: string): Promise<S> => {
  const r = await runCli(['status', '--config', config, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as S;
};

async function startAggregator(c: Consortium, args: string[], events: LogEvent[]): Promise<{ daemon: Daemon; address: string }> {
  const daemon = startDaemon('aggregator', ['aggregator', 'start', '--config', c.aggConfig, ...args], (e) => events.push(e));
  const l = await waitFor('aggregator listening', async () => {
    if (daemon.child.exitCode !== null) throw new Error(`aggregator exited: ${daemon.stderrTail()}`);
    return readFile(join(c.dir, 'agg-data', 'listening.json'), 'utf8').then((t) => JSON.parse(t) as { addrs: string[] }, () => undefined);
  }, 60_000);
  return { daemon, address: l.addrs[0]! };
}

/** Until a daemon's status.json (published at most every 0.5 s after a change) shows what the test waits for. */
const published = <S>(dataDir: string, ok: (s: S) => boolean) => waitFor(`${dataDir}/status.json`, async () => {
  const p = await readFile(join(c.dir, dataDir, 'status.json'), 'utf8').then((t) => JSON.parse(t) as { status: S }, () => undefined);
  return p && ok(p.status) ? true : undefined;
}, 60_000, 100);

const exitOf = async (d: Daemon, withinMs: number) => {
  const t = Date.now();
  const code = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), withinMs))]);
  return { code, ms: Date.now() - t };
};

// Three members in the manifest, two sites running: the third never shows up. Rounds aggregate at quorum 2; at
// the end the aggregator waits --finish-grace for the absent one, which keeps it (and its live status) up.
const ABSENT = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const GRACE_S = 12;
let c: Consortium;
let agg: Daemon;
const aggEvents: LogEvent[] = [];
let aggExit: { code: number | null; ms: number };
let liveBefore: { agg: AggregatorStatus; node: NodeStatus };
let liveFinished: AggregatorStatus;
const nodes: Array<{ daemon: Daemon; events: LogEvent[] }> = [];

beforeAll(async () => {
  c = await createConsortium({
    nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 120, extraMembers: [ABSENT],
    privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
  });
  const a = await startAggregator(c, ['--exit-when-finished', '--finish-grace', String(GRACE_S)], aggEvents);
  agg = a.daemon;
  for (let i = 0; i < 2; i++) await c.writeNodeConfig(i, { aggregator: { peerId: c.aggregatorId, address: a.address } });
  // Node 0 alone: no round opens before a quorum of 2 joined, so it waits, up, with its status published.
  nodes.push(c.startNode(0));
  // Node 0 is the key holder: joined, key published, budget opened — then it waits for a second member.
  await waitFor('node 0 to open its budget', async () => nodes[0]!.events.find((e) => e.event === 'privacy'), 120_000, 200);
  await published<AggregatorStatus>('agg-data', (st) => st.members[0]!.joined === true && st.he.keyId !== null);
  await published<NodeStatus>('node0-data', (st) => st.privacy.length > 0);
  liveBefore = { agg: await status<AggregatorStatus>(c.aggConfig), node: await status<NodeStatus>(c.nodeConfig(0)) };
  nodes.push(c.startNode(1));
  await waitFor('the federation to finish', async () => {
    if (agg.child.exitCode !== null) throw new Error(`aggregator exited: ${agg.stderrTail()}`);
    return aggEvents.find((e) => e.event === 'finished');
  }, 300_000, 200);
  await published<AggregatorStatus>('agg-data', (st) => st.status === 'finished');
  liveFinished = await status<AggregatorStatus>(c.aggConfig);
  const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
  expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
  aggExit = await exitOf(agg, (GRACE_S + 30) * 1000); // nobody signals it: it leaves by itself
}, 480_000);
afterAll(async () => {
  if (agg) await stopDaemon(agg, 2000);
  await c?.cleanup();
});

describe('aggregator start --exit-when-finished', () => {
  it('a member never fetches the final aggregate (it never ran): exit 0 once --finish-grace passed, naming it', () => {
    expect(aggExit.code, agg.stderrTail()).toBe(0);
    const exit = aggEvents.find((e) => e.event === 'exit-when-finished');
    expect(exit).toMatchObject({ reason: 'grace', version: 2, waitingFor: [ABSENT] });
    // The members that ran finished normally (version 2 applied) and were not stranded: both exited 0.
    for (const n of nodes) expect(n.events.find((e) => e.event === 'federation-finished')).toMatchObject({ version: 2 });
    // It stopped the way SIGTERM stops it ("stopping", result.json written), no earlier than the grace allowed.
    expect(aggEvents.filter((e) => e.event === 'stopping').map((e) => e.signal)).toEqual(['finished']);
    expect(existsSync(join(c.dir, 'agg-data', 'result.json'))).toBe(true);
    const t = (e: LogEvent | undefined) => Date.parse(String(e?.time));
    expect(t(aggEvents.find((e) => e.event === 'exit-when-finished')) - t(aggEvents.find((e) => e.event === 'finished'))).toBeGreaterThanOrEqual(GRACE_S * 1000 - 50);
  });

  it('every member fetched the final aggregate and saw its quorum: exit 0 within seconds of them, not after the grace', async () => {
    const one = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
    const events: LogEvent[] = [];
    let d: Daemon | undefined;
    try {
      const a = await startAggregator(one, ['--exit-when-finished', '--finish-grace', '300'], events);
      d = a.daemon;
      await one.writeNodeConfig(0, { aggregator: { peerId: one.aggregatorId, address: a.address } });
      const n = one.startNode(0);
      expect(await n.daemon.exited, n.daemon.stderrTail()).toBe(0);
      const e = await exitOf(d, 30_000);
      expect(e.code, d.stderrTail()).toBe(0);
      expect(events.find((x) => x.event === 'exit-when-finished')).toMatchObject({ reason: 'all-fetched', version: 1, waitingFor: [] });
    } finally {
      if (d) await stopDaemon(d, 2000);
      await one.cleanup();
    }
  }, 180_000);
});

describe('fedtwin status while the federation runs (what the daemons publish)', () => {
  it('before the first round: members joined or not, the node\'s budget untouched', () => {
    expect(liveBefore.agg).toMatchObject({ role: 'aggregator', source: 'live', consortium: 'test', peerId: c.aggregatorId, status: 'waiting', version: 0, totalRounds: 2, rounds: [] });
    expect(liveBefore.agg.members.map((m) => [m.peerId, m.joined])).toEqual([[c.nodeIds[0], true], [c.nodeIds[1], false], [ABSENT, false]]);
    expect(liveBefore.node).toMatchObject({ role: 'node', source: 'live', peerId: c.nodeIds[0], version: 0, contributions: 0, finished: false });
    expect(liveBefore.node.privacy).toEqual([{ mode: 'record', spent: 0, budget: 8, delta: 1e-5 }]);
  });

  it('once finished, still up for the absent member: rounds, contributions and ε per member, the key, the ledger', () => {
    expect(liveFinished).toMatchObject({ source: 'live', status: 'finished', version: 2 });
    expect(liveFinished.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([[1, 'aggregated', 2], [2, 'aggregated', 2]]);
    expect(liveFinished.members.map((m) => [m.joined, m.contributions])).toEqual([[true, 2], [true, 2], [false, 0]]);
    for (const m of liveFinished.members.slice(0, 2)) {
      expect(m.lastSeenAt).toBeGreaterThan(0);
      expect(m.epsilon).toMatchObject({ mode: 'record', budget: 8 });
    }
    expect(liveFinished.he).toMatchObject({ scheme: 'bfv', epoch: 0 });
    expect(liveFinished.he.keyId).toMatch(/^[0-9a-f]{16,}/);
    expect(liveFinished.ledger!.size).toBeGreaterThan(0);
  });

  it('a node\'s published status, kept from its own events, ends where its dataDir does', async () => {
    const published = JSON.parse(await readFile(join(c.dir, 'node0-data', 'status.json'), 'utf8')) as { pid: number; status: NodeStatus };
    const fromDisk = await status<NodeStatus>(c.nodeConfig(0)); // the node exited: read from its dataDir
    expect(fromDisk.source).toBe('dataDir');
    const { source: _a, updatedAt: _b, finished, ...live } = published.status;
    const { source: _c, updatedAt: _d, finished: _e, ...disk } = fromDisk;
    expect(finished).toBe(true);
    expect(live.privacy[0]!.spent).toBeCloseTo(disk.privacy[0]!.spent, 9);
    // The replica's size and root agree; its cosignature count means what the aggregator counted (live) vs the
    // stored note's lines (dataDir): see NodeStatus.replica. Either is 1 or 2 with two members, by arrival order.
    expect([1, 2]).toContain(live.replica!.checkpoint!.cosignatures); // 1 if it co-signed first, 2 if second
    expect([1, 2]).toContain(disk.replica!.checkpoint!.cosignatures);
    const same = (x: typeof live) => ({ ...x, privacy: [], replica: { ...x.replica!, checkpoint: { ...x.replica!.checkpoint!, cosignatures: 0 } } });
    expect(same(live)).toEqual(same(disk));
  });
});

describe('fedtwin status of the finished federation (from the dataDirs)', () => {
  it('aggregator --json: every round with its participants and timing, each member\'s contributions and ε, key, ledger root and cosignatures', async () => {
    const s = await status<AggregatorStatus>(c.aggConfig);
    expect(s).toMatchObject({ role: 'aggregator', source: 'dataDir', status: 'finished', version: 2, totalRounds: 2 });
    expect(s.members.at(-1)).toMatchObject({ peerId: ABSENT, contributions: 0, epsilon: null, lastSeenAt: null });
    expect(s.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([[1, 'aggregated', 2], [2, 'aggregated', 2]]);
    for (const r of s.rounds) expect(r.seconds).toBeGreaterThan(0);
    expect(s.members.map((m) => m.peerId)).toEqual([...c.nodeIds, ABSENT]);
    for (const m of s.members.slice(0, 2)) {
      expect(m).toMatchObject({ contributions: 2, refusals: 0, joined: null, excluded: false, exhausted: false });
      expect(m.epsilon).toMatchObject({ mode: 'record', budget: 8 });
      expect(m.epsilon!.spent).toBeGreaterThan(0);
      expect(m.epsilon!.spent).toBeLessThanOrEqual(8);
    }
    expect(s.he).toMatchObject({ scheme: 'bfv', epoch: 0, keyId: liveFinished.he.keyId });
    // What `fedtwin ledger verify` says of the same directory.
    const v = await runCli(['ledger', 'verify', '--dir', join(c.dir, 'agg-data', 'ledger'), '--json']);
    const verified = JSON.parse(v.stdout) as { entries: number; rootHash: string; latestCheckpoint: { size: number } };
    expect(s.ledger).toMatchObject({ size: verified.entries, rootHash: verified.rootHash, checkpoint: { size: verified.latestCheckpoint.size } });
    expect(s.ledger!.checkpoint!.cosignatures).toBe(2); // both running members co-signed the final checkpoint
  });

  it('aggregator, human output: the same, ε to 3 significant digits', async () => {
    const r = await runCli(['status', '--config', c.aggConfig]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^aggregator \S+ — consortium test, from the dataDir \(the daemon is not running\)\n/);
    expect(r.stdout).toMatch(/federation\s+finished, version 2 of 2 rounds/);
    expect(r.stdout).toMatch(/HE key\s+[0-9a-f]{16}…, epoch 0/);
    expect(r.stdout).toMatch(/checkpoint\s+size \d+, 2 member cosignature\(s\)/);
    expect(r.stdout).toMatch(/round {3}2 {2}aggregated {2}2 contribution\(s\)/);
    const eps = [...r.stdout.matchAll(/ε (\S+) of 8 \(record\)/g)].map((m) => m[1]!);
    expect(eps).toHaveLength(2);
    for (const e of eps) expect(e.replace(/^0\.0*|\./g, '').length).toBeLessThanOrEqual(3);
  });

  it('node: version, contributions, ε spent of its budget, its replica (the aggregator\'s root at the same size)', async () => {
    const s = await status<NodeStatus>(c.nodeConfig(1));
    const a = await status<AggregatorStatus>(c.aggConfig);
    expect(s).toMatchObject({ role: 'node', source: 'dataDir', peerId: c.nodeIds[1], version: 2, contributions: 2, contributedRounds: [1, 2], refused: null });
    expect(s.privacy).toHaveLength(1);
    expect(s.privacy[0]).toMatchObject({ mode: 'record', budget: 8, delta: 1e-5 });
    expect(s.privacy[0]!.spent).toBeCloseTo(a.members[1]!.epsilon!.spent, 9); // what it signed is what it spent
    expect(s.replica!.size).toBe(a.ledger!.checkpoint!.size);
    if (s.replica!.size === a.ledger!.size) expect(s.replica!.rootHash).toBe(a.ledger!.rootHash);
    const text = await runCli(['status', '--config', c.nodeConfig(1)]);
    expect(text.stdout).toMatch(/contributions 2 \(rounds 1, 2\)/);
    expect(text.stdout).toMatch(/privacy\s+record-level: ε \S+ spent of 8 \(δ 0\.00001\)/);
  });
});
