import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import { AggregateResponse, JoinResponse, ProbeResponse, TaskResponse, UpdateAck, VerdictAck, type UpdateHeader } from '@fedtwin/protocol';
import { createEntry, createEntrySigner, sha256Hex, verifyLedgerDir, type EntrySigner } from '@fedtwin/ledger';
import type { PrivateKey } from '@libp2p/interface';
import { createConsortium, freePort, nodesExited, type Consortium } from './helpers/consortium.ts';

// These tests are about BFV's investigation (bisection over subset sums): they pin the scheme, whatever the
// default. Under secagg the same attack is test/secagg-bad-contribution.test.ts.
const BFV = { secureAggregation: { scheme: 'bfv' } };

/**
 * A member that sends a well-formed BFV ciphertext under a key of its own (garbage once decrypted with the
 * consortium's key) with a correctly signed ledger entry, and lies on every probe. Before the fix every
 * honest member exited for good on decryption; now the round costs one investigation, the culprit is
 * excluded and the federation finishes with every honest member on the same model.
 */
async function runGarbageMember(key: PrivateKey, aggAddr: string, signal: AbortSignal): Promise<{ sent: number; probesAnswered: number; endedWith?: string }> {
  const he = await import('@fedtwin/he');
  const me = peerIdOf(key);
  const host: WireHost = await createWireHost({ privateKey: key, listen: [], allow: [aggAddr.slice(aggAddr.lastIndexOf('/p2p/') + 5)] });
  const call = <R>(name: string, header: unknown, response: import('zod').ZodType<R>, body?: Uint8Array, maxBodyBytes = 0) =>
    host.request(aggAddr, name, { header, body }, { response, maxBodyBytes, timeoutMs: 60_000 });
  const out = { sent: 0, probesAnswered: 0 } as { sent: number; probesAnswered: number; endedWith?: string };
  try {
    const { header: join } = await call('join', { nodeVersion: process.version, backend: 'none' }, JoinResponse);
    const signer = createEntrySigner(key, `fedtwin/${join.consortium}`); // the log origin entries are bound to
    if (join.secureAggregation.scheme !== 'bfv') throw new Error('expected BFV');
    const ctx = await he.createHeContext(join.secureAggregation.params);
    const ownKey = he.generateKeys(ctx); // not the consortium's: its ciphertext decrypts to noise
    let afterRound = 0;
    for (let i = 0; i < 400 && !signal.aborted; i++) {
      // An aggregator restarting under it: wait and ask again (bounded by the loop).
      const polled = await call('task', { afterRound, waitMs: 2000 }, TaskResponse).catch(async (err: { code?: string }) => {
        if (!err.code?.startsWith('WIRE_')) throw err;
        await new Promise((r) => setTimeout(r, 300));
        return undefined;
      });
      if (!polled) continue;
      const task = polled.header;
      if (task.status === 'finished') break;
      if (task.status === 'probe') {
        // Lie: every probe "decrypts fine".
        const p = await call('probe', { id: task.id }, ProbeResponse, undefined, 64 * 1024 * 1024).catch(() => undefined);
        if (!p?.body) continue;
        const sumHash = sha256Hex(p.body);
        const e = await createEntry({ type: 'verdict', round: p.header.round, node: me, sumHash, participants: p.header.participants.length, probe: p.header.id, valid: true }, signer);
        await call('verdict', { round: p.header.round, probe: p.header.id, sumHash, valid: true, reason: '', entry: Buffer.from(e.bytes).toString('base64') }, VerdictAck).catch(() => undefined);
        out.probesAnswered++;
        continue;
      }
      if (task.status !== 'open') continue;
      afterRound = task.round;
      const tag = he.roundTag({ keyId: task.keyId!, round: task.round, baseHash: task.baseHash });
      const body = he.encryptVector(ctx, ownKey, new Float32Array(join.modelValues).fill(0.5), { member: me, tag }).update;
      const entry = await createEntry({
        type: 'contribution', round: task.round, node: me, ciphertextHash: sha256Hex(body), ciphertextSize: body.length,
        sampleCount: 100, epsilon: 0.1, delta: 1e-5, epsilonTotal: 0.1, deltaTotal: 1e-5, keyId: task.keyId!, globalVersion: task.baseHash,
      }, signer);
      const header: UpdateHeader = {
        round: task.round, baseVersion: task.baseVersion, baseHash: task.baseHash, weight: 100, values: join.modelValues, encoding: 'bfv',
        keyId: task.keyId!, loss: 0, trainSeconds: 1, privacy: [], entry: Buffer.from(entry.bytes).toString('base64'),
      };
      await call('update', header, UpdateAck, body);
      out.sent++;
    }
  } catch (err) {
    out.endedWith = (err as { code?: string }).code ?? String(err);
  } finally {
    await host.stop();
  }
  return out;
}

