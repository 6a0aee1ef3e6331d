// Key rules of a BFV member (scheme.ts): sealed boxes only from the configured holder, for rotations too; the
// highest key epoch accepted is kept beside the key files and an older epoch (or another key at an accepted
// epoch) is refused with NODE_KEY_REPLAYED; updates are encrypted only under the newest key; the holder seals
// for exactly the configured members. And (issue 12 item 3) a member that lost its round-claims file and
// encrypts a second time under one round tag does not hand the aggregator the difference of its updates.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import * as he from '@fedtwin/he';
import { bfvMember, KEY_EPOCHS_FILE, type KeyCeremonyIo, type MemberScheme } from '../src/scheme.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const params = { maxParticipants: 16 };

interface Id { key: PrivateKey; id: string }
const identity = async (): Promise<Id> => {
  const key = await generateKeyPair('Ed25519');
  return { key, id: peerIdFromPrivateKey(key).toString() };
};

let ctx: he.HeContext;
let holder: Id;
let alice: Id;
let bob: Id;
let outsider: Id;
let k0: he.HeSecretKey;
let k1: he.HeSecretKey;
let k1b: he.HeSecretKey; // another key the holder signed for epoch 1 (equivocation)

beforeAll(async () => {
  ctx = await he.createHeContext(params);
  [holder, alice, bob, outsider] = await Promise.all([identity(), identity(), identity(), identity()]);
  [k0, k1, k1b] = [he.generateKeys(ctx), he.generateKeys(ctx), he.generateKeys(ctx)];
});
afterAll(() => ctx.dispose());

const seal = (k: he.HeSecretKey, epoch: number, to: Id, by: Id = holder) =>
  he.sealKeyFor({ recipientPeerId: to.id, secretKey: he.serializeSecretKey(k), keyId: k.keyId, epoch, holderKey: by.key });

/** An aggregator as the member sees it: serves whatever box the test puts up, records what the holder publishes. */
function fakeAggregator() {
  const io = {
    box: undefined as { keyId: string; epoch: number; sealed: unknown } | undefined,
    published: [] as Array<{ keyId: string; epoch: number; boxes: unknown[] }>,
    fetchKey: async () => (io.box ? { status: 'ready' as const, ...io.box } : { status: 'pending' as const }),
    publish: async (keyId: string, epoch: number, boxes: unknown[]) => { io.published.push({ keyId, epoch, boxes }); },
  };
  return io satisfies KeyCeremonyIo;
}

