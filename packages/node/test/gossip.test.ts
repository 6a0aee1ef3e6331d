// Members compare checkpoints directly (gossip). The race the split-view e2e test met once in a few runs: a
// member finds the split while the other has not seen its view yet, and stops; the other then waited for a
// witness quorum that never came. Now the finder shows its view to every peer before it stops.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, openLedger, type Ledger } from '@fedtwin/ledger';
import { createWireHost, type WireHost } from '@fedtwin/wire';
import type { JoinResponse } from '@fedtwin/protocol';
import type { NodeInit } from '../src/api.ts';
import type { AggregatorCall } from '../src/call.ts';
import { openMemberWitness, pullLedger, syncLedger } from '../src/phases/witness-sync.ts';

const ORIGIN = 'fedtwin/gossip-test';
const key = (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`gossip-test-${n}`).digest());
const quietLog = { info() {}, warn() {}, error() {}, debug() {} } as unknown as NodeInit['logger'];

async function reply(agg: Ledger, fromSize: number): Promise<{ checkpoint: string; body?: Uint8Array }> {
  const b = await agg.syncBundle(fromSize);
  const body = new TextEncoder().encode(JSON.stringify({
    entries: b.entries.map((e) => Buffer.from(e).toString('base64')),
    consistencyProof: b.consistencyProof.map((h) => Buffer.from(h).toString('hex')),
  }));
  return { checkpoint: b.checkpoint, body };
}

describe('gossip: a member that finds a split view shows its view to the others before it stops', () => {
  const dirs: string[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('attack (split view, the race): A finds it on its first sync from B\'s pending view; B, which never saw A\'s view, finds it from A\'s alert', { timeout: 30_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'fedtwin-gossip-'));
    dirs.push(root);
    const aggKey = await key(1);
    const aggSigner = createEntrySigner(aggKey, ORIGIN);
    const note = createNoteSigner(ORIGIN, aggKey);
    const keys = [await key(2), await key(3)];
    const hosts: WireHost[] = [];
    for (const k of keys) {
      const h = await createWireHost({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allow: keys.map((x) => createEntrySigner(x, ORIGIN).peerId) });
      closers.push(() => h.stop());
      hosts.push(h);
    }
    const ids = hosts.map((h) => h.peerId);
    // The aggregator signs two histories of the same size, one per member.
    const logs: Ledger[] = [];
    for (const [i, lr] of [1, 9].entries()) {
      const l = await openLedger({ dir: join(root, `view${i}`) });
      closers.push(() => l.close());
      await l.appendMany([
        await createEntry({ type: 'membership', action: 'admit', peerId: ids[0]! }, aggSigner),
        await createEntry({ type: 'round', action: 'open', round: 0, config: { lr } }, aggSigner),
      ]);
      await l.signCheckpoint(note);
      logs.push(l);
    }
    const join_ = { consortium: 'gossip-test' } as JoinResponse;
    const witnesses = [];
    for (const i of [0, 1]) {
      const init = {
        ledgerDir: join(root, `m${i}`, 'ledger'), identity: keys[i], aggregator: `/ip4/127.0.0.1/tcp/1/p2p/${aggSigner.peerId}`,
        witnesses: [{ peerId: ids[1 - i]!, address: hosts[1 - i]!.addrs()[0]! }], host: hosts[i], logger: quietLog,
        consortium: { manifest: { members: ids.map((peerId) => ({ peerId })) } },
      } as unknown as NodeInit;
      const w = (await openMemberWitness(init, join_))!;
      closers.push(() => w.close());
      witnesses.push(w);
    }
    const [a, b] = witnesses as [NonNullable<typeof witnesses[0]>, NonNullable<typeof witnesses[0]>];
    // B syncs its view first and sends it to A, whose replica is still empty: pending there.
    const bNote = (await b.syncReply(await reply(logs[1]!, 0), [])).note;
    expect(await a.judgePeerView(bNote, ids[1]!)).toBe('pending');
    // A's first sync (its view): the pending view has another root at size 2, so A stops — after alerting B.
    // Its aggregator (view 0) answers the ledger sync as the real handler does.
    const servesView0 = (async () => { const r = await reply(logs[0]!, 0); return { header: { checkpoint: r.checkpoint }, body: r.body }; }) as unknown as AggregatorCall;
    const err = await pullLedger(a, servesView0, []).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LEDGER_INCONSISTENT' });
    // B never asked A for anything, yet it knows now: its next sync stops on it.
    const viaLoop = await syncLedger({ witness: b } as never).catch((e: unknown) => e);
    expect(viaLoop).toMatchObject({ code: 'LEDGER_INCONSISTENT' });
    expect(String((viaLoop as Error).message)).toMatch(/another log/);
  });
});