/** A member that never contributes but reports every aggregate unusable and calls every probe invalid. */
async function runFalseReporter(key: PrivateKey, aggAddr: string, signal: AbortSignal): Promise<{ reports: number; endedWith?: string }> {
  const me = peerIdOf(key);
  const host: WireHost = await createWireHost({ privateKey: key, listen: [], allow: [aggAddr.slice(aggAddr.lastIndexOf('/p2p/') + 5)] });
  const call = <R>(name: string, header: unknown, response: import('zod').ZodType<R>, maxBodyBytes = 0) =>
    host.request(aggAddr, name, { header }, { response, maxBodyBytes, timeoutMs: 60_000 });
  const out = { reports: 0 } as { reports: number; endedWith?: string };
  let signer: EntrySigner | undefined; // bound to the log origin once the join response names the consortium
  const verdict = async (round: number, what: { version: number } | { probe: string }, body: Uint8Array, participants: number) => {
    const sumHash = sha256Hex(body);
    const e = await createEntry({ type: 'verdict', round, node: me, sumHash, participants, valid: false, reason: 'cannot decrypt (a lie)', ...what }, signer!);
    await call('verdict', { round, ...what, sumHash, valid: false, reason: 'cannot decrypt (a lie)', entry: Buffer.from(e.bytes).toString('base64') }, VerdictAck);
    out.reports++;
  };
  try {
    const { header: join } = await call('join', { nodeVersion: process.version, backend: 'none' }, JoinResponse);
    signer = createEntrySigner(key, `fedtwin/${join.consortium}`);
    let reported = 0;
    for (let i = 0; i < 400 && !signal.aborted; i++) {
      const { header: task } = await call('task', { afterRound: 1_000_000, waitMs: 1000 }, TaskResponse);
      if (task.status === 'finished') break;
      if (task.status === 'probe') {
        const p = await call('probe', { id: task.id }, ProbeResponse, 64 * 1024 * 1024).catch(() => undefined);
        if (p?.body) await verdict(p.header.round, { probe: p.header.id }, p.body, p.header.participants.length).catch(() => undefined);
        continue;
      }
      const latest = task.status === 'open' ? task.baseVersion : task.version;
      if (latest > reported) {
        const a = await call('aggregate', { version: latest }, AggregateResponse, 64 * 1024 * 1024);
        reported = latest;
        await verdict(a.header.round, { version: latest }, a.body!, a.header.participants.length).catch(() => undefined);
      }
    }
  } catch (err) {
    out.endedWith = (err as { code?: string }).code ?? String(err);
  } finally {
    await host.stop();
  }
  return out;
}

describe('a false report', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('is outvoted: the aggregate stands, the reporter is excluded and the federation finishes', async () => {
    const liar = await generateIdentity();
    const liarId = peerIdOf(liar);
    c = await createConsortium({ nodes: 3, rounds: 2, quorum: 3, minParticipants: 2, deadlineSeconds: 60, extraMembers: [liarId], manifest: BFV });
    const agg = await c.startAggregator();
    for (let i = 0; i < 3; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2].map((i) => c!.startNode(i));
    const stop = new AbortController();
    const lying = runFalseReporter(liar, agg.address, stop.signal);
    const codes = await nodesExited(agg, nodes, 150_000).finally(() => stop.abort());
    const l = await lying;
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0, 0]);
    expect(l.reports).toBeGreaterThanOrEqual(1);
    expect(l.endedWith).toBe('AGG_EXCLUDED');
    expect(agg.events.filter((e) => e.event === 'member-excluded').map((e) => e.peer)).toEqual([liarId]);
    expect(agg.events.filter((e) => e.event === 'aggregate-replaced' || e.event === 'aggregate-withdrawn')).toHaveLength(0);
    const results = await Promise.all([0, 1, 2].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2, 2]);
    expect(new Set(results.map((r) => r.hash)).size).toBe(1);
  }, 240_000);
});

