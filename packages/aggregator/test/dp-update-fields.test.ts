import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import { JoinResponse, UpdateAck, UpdateHeader, f32ToBytes, genesisModelVersion, type PrivacyPolicy } from '@fedtwin/protocol';
import { createEntry, createEntrySigner, sha256Hex } from '@fedtwin/ledger';
import type { PrivateKey } from '@libp2p/interface';
import { createAggregator } from '../src/index.ts';

// Issue 13 item 3, the aggregator's side: under DP nothing about a member's data that the accountant does
// not charge is stored or logged (loss, training time, record count), whatever an old or careless node sends.
const schema = {
  target: 'y',
  columns: [
    { name: 'x', kind: 'numeric' as const, min: 0, max: 1, integer: false, decimals: 2 },
    { name: 'y', kind: 'categorical' as const, categories: ['a', 'b'] },
  ],
};
const VALUES = 8;
const HASH = genesisModelVersion({ consortium: 't', modelValues: VALUES, strategy: 'fedavg', model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 } });
const RECORD_DP: PrivacyPolicy = { mode: 'record', epsilon: 8, delta: 1e-5, record: { clip: 1, noiseMultiplier: 1 } };
const spend = { mode: 'record' as const, epsilonRound: 1, epsilonTotal: 1, delta: 1e-5, budgetEpsilon: 8, noiseMultiplier: 1, sampleRate: 0.5, steps: 2, clip: 1 };
// Values no honest log line or record would contain by chance.
const LOSS = 12.3456789;
const TRAIN_SECONDS = 98.7654321;