describe('bfvMember key rules', () => {
  const dirs: string[] = [];
  const open: MemberScheme[] = [];
  afterEach(async () => {
    for (const m of open.splice(0)) await m.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const tmp = async () => { const d = await mkdtemp(join(tmpdir(), 'fedtwin-scheme-keys-')); dirs.push(d); return d; };
  const start = async (who: Id, dir: string, io: KeyCeremonyIo, announcedKeyId: string | undefined) => {
    const m = await bfvMember({
      config: { scheme: 'bfv', params, keyHolder: holder.id, members: [holder.id, alice.id, bob.id] },
      announcedKeyId, identity: who.key, peerId: who.id, keyFile: join(dir, 'he-secret.key'), io, logger: quiet, giveUpMs: 200, threads: 1,
    });
    open.push(m);
    return m;
  };
  const stop = async (m: MemberScheme) => { open.splice(open.indexOf(m), 1); await m.close(); };
  const epochsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'he-keys', KEY_EPOCHS_FILE), 'utf8')) as { highest: { epoch: number; keyId: string } };
  const values = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i) * 0.5);

  it('the holder seals for exactly the configured members and records epoch 0', async () => {
    const dir = await tmp();
    const agg = fakeAggregator();
    await start(holder, dir, agg, undefined);
    expect(agg.published).toHaveLength(1);
    const { keyId, epoch, boxes } = agg.published[0]!;
    expect(epoch).toBe(0);
    expect((boxes as he.SealedKey[]).map((b) => b.recipient).sort()).toEqual([alice.id, bob.id].sort());
    for (const b of boxes as he.SealedKey[]) expect(he.verifySealedKey(b, holder.id).keyId).toBe(keyId);
    expect((await epochsOf(dir)).highest).toEqual({ epoch: 0, keyId });
    expect((await stat(join(dir, 'he-keys', KEY_EPOCHS_FILE))).mode & 0o777).toBe(0o600);
  });

  it('refuses a retired epoch replayed for a new round, another key at an accepted epoch, and a rotation not signed by the holder', async () => {
    const dir = await tmp();
    const agg = fakeAggregator();
    agg.box = { keyId: k0.keyId, epoch: 0, sealed: seal(k0, 0, alice) };
    const m = await start(alice, dir, agg, k0.keyId);
    expect(m.keyId).toBe(k0.keyId);
    // rotation to epoch 1, announced by a round under k1
    agg.box = { keyId: k1.keyId, epoch: 1, sealed: seal(k1, 1, alice) };
    await m.encode(values, { round: 5, baseHash: 'b5', keyId: k1.keyId });
    expect(m.keyId).toBe(k1.keyId);
    expect((await epochsOf(dir)).highest).toEqual({ epoch: 1, keyId: k1.keyId });
    // a new round opened under the retired key (still in the keyring, to decrypt old sums): not encrypted under
    await expect(m.canContribute!({ round: 6, baseHash: 'b6', keyId: k0.keyId })).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED', details: { roundEpoch: 0, acceptedEpoch: 1 } });
    await expect(m.encode(values, { round: 6, baseHash: 'b6', keyId: k0.keyId })).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED' });
    await expect(m.prepare!(values.length, { round: 6, baseHash: 'b6', keyId: k0.keyId })).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED' });
    await stop(m);

    // after a restart that lost the retired key file: the aggregator announces k0 and serves its old (genuine) box
    await unlink(join(dir, 'he-keys', `${k0.keyId}.key`)).catch(() => undefined);
    agg.box = { keyId: k0.keyId, epoch: 0, sealed: seal(k0, 0, alice) };
    await expect(start(alice, dir, agg, k0.keyId)).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED', details: { offeredEpoch: 0, acceptedEpoch: 1 } });
    // or announces k1 at join, then opens a round under k0 and serves k0's box for it
    agg.box = { keyId: k1.keyId, epoch: 1, sealed: seal(k1, 1, alice) };
    const again = await start(alice, dir, agg, k1.keyId);
    agg.box = { keyId: k0.keyId, epoch: 0, sealed: seal(k0, 0, alice) };
    await expect(again.encode(values, { round: 7, baseHash: 'b7', keyId: k0.keyId })).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED', details: { offeredEpoch: 0, acceptedEpoch: 1 } });
    // another key the holder signed for the epoch already accepted
    agg.box = { keyId: k1b.keyId, epoch: 1, sealed: seal(k1b, 1, alice) };
    await expect(again.encode(values, { round: 7, baseHash: 'b7', keyId: k1b.keyId })).rejects.toMatchObject({ code: 'NODE_KEY_REPLAYED', details: { offeredEpoch: 1, acceptedEpoch: 1 } });
    // a rotation sealed by anyone but the configured holder
    const k2 = he.generateKeys(ctx);
    agg.box = { keyId: k2.keyId, epoch: 2, sealed: seal(k2, 2, alice, outsider) };
    await expect(again.encode(values, { round: 7, baseHash: 'b7', keyId: k2.keyId })).rejects.toMatchObject({ code: 'HE_SEALED_KEY_BAD_SIGNATURE' });
    expect(again.keyId).toBe(k1.keyId);
    expect((await epochsOf(dir)).highest).toEqual({ epoch: 1, keyId: k1.keyId });
    // the genuine next rotation is still accepted
    agg.box = { keyId: k2.keyId, epoch: 2, sealed: seal(k2, 2, alice) };
    await again.encode(values, { round: 8, baseHash: 'b8', keyId: k2.keyId });
    expect((await epochsOf(dir)).highest).toEqual({ epoch: 2, keyId: k2.keyId });
  }, 60_000);

  it('a restart that lost the round-claims file encrypts again under the round tag, and the two c0s do not reveal m − m\'', async () => {
    const dir = await tmp();
    const agg = fakeAggregator();
    agg.box = { keyId: k0.keyId, epoch: 0, sealed: seal(k0, 0, bob) };
    const round = { round: 3, baseHash: 'b3', keyId: k0.keyId };
    const n = 2 * ctx.slotCount;
    const m1 = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.9);
    const m2 = Float32Array.from({ length: n }, (_, i) => Math.cos(3 * i) * 0.9);
    const first = await start(bob, dir, agg, k0.keyId);
    const u1 = await first.encode(m1, round, [1, 1]);
    expect(await first.canContribute!(round)).toBe(false); // defence in depth: the claims file
    await stop(first);
    await unlink(join(dir, 'he-keys', `${k0.keyId}.rounds`));
    const second = await start(bob, dir, agg, k0.keyId);
    expect(await second.canContribute!(round)).toBe(true);
    const u2 = await second.encode(m2, round, [1, 1]);
    // the aggregator's view: both c0s and the public a; subtract and decode as if the secrets cancelled
    const h1 = he.readUpdateHeader(ctx, u1);
    const h2 = he.readUpdateHeader(ctx, u2);
    expect(Buffer.from(h1.tag).equals(Buffer.from(h2.tag))).toBe(true);
    expect(Buffer.from(h1.entries[0]!.nonce).equals(Buffer.from(h2.entries[0]!.nonce))).toBe(false);
    const q = Number(ctx.q);
    const t = Number(ctx.t);
    const q1 = he.quantize(m1, { scale: ctx.scale, clip: ctx.params.clip, seed: [1, 1] }).values;
    const q2 = he.quantize(m2, { scale: ctx.scale, clip: ctx.params.clip, seed: [1, 1] }).values;
    const c0 = (u: Uint8Array, h: he.UpdateHeader) => {
      const out: number[] = [];
      const size = he.chunkSize(ctx, he.KIND_FRESH);
      const bits = ctx.c0Bits;
      for (let c = 0; c < h.chunkCount; c++) {
        const body = u.subarray(h.bodyOffset + c * size + he.CHUNK_HEADER_BYTES);
        let big = 0n;
        for (let i = Math.ceil((ctx.slotCount * bits) / 8) - 1; i >= 0; i--) big = (big << 8n) | BigInt(body[i]!);
        const mask = (1n << BigInt(bits)) - 1n;
        for (let i = 0; i < ctx.slotCount; i++) out.push(Number((big >> BigInt(i * bits)) & mask) * 2 ** ctx.params.c0DropBits);
      }
      return out;
    };
    const a = c0(u1, h1);
    const b = c0(u2, h2);
    let recovered = 0;
    for (let i = 0; i < n; i++) {
      let d = a[i]! - b[i]!;
      if (d < 0) d += q;
      let v = Math.round((d * t) / q) % t;
      if (v > (t - 1) / 2) v -= t;
      if (v === q1[i]! - q2[i]!) recovered++;
    }
    expect(recovered).toBeLessThan(n / 100);
    // each update still decrypts on its own
    expect(Array.from(he.decryptSumIntegers(ctx, k0, u2, [bob.id]).values)).toEqual(Array.from(q2));
  }, 60_000);
});