describe('a garbage contribution', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('costs one investigation: the culprit is found by bisection, excluded, and every honest member ends on the same model', async () => {
    const attacker = await generateIdentity();
    const attackerId = peerIdOf(attacker);
    c = await createConsortium({ nodes: 3, rounds: 2, quorum: 4, minParticipants: 2, deadlineSeconds: 60, extraMembers: [attackerId], manifest: BFV });
    const agg = await c.startAggregator();
    for (let i = 0; i < 3; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2].map((i) => c!.startNode(i));
    const stop = new AbortController();
    const garbage = runGarbageMember(attacker, agg.address, stop.signal);
    const codes = await nodesExited(agg, nodes, 150_000).finally(() => stop.abort());
    const g = await garbage;
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0, 0]);
    expect(g.sent).toBeGreaterThanOrEqual(1); // round 1, and the round opened on its aggregate before anyone reported
    expect(g.endedWith).toBe('AGG_EXCLUDED');
    const excluded = agg.events.filter((e) => e.event === 'member-excluded');
    expect(excluded.map((e) => e.peer)).toEqual([attackerId]);
    expect(agg.events.filter((e) => e.event === 'aggregate-replaced')).toHaveLength(1);
    const results = await Promise.all([0, 1, 2].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2, 2]);
    expect(new Set(results.map((r) => r.hash)).size).toBe(1);
    // Every honest member reported once and judged the probes; the ledger says who was excluded and why.
    for (const n of nodes) expect(n.events.filter((e) => e.event === 'verdict-sent' && e.valid === false).length).toBeGreaterThanOrEqual(1);
    agg.daemon.child.kill('SIGTERM');
    await agg.daemon.exited;
    const v = await verifyLedgerDir(join(c.dir, 'agg-data', 'ledger'));
    expect(v.ok, JSON.stringify(v)).toBe(true);
    expect(v.summary.excluded).toEqual([attackerId]);
    expect(v.summary.entriesByType.exclusion).toBe(2); // exclude the culprit, withdraw the broken aggregate
    for (const id of c.nodeIds) expect(v.summary.contributionsPerNode[id]).toBe(2);
  }, 240_000);
});

describe('a crash during an investigation', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  for (const point of ['after-exclusion-ledger', 'after-withdraw-ledger']) {
    it(`kill -9 ${point}: the restarted aggregator finishes the investigation, with no duplicate entry`, async () => {
      const attacker = await generateIdentity();
      const attackerId = peerIdOf(attacker);
      const port = await freePort();
      c = await createConsortium({ nodes: 3, rounds: 2, quorum: 4, minParticipants: 2, deadlineSeconds: 60, extraMembers: [attackerId], manifest: BFV, listen: `/ip4/127.0.0.1/tcp/${port}` });
      const first = await c.startAggregator({ crashAt: point });
      for (let i = 0; i < 3; i++) await c.writeNodeConfig(i);
      const nodes = [0, 1, 2].map((i) => c!.startNode(i));
      const stop = new AbortController();
      const garbage = runGarbageMember(attacker, first.address, stop.signal);
      const code = await Promise.race([first.daemon.exited, new Promise((r) => setTimeout(() => r('alive'), 90_000))]);
      expect(code, 'the aggregator killed itself at the crash point').toBe(128);
      const again = await c.startAggregator();
      const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
      stop.abort();
      await garbage;
      expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0, 0]);
      const results = await Promise.all([0, 1, 2].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
      expect(results.map((r) => r.version)).toEqual([2, 2, 2]);
      expect(new Set(results.map((r) => r.hash)).size).toBe(1);
      again.daemon.child.kill('SIGTERM');
      await again.daemon.exited;
      const v = await verifyLedgerDir(join(c.dir, 'agg-data', 'ledger'));
      expect(v.ok, JSON.stringify(v)).toBe(true);
      expect(v.summary.excluded).toEqual([attackerId]);
      expect(v.summary.entriesByType.exclusion).toBe(2); // one exclude, one withdraw: the repeated investigation added none
    }, 240_000);
  }
});
