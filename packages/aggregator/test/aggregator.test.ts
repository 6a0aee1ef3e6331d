import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import { AggregateResponse, JoinResponse, RefuseAck, TaskResponse, UpdateAck, bytesToF32, f32ToBytes, genesisModelVersion, nextModelVersion, type UpdateHeader } from '@fedtwin/protocol';
import { createEntry, createEntrySigner, sha256Hex, verifyLedgerDir } from '@fedtwin/ledger';
import type { PrivateKey } from '@libp2p/interface';
import { createAggregator, type Aggregator } from '../src/index.ts';

const silent = { info() {}, warn() {}, error() {} };
const schema = {
  target: 'y',
  columns: [
    { name: 'x', kind: 'numeric' as const, min: 0, max: 1, integer: false, decimals: 2 },
    { name: 'y', kind: 'categorical' as const, categories: ['a', 'b'] },
  ],
};
const VALUES = 8;
// The base of round 1: the model version id every member derives from the consortium's configuration.
const HASH = genesisModelVersion({ consortium: 't', modelValues: VALUES, strategy: 'fedavg', model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 } });

// The aggregator on a real libp2p host, driven by real member hosts over 127.0.0.1.
describe('aggregator', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

  async function setup(opts: { members?: number; quorum?: number; min?: number; deadlineSeconds?: number; total?: number; dir?: string; privacy?: import('@fedtwin/protocol').PrivacyPolicy; ledger?: boolean; maxWeight?: number } = {}) {
    const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'fedtwin-agg-'));
    if (!opts.dir) cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const memberKeys = await Promise.all(Array.from({ length: opts.members ?? 2 }, () => generateIdentity()));
    const ids = memberKeys.map(peerIdOf);
    const aggKey = await generateIdentity();
    const aggHost = await createWireHost({ privateKey: aggKey, allow: ids });
    const agg = await createAggregator({
      host: aggHost, dataDir: join(dir, 'state'), consortium: 't', members: ids, schema,
      model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 }, modelValues: VALUES, strategy: 'fedavg',
      training: { epochs: 1, batchSize: 8, learningRate: 0.01 },
      rounds: { totalRounds: opts.total ?? 2, quorum: opts.quorum ?? 2, minParticipants: opts.min ?? 1, deadlineSeconds: opts.deadlineSeconds ?? 60 },
      ...(opts.privacy ? { privacy: opts.privacy } : {}),
      ...(opts.ledger ? { ledger: { dir: join(dir, 'ledger'), identity: aggKey } } : {}),
      ...(opts.maxWeight !== undefined ? { maxWeight: opts.maxWeight } : {}),
      logger: silent,
    });
    const members: WireHost[] = [];
    for (const k of memberKeys) members.push(await createWireHost({ privateKey: k, listen: [], allow: [aggHost.peerId] }));
    cleanup.push(async () => { for (const m of members) await m.stop(); await agg.stop(); await aggHost.stop(); });
    const addr = aggHost.addrs()[0]!;
    const call = <R>(m: number, name: string, header: unknown, response: import('zod').ZodType<R>, body?: Uint8Array, maxBodyBytes = 0) =>
      members[m]!.request(addr, name, { header, body }, { response, maxBodyBytes, timeoutMs: 20_000 });
    return { dir, agg, aggHost, members, memberKeys, ids, addr, call };
  }

  /** A new aggregator (new host, same state dir: a restarted process) that the members of `first` accept. */
  async function restart(dir: string, first: { ids: string[]; members: WireHost[] }, totalRounds: number): Promise<{ host: WireHost; agg: Aggregator }> {
    const host = await createWireHost({ privateKey: await generateIdentity(), allow: first.ids });
    const agg = await createAggregator({
      host, dataDir: join(dir, 'state'), consortium: 't', members: first.ids, schema,
      model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 }, modelValues: VALUES, strategy: 'fedavg',
      training: { epochs: 1, batchSize: 8, learningRate: 0.01 },
      rounds: { totalRounds, quorum: 2, minParticipants: 1, deadlineSeconds: 60 }, logger: silent,
    });
    cleanup.push(async () => { await agg.stop(); await host.stop(); });
    for (const m of first.members) m.allowPeer(host.peerId);
    return { host, agg };
  }

  const update = (round: number, over: Partial<UpdateHeader> = {}): UpdateHeader => ({
    round, baseVersion: 0, baseHash: HASH, weight: 10, values: VALUES, encoding: 'f32le', loss: 1, trainSeconds: 0.1, privacy: [], entry: '', ...over,
  });
  const body = (v: number) => f32ToBytes(new Float32Array(VALUES).fill(v));

  it('opens a round at quorum of joined members, sums updates, publishes the sum and finishes', async () => {
    const { agg, call } = await setup();
    const join0 = await call(0, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    expect(join0.header.modelValues).toBe(VALUES);
    expect((await call(0, 'task', { afterRound: 0, waitMs: 0 }, TaskResponse)).header.status).toBe('idle');
    await call(1, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const task = (await call(0, 'task', { afterRound: 0, waitMs: 1000 }, TaskResponse)).header;
    expect(task).toMatchObject({ status: 'open', round: 1, baseVersion: 0 });
    await call(0, 'update', update(1), UpdateAck, body(1));
    const ack = await call(1, 'update', update(1, { weight: 30 }), UpdateAck, body(2));
    expect(ack.header.contributions).toBe(2);
    const aggRes = await call(0, 'aggregate', { version: 1 }, AggregateResponse, undefined, VALUES * 4);
    expect(aggRes.header).toMatchObject({ version: 1, round: 1, totalWeight: 40, baseHash: HASH });
    expect(Array.from(bytesToF32(aggRes.body!))).toEqual(new Array(VALUES).fill(3));
    expect((await agg.state()).version).toBe(1);
    // Round 2 is based on version 1, whose id chains aggregate 1's bytes onto the genesis id; then finished.
    const base1 = nextModelVersion(HASH, sha256Hex(aggRes.body!));
    expect((await call(0, 'task', { afterRound: 1, waitMs: 1000 }, TaskResponse)).header).toMatchObject({ status: 'open', round: 2, baseVersion: 1, baseHash: base1 });
    await call(0, 'update', update(2, { baseVersion: 1, baseHash: base1 }), UpdateAck, body(1));
    await call(1, 'update', update(2, { baseVersion: 1, baseHash: base1 }), UpdateAck, body(1));
    await agg.finished();
    expect((await call(0, 'task', { afterRound: 2, waitMs: 0 }, TaskResponse)).header).toEqual({ status: 'finished', version: 2 });
  });

  it('rejects bad updates with codes and persists nothing from them', async () => {
    const { agg, call } = await setup();
    await call(0, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    await call(1, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const reject = (p: Promise<unknown>, code: string) => expect(p).rejects.toMatchObject({ code });
    await reject(call(0, 'update', update(5), UpdateAck, body(1)), 'AGG_ROUND_CLOSED');
    await reject(call(0, 'update', update(1, { baseVersion: 3 }), UpdateAck, body(1)), 'AGG_VERSION_MISMATCH');
    await reject(call(0, 'update', update(1), UpdateAck, f32ToBytes(new Float32Array(VALUES - 1))), 'AGG_BAD_UPDATE');
    await reject(call(0, 'update', update(1), UpdateAck, f32ToBytes(new Float32Array(VALUES).fill(Number.NaN))), 'AGG_BAD_UPDATE');
    // Schema violations never reach the handler; an oversized body is refused before it is read.
    await reject(call(0, 'update', { ...update(1), weight: -1 }, UpdateAck, body(1)), 'WIRE_BAD_MESSAGE');
    await reject(call(0, 'update', { ...update(1), extra: 1 }, UpdateAck, body(1)), 'WIRE_BAD_MESSAGE');
    await reject(call(0, 'update', update(1), UpdateAck, new Uint8Array(VALUES * 4 + 4)), 'WIRE_TOO_LARGE');
    expect((await agg.rounds())[0]!.contributions).toHaveLength(0);
    // A good one, then the same member again: duplicate; another member from a different base: mismatch.
    await call(0, 'update', update(1), UpdateAck, body(1));
    await reject(call(0, 'update', update(1), UpdateAck, body(1)), 'AGG_DUPLICATE');
    await reject(call(1, 'update', update(1, { baseHash: 'b'.repeat(64) }), UpdateAck, body(1)), 'AGG_BASE_HASH_MISMATCH');
    expect((await agg.rounds())[0]!.contributions.map((c) => c.peer)).toHaveLength(1);
    await reject(call(0, 'aggregate', { version: 1 }, AggregateResponse, undefined, VALUES * 4), 'AGG_NO_SUCH_VERSION');
  });

  it('requires the privacy spending the consortium policy asks for, and unweighted updates under site-level DP', async () => {
    const { agg, call } = await setup({ privacy: { mode: 'both', epsilon: 8, delta: 1e-5, record: { clip: 1, noiseMultiplier: 1 }, site: { clip: 1, noiseMultiplier: 1, minParticipants: 1, sampleRate: 1 } } });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const spend = (mode: 'record' | 'site') => ({ mode, epsilonRound: 1, epsilonTotal: 1, delta: 1e-5, budgetEpsilon: 8, noiseMultiplier: 1, sampleRate: 1, steps: 1, clip: 1 });
    await expect(call(0, 'update', update(1, { weight: 1 }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_PRIVACY_MISSING' });
    await expect(call(0, 'update', update(1, { weight: 1, privacy: [spend('record')] }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_PRIVACY_MISSING' });
    await expect(call(0, 'update', update(1, { weight: 10, privacy: [spend('record'), spend('site')] }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    await call(0, 'update', update(1, { weight: 1, privacy: [spend('record'), spend('site')] }), UpdateAck, body(1));
    expect((await agg.rounds())[0]!.contributions).toHaveLength(1);
  });

  it('aggregates at the deadline with minParticipants, or fails the round and reopens', async () => {
    const { agg, call } = await setup({ members: 3, quorum: 2, min: 2, deadlineSeconds: 1.5, total: 1 });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    await call(0, 'update', update(1), UpdateAck, body(1));
    // Only one of two required contributions by the deadline: round 1 fails, round 2 opens.
    const t = (await call(1, 'task', { afterRound: 1, waitMs: 5000 }, TaskResponse)).header;
    expect(t).toMatchObject({ status: 'open', round: 2, baseVersion: 0 });
    const r1 = (await agg.rounds())[0]!;
    expect(r1).toMatchObject({ status: 'failed' });
    expect(r1.reason).toMatch(/1 of 2/);
    await call(0, 'update', update(2), UpdateAck, body(1));
    await call(1, 'update', update(2), UpdateAck, body(1));
    await agg.finished();
    expect((await agg.aggregates()).map((a) => a.round)).toEqual([2]);
  });

  it('resumes an open round with its persisted contributions after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-agg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const first = await setup({ dir, total: 1 });
    for (const m of [0, 1]) await first.call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    await first.call(0, 'update', update(1, { weight: 5 }), UpdateAck, body(4));
    await first.agg.stop();
    await first.aggHost.stop();
    // Same state dir, new process-equivalent: the round is still open with member 0's update in the sum.
    const { host: host2 } = await restart(dir, first, 1);
    const addr2 = host2.addrs()[0]!;
    const m1 = first.members[1]!;
    await expect(m1.request(addr2, 'update', { header: update(1), body: body(4) }, { response: UpdateAck, maxBodyBytes: 0, timeoutMs: 20_000 })).resolves.toBeTruthy();
    await expect(first.members[0]!.request(addr2, 'update', { header: update(1), body: body(4) }, { response: UpdateAck, maxBodyBytes: 0, timeoutMs: 20_000 })).rejects.toMatchObject({ code: 'AGG_ROUND_CLOSED' });
    const res = await m1.request(addr2, 'aggregate', { header: { version: 1 } }, { response: AggregateResponse, maxBodyBytes: VALUES * 4, timeoutMs: 20_000 });
    expect(res.header.totalWeight).toBe(15);
    expect(Array.from(bytesToF32(res.body!))).toEqual(new Array(VALUES).fill(8));
  });

  it('opens the next round after a restart that came between closing a round and opening the next', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-agg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const first = await setup({ dir, total: 3, quorum: 2 });
    for (const m of [0, 1]) await first.call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    for (const m of [0, 1]) await first.call(m, 'update', update(1), UpdateAck, body(1));
    await first.agg.stop();
    await first.aggHost.stop();
    // Rewind to the crash window: round 1 aggregated and persisted, round 2 not yet written.
    const { AggregatorStore } = await import('../src/store.ts');
    const store = await AggregatorStore.open(join(dir, 'state'));
    const st = await store.state();
    expect(st).toMatchObject({ round: 2, version: 1, status: 'running' });
    await store.saveState({ ...st, round: 1 });
    await store.close();
    const { host: host2 } = await restart(dir, first, 3);
    const task = await first.members[0]!.request(host2.addrs()[0]!, 'task', { header: { afterRound: 1, waitMs: 0 } }, { response: TaskResponse, maxBodyBytes: 0, timeoutMs: 20_000 });
    expect(task.header).toMatchObject({ status: 'open', round: 2, baseVersion: 1 });
  });

  it('refuses a state directory another aggregator holds', async () => {
    const { dir } = await setup();
    const host = await createWireHost({ privateKey: await generateIdentity(), allow: [] });
    cleanup.push(() => host.stop());
    await expect(createAggregator({
      host, dataDir: join(dir, 'state'), consortium: 't', members: ['12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU'], schema,
      model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 }, modelValues: VALUES, strategy: 'fedavg',
      training: { epochs: 1, batchSize: 8, learningRate: 0.01 }, rounds: { totalRounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, logger: silent,
    })).rejects.toMatchObject({ code: 'STATE_LOCKED' });
  });
  /** A member's signed ledger entry for an update (what a real node attaches). */
  async function signedEntry(key: PrivateKey, round: number, b: Uint8Array, over: Record<string, unknown> = {}): Promise<string> {
    const signer = createEntrySigner(key, 'fedtwin/t');
    const e = await createEntry({
      type: 'contribution', round, node: signer.peerId, ciphertextHash: sha256Hex(b), ciphertextSize: b.length,
      epsilon: 0, delta: 0, epsilonTotal: 0, deltaTotal: 0, keyId: 'plaintext', globalVersion: HASH, ...over,
    } as Parameters<typeof createEntry>[0], signer);
    return Buffer.from(e.bytes).toString('base64');
  }
  async function refusalEntry(key: PrivateKey, round: number): Promise<string> {
    const signer = createEntrySigner(key, 'fedtwin/t');
    const e = await createEntry({ type: 'refusal', round, node: signer.peerId, reason: 'budget' }, signer);
    return Buffer.from(e.bytes).toString('base64');
  }
  const refusal = (round: number, entry: string) => ({ round, code: 'NODE_BUDGET_EXHAUSTED', reason: 'budget', privacy: [], entry });

  it('a rejected then accepted update leaves a correct sum (nothing is summed before every check passed)', async () => {
    const { agg, call, memberKeys, dir } = await setup({ ledger: true, total: 1 });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    // Three updates whose signed entries do not match (another ciphertext, another round, another base): refused.
    const bad = [
      await signedEntry(memberKeys[0]!, 1, body(7)),
      await signedEntry(memberKeys[0]!, 2, body(1)),
      await signedEntry(memberKeys[0]!, 1, body(1), { globalVersion: 'c'.repeat(64) }),
    ];
    for (const entry of bad) await expect(call(0, 'update', update(1, { entry }), UpdateAck, body(1000))).rejects.toMatchObject({ code: 'AGG_BAD_ENTRY' });
    // The honest retry and the other member: the sum is exactly theirs.
    await call(0, 'update', update(1, { entry: await signedEntry(memberKeys[0]!, 1, body(1)) }), UpdateAck, body(1));
    await call(1, 'update', update(1, { entry: await signedEntry(memberKeys[1]!, 1, body(2)) }), UpdateAck, body(2));
    await agg.finished();
    const res = await call(0, 'aggregate', { version: 1 }, AggregateResponse, undefined, VALUES * 4);
    expect(res.header.participants).toHaveLength(2);
    expect(Array.from(bytesToF32(res.body!))).toEqual(new Array(VALUES).fill(3));
    await agg.stop();
    const v = await verifyLedgerDir(join(dir, 'ledger'));
    expect(v.ok).toBe(true);
    expect(Object.values(v.summary.contributionsPerNode)).toEqual([1, 1]);
  });

  it('a bogus base hash uploaded first changes nothing: the base is fixed when the round opens', async () => {
    const { agg, call } = await setup({ total: 1 });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const task = (await call(0, 'task', { afterRound: 0, waitMs: 1000 }, TaskResponse)).header;
    expect(task).toMatchObject({ status: 'open', baseHash: HASH });
    await expect(call(0, 'update', update(1, { baseHash: 'b'.repeat(64) }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BASE_HASH_MISMATCH' });
    await call(1, 'update', update(1), UpdateAck, body(2));
    await call(0, 'update', update(1), UpdateAck, body(1));
    await agg.finished();
    expect((await agg.aggregates())[0]).toMatchObject({ baseHash: HASH, participants: expect.any(Array) });
  });

  it('bounds the FedAvg weight a member declares', async () => {
    const { agg, call } = await setup({ maxWeight: 5000 });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    await expect(call(0, 'update', update(1, { weight: 1e12 }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_WEIGHT' });
    await expect(call(0, 'update', update(1, { weight: 5001 }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_WEIGHT' });
    await expect(call(0, 'update', update(1, { weight: 2.5 }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_WEIGHT' });
    await call(0, 'update', update(1, { weight: 5000 }), UpdateAck, body(1));
    expect((await agg.rounds())[0]!.contributions.map((c) => c.weight)).toEqual([5000]);
  });

  it('records a refusal only for the open round, once, and never together with a contribution', async () => {
    const { agg, call, memberKeys, dir } = await setup({ ledger: true, members: 3, quorum: 3, total: 1 });
    for (const m of [0, 1, 2]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const size0 = (await agg.ledger())!.size;
    // Rounds that never existed (or are not open): refused, nothing written, nobody marked exhausted.
    for (const r of [2, 99, 1000]) {
      await expect(call(0, 'refuse', refusal(r, await refusalEntry(memberKeys[0]!, r)), RefuseAck)).rejects.toMatchObject({ code: 'AGG_ROUND_CLOSED' });
    }
    expect((await agg.ledger())!.size).toBe(size0);
    expect((await agg.state()).exhausted ?? []).toEqual([]);
    // Refuse, then try to contribute: refused. A repeated refusal writes nothing new.
    const e1 = await refusalEntry(memberKeys[0]!, 1);
    await call(0, 'refuse', refusal(1, e1), RefuseAck);
    await call(0, 'refuse', refusal(1, e1), RefuseAck);
    expect((await agg.ledger())!.size).toBe(size0 + 1);
    await expect(call(0, 'update', update(1, { entry: await signedEntry(memberKeys[0]!, 1, body(1)) }), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_ALREADY_REFUSED' });
    // Contribute, then try to refuse: refused.
    await call(1, 'update', update(1, { entry: await signedEntry(memberKeys[1]!, 1, body(1)) }), UpdateAck, body(1));
    await expect(call(1, 'refuse', refusal(1, await refusalEntry(memberKeys[1]!, 1)), RefuseAck)).rejects.toMatchObject({ code: 'AGG_ALREADY_CONTRIBUTED' });
    await call(2, 'update', update(1, { entry: await signedEntry(memberKeys[2]!, 1, body(1)) }), UpdateAck, body(1));
    await agg.finished();
    await agg.stop();
    const v = await verifyLedgerDir(join(dir, 'ledger'));
    expect(v.ok).toBe(true);
    expect(v.summary.refusalsPerNode).toEqual({ [peerIdOf(memberKeys[0]!)]: 1 });
  });
});
