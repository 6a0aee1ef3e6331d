// `fedtwin ledger verify` on secure aggregation by masking (issue 16): a ledger holding one masked round — keys,
// share commitments, the recovery request (a member dropped after sharing) and the reveals, each signed by its
// author — replays: the revealed shares rebuild every survivor's committed b and the dropped member's signed mask
// key. A member that signs a wrong share, a second recovery request for the round, or a reveal of both secrets of
// one member is refused. Runs the real entry point; the messages come from @fedtwin/secagg's protocol functions.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, openLedger, secaggSharesHash, type EntryPayloadInput, type EntrySigner } from '@fedtwin/ledger';
import { secaggAdToWire, secaggShareToWire } from '@fedtwin/protocol';
import * as sa from '@fedtwin/secagg';
import { auditSecagg } from '../src/secagg-audit.ts';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const ORIGIN = 'fedtwin/audit';
const CONSORTIUM = 'audit';
const ROUND = 1;
const root = mkdtempSync(join(tmpdir(), 'fedtwin-secagg-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const keyOf = (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`secagg-audit-${n}`).digest());

/** One masked round among 4 members, t = 3, member 3 dropping after sharing: every entry the daemons record. */
async function roundEntries(): Promise<{ agg: EntrySigner; aggKey: Awaited<ReturnType<typeof keyOf>>; entries: Array<[EntryPayloadInput, EntrySigner]> }> {
  const aggKey = await keyOf(0);
  const agg = createEntrySigner(aggKey, ORIGIN);
  const ids = await Promise.all([1, 2, 3, 4].map(async (n) => createEntrySigner(await keyOf(n), ORIGIN)));
  const cfg = { consortium: CONSORTIUM, round: ROUND, members: ids.map((i) => i.peerId), threshold: 3, length: 8 };
  const entries: Array<[EntryPayloadInput, EntrySigner]> = [];
  const p0 = ids.map((id) => sa.advertise(cfg, id));
  for (const [k, p] of p0.entries()) {
    const w = secaggAdToWire(p.ad);
    entries.push([{ type: 'secagg-keys', round: ROUND, node: w.member, cPub: w.cPub, sPub: w.sPub, signature: w.signature }, ids[k]!]);
  }
  const { accepted } = sa.collectAdvertisements(cfg, p0.map((p) => p.ad));
  const p1 = p0.map((p) => sa.shareKeys(p.state, accepted));
  for (const [k, p] of p1.entries()) {
    const shares = p.bundle.shares.map(secaggShareToWire);
    entries.push([{ type: 'secagg-shares', round: ROUND, node: ids[k]!.peerId, bCommit: hex(p.bundle.bCommit), sharesHash: secaggSharesHash(shares), recipients: shares.map((s) => s.to) }, ids[k]!]);
  }
  const { round, inboxes } = sa.routeShares(cfg, accepted, p1.map((p) => p.bundle));
  const x = Int32Array.from([1, -2, 3, 4, 5, 6, 7, 8]);
  const p2 = p1.slice(0, 3).map((p) => sa.maskInput(p.state, inboxes.get(p.state.me)!, x));
  const req = sa.recoveryRequest(round, p2.map((p) => p.masked.member));
  entries.push([{ type: 'secagg-recovery', round: ROUND, consortium: CONSORTIUM, threshold: 3, survivors: req.survivors, dropped: req.dropped, digest: hex(sa.requestDigest(req)) }, agg]);
  for (const [k, p] of p2.entries()) {
    const { response } = sa.answerRecovery(p.state, req);
    const rv = (xs: readonly sa.ShareReveal[]) => xs.map((s) => ({ owner: s.owner, y: b64(s.y) }));
    entries.push([{ type: 'secagg-reveal', round: ROUND, node: ids[k]!.peerId, digest: hex(response.request), bShares: rv(response.bShares), sShares: rv(response.sShares) }, ids[k]!]);
  }
  return { agg, aggKey, entries };
}

async function writeLedger(name: string, entries: Array<[EntryPayloadInput, EntrySigner]>, aggKey: Awaited<ReturnType<typeof keyOf>>): Promise<string> {
  const dir = join(root, name);
  const l = await openLedger({ dir });
  for (const [p, signer] of entries) await l.append(await createEntry(p, signer));
  await l.signCheckpoint(createNoteSigner(ORIGIN, aggKey));
  await l.close();
  return dir;
}

const verify = (dir: string) => spawnSync(process.execPath, [BIN, 'ledger', 'verify', '--dir', dir, '--json'], { encoding: 'utf8', timeout: 60_000 });

describe('ledger verify replays secure aggregation by masking', () => {
  it('an honest round: every revealed share rebuilds its owner\'s committed b or signed mask key', async () => {
    const { aggKey, entries } = await roundEntries();
    const r = verify(await writeLedger('honest', entries, aggKey));
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { secagg: Array<{ round: number; survivors: number; dropped: number; reveals: number; reconstructed: number }> };
    expect(out.secagg).toEqual([{ round: ROUND, survivors: 3, dropped: 1, reveals: 3, reconstructed: 4 }]);
  });

  it('a member that signs a wrong share is caught: the rebuilt secret matches no commitment', async () => {
    const { aggKey, entries } = await roundEntries();
    const reveal = entries.find(([p]) => p.type === 'secagg-reveal')![0] as Extract<EntryPayloadInput, { type: 'secagg-reveal' }>;
    const y = Buffer.from(reveal.bShares[0]!.y, 'base64');
    y[y.length - 1] ^= 1;
    reveal.bShares[0] = { ...reveal.bShares[0]!, y: y.toString('base64') };
    const r = verify(await writeLedger('wrong-share', entries, aggKey));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('LEDGER_SECAGG_INVALID');
    expect(r.stderr).toMatch(/does not match its commitment|do not interpolate/);
  });

  it('a second recovery request for the round is refused (one request per round)', async () => {
    const { agg, aggKey, entries } = await roundEntries();
    const first = entries.find(([p]) => p.type === 'secagg-recovery')![0] as Extract<EntryPayloadInput, { type: 'secagg-recovery' }>;
    // The aggregator names the last survivor dropped instead: the request that would unmask it.
    const other = { consortium: CONSORTIUM, round: ROUND, survivors: first.survivors.slice(0, 2), dropped: [...first.dropped, first.survivors[2]!] };
    entries.push([{ ...first, survivors: other.survivors, dropped: other.dropped, digest: hex(sa.requestDigest(other)) }, agg]);
    const r = verify(await writeLedger('two-requests', entries, aggKey));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('a second secagg recovery request for round 1');
  });

  it('a reveal of a survivor\'s mask-key share (both secrets of one member) is refused by the audit', async () => {
    const { entries } = await roundEntries();
    const payloads = entries.map(([p]) => ({ v: 1, ...p }) as Parameters<typeof auditSecagg>[0][number]);
    const reveal = payloads.find((p) => p.type === 'secagg-reveal') as Extract<typeof payloads[number], { type: 'secagg-reveal' }>;
    reveal.sShares.push({ owner: reveal.bShares[0]!.owner, y: reveal.bShares[0]!.y });
    await expect(auditSecagg(payloads)).rejects.toMatchObject({ code: 'LEDGER_SECAGG_INVALID', message: expect.stringContaining('who is not dropped') });
  });
});