describe('aggregator: what it keeps of an update under DP', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

  async function setup(privacy: PrivacyPolicy, manifestMembers?: (ids: string[]) => Array<Record<string, unknown>>) {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-agg-dp-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const memberKeys = await Promise.all([generateIdentity(), generateIdentity()]);
    const ids = memberKeys.map(peerIdOf);
    const aggKey = await generateIdentity();
    const aggHost = await createWireHost({ privateKey: aggKey, allow: ids });
    const lines: string[] = [];
    const record = (obj: Record<string, unknown>, msg?: string) => { lines.push(`${JSON.stringify(obj)} ${msg ?? ''}`); };
    // With `manifestMembers`: a consortium manifest (its members' entries as given), which the aggregator reads publicCount from.
    const manifest = manifestMembers ? { manifest: { consortium: 't', members: manifestMembers(ids) }, hash: 'f'.repeat(64) } : undefined;
    const agg = await createAggregator({
      ...(manifest ? { manifest } : {}),
      host: aggHost, dataDir: join(dir, 'state'), consortium: 't', members: ids, schema,
      model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 }, modelValues: VALUES, strategy: 'fedavg',
      training: { epochs: 1, batchSize: 8, learningRate: 0.01 },
      rounds: { totalRounds: 1, quorum: 2, minParticipants: 1, deadlineSeconds: 60 },
      privacy, ledger: { dir: join(dir, 'ledger'), identity: aggKey },
      logger: { info: record, warn: record, error: record },
    });
    const members: WireHost[] = [];
    for (const k of memberKeys) members.push(await createWireHost({ privateKey: k, listen: [], allow: [aggHost.peerId] }));
    cleanup.push(async () => { for (const m of members) await m.stop(); await agg.stop(); await aggHost.stop(); });
    const addr = aggHost.addrs()[0]!;
    const call = <R>(m: number, name: string, header: unknown, response: import('zod').ZodType<R>, body?: Uint8Array) =>
      members[m]!.request(addr, name, { header, body }, { response, maxBodyBytes: 0, timeoutMs: 20_000 });
    for (const m of [0, 1]) await call(m, 'join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const base = manifest ? genesisModelVersion({ consortium: 't', modelValues: VALUES, strategy: 'fedavg', model: { kind: 'vae', latentDim: 2, hidden: 4, seed: 1 }, manifestHash: manifest.hash }) : HASH;
    return { agg, call, memberKeys, lines, base };
  }

  const body = (v: number) => f32ToBytes(new Float32Array(VALUES).fill(v));
  async function entry(key: PrivateKey, b: Uint8Array, over: Record<string, unknown> = {}): Promise<string> {
    const signer = createEntrySigner(key, 'fedtwin/t');
    const e = await createEntry({
      type: 'contribution', round: 1, node: signer.peerId, ciphertextHash: sha256Hex(b), ciphertextSize: b.length,
      epsilon: 1, delta: 1e-5, epsilonTotal: 1, deltaTotal: 1e-5, keyId: 'plaintext', globalVersion: HASH, ...over,
    } as Parameters<typeof createEntry>[0], signer);
    return Buffer.from(e.bytes).toString('base64');
  }
  const header = (e: string, over: Partial<UpdateHeader> = {}): UpdateHeader => ({
    round: 1, baseVersion: 0, baseHash: HASH, weight: 1, values: VALUES, encoding: 'f32le', privacy: [spend], entry: e, ...over,
  });

  it('the update header may omit loss and trainSeconds (new nodes under DP) and still carry them (older nodes, DP off)', () => {
    const without = header('');
    expect(UpdateHeader.safeParse(without).success).toBe(true);
    expect(UpdateHeader.safeParse({ ...without, loss: 0.5, trainSeconds: 1 }).success).toBe(true);
    expect(UpdateHeader.safeParse({ ...without, loss: Number.NaN }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...without, trainSeconds: -1 }).success).toBe(false);
  });

  it('under DP a loss and a training time sent anyway are neither stored nor logged', async () => {
    const { agg, call, memberKeys, lines } = await setup(RECORD_DP);
    await call(0, 'update', header(await entry(memberKeys[0]!, body(1)), { loss: LOSS, trainSeconds: TRAIN_SECONDS }), UpdateAck, body(1));
    await call(1, 'update', header(await entry(memberKeys[1]!, body(2))), UpdateAck, body(2));
    await agg.finished();
    const [round] = await agg.rounds();
    expect(round!.contributions).toHaveLength(2);
    for (const c of round!.contributions) {
      expect(c).not.toHaveProperty('loss');
      expect(c).not.toHaveProperty('trainSeconds');
      expect(c.weight).toBe(1);
    }
    const all = lines.join('\n');
    expect(all).not.toContain(String(LOSS));
    expect(all).not.toContain(String(TRAIN_SECONDS));
    expect(all).not.toMatch(/"loss"|"trainSeconds"|"sampleCount"/);
    // …but the aggregator's operator is told a member sends what it should not.
    expect(lines.some((l) => l.includes('"event":"update-stats-dropped"'))).toBe(true);
  });

  it('under DP an update weighted by a record count is refused, without echoing the count', async () => {
    const { agg, call, memberKeys, lines } = await setup(RECORD_DP);
    const refused = call(0, 'update', header(await entry(memberKeys[0]!, body(1)), { weight: 4321 }), UpdateAck, body(1));
    await expect(refused).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    await refused.catch((err: Error) => expect(err.message).not.toContain('4321'));
    expect((await agg.rounds())[0]!.contributions).toHaveLength(0);
    expect(lines.join('\n')).not.toContain('4321');
  });

  it('under DP a signed contribution entry that names the record count is refused before it reaches the ledger', async () => {
    const { agg, call, memberKeys } = await setup(RECORD_DP);
    const size0 = (await agg.ledger())!.size;
    const refused = call(0, 'update', header(await entry(memberKeys[0]!, body(1), { sampleCount: 4321 })), UpdateAck, body(1));
    await expect(refused).rejects.toMatchObject({ code: 'AGG_BAD_ENTRY' });
    await refused.catch((err: Error) => expect(err.message).not.toContain('4321'));
    expect((await agg.ledger())!.size).toBe(size0);
    expect((await agg.rounds())[0]!.contributions).toHaveLength(0);
  });

  it('under record-level DP an entry naming the member\'s DP count Ñ is accepted when its q is min(1, B/Ñ), refused otherwise', async () => {
    const { agg, call, memberKeys } = await setup(RECORD_DP);
    const size0 = (await agg.ledger())!.size;
    const mechanism = (q: number) => ({ sampleRate: q, noiseMultiplier: 1, steps: Math.round(1 / q), delta: 1e-5 });
    const wrong = call(0, 'update', header(await entry(memberKeys[0]!, body(1), { countEstimate: 413, countNoise: 20, mechanism: mechanism(8 / 400) })), UpdateAck, body(1));
    await expect(wrong).rejects.toMatchObject({ code: 'AGG_BAD_ENTRY' });
    expect((await agg.ledger())!.size).toBe(size0);
    await call(0, 'update', header(await entry(memberKeys[0]!, body(1), { countEstimate: 413, countNoise: 20, mechanism: mechanism(8 / 413) })), UpdateAck, body(1));
    expect((await agg.rounds())[0]!.contributions).toHaveLength(1);
    expect((await agg.ledger())!.size).toBe(size0 + 1);
  });

  it('a count named without its noise σ is accepted only as the manifest\'s publicCount for that member', async () => {
    const { agg, call, memberKeys, base } = await setup(RECORD_DP, (ids) => [{ peerId: ids[0], publicCount: 400 }, { peerId: ids[1] }]);
    const size0 = (await agg.ledger())!.size;
    const mechanism = (q: number) => ({ sampleRate: q, noiseMultiplier: 1, steps: Math.round(1 / q), delta: 1e-5 });
    const at = (e: string) => ({ ...header(e), baseHash: base });
    // Member 1 has no declared count: a count without σ would be N in clear.
    await expect(call(1, 'update', at(await entry(memberKeys[1]!, body(1), { countEstimate: 400, mechanism: mechanism(8 / 400), globalVersion: base })), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_ENTRY', message: expect.stringMatching(/without its noise/) });
    // Member 0's declared count is 400, not 401.
    await expect(call(0, 'update', at(await entry(memberKeys[0]!, body(1), { countEstimate: 401, mechanism: mechanism(8 / 401), globalVersion: base })), UpdateAck, body(1))).rejects.toMatchObject({ code: 'AGG_BAD_ENTRY', message: expect.stringMatching(/without its noise/) });
    expect((await agg.ledger())!.size).toBe(size0);
    await call(0, 'update', at(await entry(memberKeys[0]!, body(1), { countEstimate: 400, mechanism: mechanism(8 / 400), globalVersion: base })), UpdateAck, body(1));
    expect((await agg.rounds())[0]!.contributions).toHaveLength(1);
  });

  it('with DP off the loss and training time are kept for debugging (documented: docs/privacy.md, "What leaves a node")', async () => {
    const { agg, call, memberKeys, lines } = await setup({ mode: 'off', epsilon: 8, delta: 1e-5 });
    await call(0, 'update', header(await entry(memberKeys[0]!, body(1), { sampleCount: 10 }), { weight: 10, privacy: [], loss: LOSS, trainSeconds: TRAIN_SECONDS }), UpdateAck, body(1));
    const c = (await agg.rounds())[0]!.contributions[0]!;
    expect(c).toMatchObject({ weight: 10, loss: LOSS, trainSeconds: TRAIN_SECONDS });
    expect(lines.join('\n')).toContain(String(LOSS));
  });
});
