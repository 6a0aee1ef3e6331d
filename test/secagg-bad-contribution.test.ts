import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import {
  JoinResponse, ProbeResponse, Protocols, SecaggAck, SecaggRoundResponse, TaskResponse, UpdateAck, VerdictAck,
  secaggAdFromWire, secaggAdToWire, secaggShareFromWire, secaggShareToWire, type UpdateHeader,
} from '@fedtwin/protocol';
import { createEntry, createEntrySigner, secaggSharesHash, sha256Hex, verifyLedgerDir } from '@fedtwin/ledger';
import type { PrivateKey } from '@libp2p/interface';
import { createConsortium, freePort, nodesExited, runCli, type Consortium } from './helpers/consortium.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/**
 * A secagg member that runs the masking phases correctly (signed keys, shares, contribution entry) but adds 2^30
 * to every masked value after masking (maskInput's range check never sees it), so the unmasked sum lies far
 * outside ±participants·32767; it calls every probe valid and reveals nothing. Before the fix the aggregator
 * withdrew each poisoned sum without a culprit and the same member poisoned the next round: the federation
 * never finished.
 */
async function runMaskedGarbageMember(key: PrivateKey, aggAddr: string, signal: AbortSignal): Promise<{ sent: number; satOut: number[]; endedWith?: string }> {
  const sa = await import('@fedtwin/secagg');
  const me = peerIdOf(key);
  const host: WireHost = await createWireHost({ privateKey: key, listen: [], allow: [aggAddr.slice(aggAddr.lastIndexOf('/p2p/') + 5)] });
  const call = <R>(name: string, header: unknown, response: import('zod').ZodType<R>, body?: Uint8Array, maxBodyBytes = 0) =>
    host.request(aggAddr, name, { header, body }, { response, maxBodyBytes, timeoutMs: 60_000 });
  const out = { sent: 0, satOut: [] as number[] } as { sent: number; satOut: number[]; endedWith?: string };
  try {
    const { header: joined } = await call(Protocols.join, { nodeVersion: process.version, backend: 'none' }, JoinResponse);
    const config = joined.secureAggregation;
    if (config.scheme !== 'secagg') throw new Error('expected secagg');
    const signer = createEntrySigner(key, `fedtwin/${joined.consortium}`);
    const phase = async (round: number, which: 'keys' | 'shares') => {
      for (let i = 0; i < 20; i++) {
        const { header } = await call(Protocols.secaggRound, { round, phase: which, waitMs: 5000 }, SecaggRoundResponse);
        if (header.status !== 'pending') return header;
      }
      return undefined;
    };
    let afterRound = 0;
    for (let i = 0; ; i++) {
      if (signal.aborted || i >= 5000) { out.endedWith = signal.aborted ? 'stopped' : 'loop-bound'; break; }
      try {
        const { header: task } = await call(Protocols.task, { afterRound, waitMs: 2000 }, TaskResponse);
        // "Finished" may be taken back (its last sum withdrawn): keep going until excluded, as a member would.
        if (task.status === 'finished') { await new Promise((r) => setTimeout(r, 500)); continue; }
        if (task.status === 'idle') {
          if (task.sitOut !== undefined && !out.satOut.includes(task.sitOut)) out.satOut.push(task.sitOut);
          continue;
        }
        if (task.status === 'probe') {
          // Lie: every probe "is fine".
          const p = await call(Protocols.probe, { id: task.id }, ProbeResponse, undefined, 64 * 1024 * 1024).catch(() => undefined);
          if (!p?.body) continue;
          const sumHash = sha256Hex(p.body);
          const e = await createEntry({ type: 'verdict', round: p.header.round, node: me, sumHash, participants: p.header.participants.length, probe: p.header.id, valid: true }, signer);
          await call(Protocols.verdict, { round: p.header.round, probe: p.header.id, sumHash, valid: true, reason: '', entry: b64(e.bytes) }, VerdictAck).catch(() => undefined);
          continue;
        }
        afterRound = task.round;
        const cfg = { consortium: joined.consortium, round: task.round, members: config.members, threshold: config.threshold, ...(config.degree !== undefined ? { degree: config.degree } : {}), length: joined.modelValues };
        const { state, ad } = sa.advertise(cfg, signer);
        const w = secaggAdToWire(ad);
        const keysEntry = await createEntry({ type: 'secagg-keys', v: 1, round: task.round, node: me, cPub: w.cPub, sPub: w.sPub, signature: w.signature }, signer);
        await call(Protocols.secaggKeys, { round: task.round, ad: w, entry: b64(keysEntry.bytes) }, SecaggAck);
        const keys = await phase(task.round, 'keys');
        if (keys?.status !== 'keys') continue;
        const { state: shared, bundle } = sa.shareKeys(state, keys.ads.map((a) => secaggAdFromWire(joined.consortium, task.round, a)));
        const shares = bundle.shares.map(secaggShareToWire);
        const sharesEntry = await createEntry({ type: 'secagg-shares', v: 1, round: task.round, node: me, bCommit: hex(bundle.bCommit), sharesHash: secaggSharesHash(shares), recipients: shares.map((x) => x.to) }, signer);
        await call(Protocols.secaggShares, { round: task.round, bCommit: hex(bundle.bCommit), shares, entry: b64(sharesEntry.bytes) }, SecaggAck);
        const inbox = await phase(task.round, 'shares');
        if (inbox?.status !== 'shares') continue;
        const { masked } = sa.maskInput(shared, inbox.shares.map(secaggShareFromWire), new Int32Array(joined.modelValues));
        const body = new Uint8Array(masked.values.length * 4);
        const view = new DataView(body.buffer);
        for (let j = 0; j < masked.values.length; j++) view.setUint32(j * 4, (masked.values[j]! + 2 ** 30) >>> 0, true); // garbage after masking
        const entry = await createEntry({
          type: 'contribution', v: 1, round: task.round, node: me, ciphertextHash: sha256Hex(body), ciphertextSize: body.length,
          epsilon: 0, delta: 0, epsilonTotal: 0, deltaTotal: 0, keyId: 'secagg', globalVersion: task.baseHash,
        }, signer);
        const header: UpdateHeader = {
          round: task.round, baseVersion: task.baseVersion, baseHash: task.baseHash, weight: 100, values: joined.modelValues, encoding: 'secagg',
          loss: 0, trainSeconds: 1, privacy: [], entry: b64(entry.bytes),
        };
        await call(Protocols.update, header, UpdateAck, body);
        out.sent++;
      } catch (err) {
        // An aggregator restarting under it, or a step it refused: wait and poll again (bounded by the loop).
        const code = (err as { code?: string }).code ?? '';
        if (code === 'AGG_EXCLUDED' || !(code.startsWith('WIRE_') || code.startsWith('AGG_'))) throw err;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  } catch (err) {
    out.endedWith = (err as { code?: string }).code ?? String(err);
  } finally {
    await host.stop();
  }
  return out;
}

// Issue 16, blocker (1) of secagg as the default: a garbage masked input. Four honest daemons and the attacker,
// t = 3 of 5. A masked round reveals one sum, so there is no bisection: each unusable sum is withdrawn, and the
// next rounds sit suspects out in turn (sorted peer IDs) until one suspect is left; it is excluded.
describe('secagg: a garbage masked input', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('is discarded without unmasking anyone, its author isolated over fresh rounds and excluded; the federation finishes', async () => {
    const attacker = await generateIdentity();
    const attackerId = peerIdOf(attacker);
    c = await createConsortium({
      nodes: 4, rounds: 2, quorum: 5, minParticipants: 3, deadlineSeconds: 60, extraMembers: [attackerId],
      manifest: { secureAggregation: { scheme: 'secagg', threshold: 3 } },
    });
    const agg = await c.startAggregator();
    for (let i = 0; i < 4; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2, 3].map((i) => c!.startNode(i));
    const stop = new AbortController();
    const garbage = runMaskedGarbageMember(attacker, agg.address, stop.signal);
    const codes = await nodesExited(agg, nodes, 400_000).finally(() => stop.abort());
    const g = await garbage;
    if (process.env.FEDTWIN_SHOW) console.log(agg.events.filter((e) => /round-open|round-aggregated|aggregate-withdrawn|member-excluded|investigation-closed|round-failed/.test(String(e.event))).map((e) => `${e.event} ${e.msg}`).join('\n'));
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0, 0, 0]);
    expect(g.sent).toBeGreaterThanOrEqual(1);
    expect(g.endedWith).toBe('AGG_EXCLUDED');
    expect(agg.events.filter((e) => e.event === 'member-excluded').map((e) => e.peer)).toEqual([attackerId]);
    // Never a bisection: no probe over fewer inputs than a whole round's.
    const probes = agg.events.filter((e) => e.event === 'probe-open');
    const aggregated = agg.events.filter((e) => e.event === 'round-aggregated');
    for (const p of probes) expect(aggregated.some((a) => a.round === p.round && a.participants === p.participants)).toBe(true);
    // Every published sum is over at least t inputs; the ones still standing have no garbage input.
    for (const a of aggregated) expect(a.participants as number).toBeGreaterThanOrEqual(3);
    const withdrawn = new Set(agg.events.filter((e) => e.event === 'aggregate-withdrawn').map((e) => e.round));
    expect(withdrawn.size).toBeGreaterThanOrEqual(1);
    expect(withdrawn.size).toBeLessThanOrEqual(5); // at most n withdrawn rounds (docs/he.md §9)
    // The sums standing at the end never had the attacker's input: it sat those rounds out, or was excluded already.
    const excludedAt = agg.events.find((e) => e.event === 'member-excluded')!.round as number;
    const standing = aggregated.filter((a) => !withdrawn.has(a.round)).map((a) => a.round as number);
    expect(standing).toHaveLength(2);
    for (const r of standing) expect(r > excludedAt || agg.events.some((e) => e.event === 'round-open' && e.round === r && e.sitOut === attackerId), `round ${r}`).toBe(true);
    const results = await Promise.all([0, 1, 2, 3].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2, 2, 2]);
    expect(new Set(results.map((r) => r.hash)).size).toBe(1);
    // Sat-out members were told, and each withdrawn round after the first ran without the suspect in turn.
    const sitOuts = agg.events.filter((e) => e.event === 'round-open' && e.sitOut).map((e) => e.sitOut as string);
    expect(sitOuts.length).toBeGreaterThanOrEqual(1);
    const told = nodes.flatMap((n) => n.events.filter((e) => e.event === 'secagg-sitting-out')).length + g.satOut.length;
    expect(told).toBeGreaterThanOrEqual(1);

    const v = await runCli(['ledger', 'verify', '--dir', join(c.dir, 'node0-data', 'ledger'), '--json']);
    expect(v.code, v.stderr).toBe(0);
    const summary = JSON.parse(v.stdout) as { excluded: string[]; entriesByType: Record<string, number> };
    expect(summary.excluded).toEqual([attackerId]);
    expect(summary.entriesByType.exclusion).toBe(withdrawn.size + 1); // one withdraw per discarded sum, one exclude
  }, 480_000);

  it('kill -9 after the exclusion entry: the restarted aggregator finishes the isolation from its store, with no duplicate entry', async () => {
    const attacker = await generateIdentity();
    const attackerId = peerIdOf(attacker);
    const port = await freePort();
    c = await createConsortium({
      nodes: 4, rounds: 2, quorum: 5, minParticipants: 3, deadlineSeconds: 60, extraMembers: [attackerId],
      manifest: { secureAggregation: { scheme: 'secagg', threshold: 3 } }, listen: `/ip4/127.0.0.1/tcp/${port}`,
    });
    const first = await c.startAggregator({ crashAt: 'after-exclusion-ledger' });
    for (let i = 0; i < 4; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1, 2, 3].map((i) => c!.startNode(i));
    const stop = new AbortController();
    const garbage = runMaskedGarbageMember(attacker, first.address, stop.signal);
    const code = await Promise.race([first.daemon.exited, new Promise((r) => setTimeout(() => r('alive'), 300_000).unref())]);
    expect(code, 'the aggregator killed itself at the crash point').toBe(128);
    const again = await c.startAggregator();
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 300_000).unref());
    const codes = await Promise.race([Promise.all(nodes.map((n) => n.daemon.exited)), timeout]);
    stop.abort();
    const g = await garbage;
    if (codes === 'timeout') throw new Error(`the federation did not finish after the restart:\n${again.events.map((e) => `${e.event} ${e.msg ?? ''}`).join('\n').slice(-6000)}`);
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0, 0, 0]);
    expect(g.endedWith).toBe('AGG_EXCLUDED');
    const results = await Promise.all([0, 1, 2, 3].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((r) => r.version)).toEqual([2, 2, 2, 2]);
    expect(new Set(results.map((r) => r.hash)).size).toBe(1);
    again.daemon.child.kill('SIGTERM');
    await again.daemon.exited;
    const v = await verifyLedgerDir(join(c.dir, 'agg-data', 'ledger'));
    expect(v.ok, JSON.stringify(v)).toBe(true);
    expect(v.summary.excluded).toEqual([attackerId]);
    // One withdraw per discarded sum (the one being discarded at the crash, once), one exclude.
    const withdrawn = new Set([...first.events, ...again.events].filter((e) => e.event === 'aggregate-withdrawn').map((e) => e.round));
    expect(v.summary.entriesByType.exclusion).toBe(withdrawn.size + 1);
  }, 700_000);
});
