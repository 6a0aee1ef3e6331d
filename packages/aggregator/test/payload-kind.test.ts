import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import { JoinResponse, TaskResponse, UpdateAck, f32ToBytes, genesisModelVersion, type ModelConfig, type UpdateHeader } from '@fedtwin/protocol';
import { createAggregator } from '../src/index.ts';

// Issue 14: a marginals consortium sums count vectors, a vae consortium model deltas. The update header says which
// (`payload`), and the aggregator refuses the other kind at the wire boundary, before the body touches the sum.
const silent = { info() {}, warn() {}, error() {} };
const schema = { target: 'y', columns: [{ name: 'x', kind: 'numeric' as const, min: 0, max: 1, integer: false, decimals: 2 }, { name: 'y', kind: 'categorical' as const, categories: ['a', 'b'] }] };
const VALUES = 8;

describe('aggregator: the payload kind of an update', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

  async function consortium(model: ModelConfig) {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-agg-payload-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const key = await generateIdentity();
    const id = peerIdOf(key);
    const aggHost = await createWireHost({ privateKey: await generateIdentity(), allow: [id] });
    const agg = await createAggregator({
      host: aggHost, dataDir: join(dir, 'state'), consortium: 't', members: [id], schema, model, modelValues: VALUES, strategy: 'fedavg',
      training: { epochs: 1, batchSize: 8, learningRate: 0.01 }, rounds: { totalRounds: 3, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, logger: silent,
    });
    const member: WireHost = await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] });
    cleanup.push(async () => { await member.stop(); await agg.stop(); await aggHost.stop(); });
    const addr = aggHost.addrs()[0]!;
    const call = <R>(name: string, header: unknown, response: import('zod').ZodType<R>, body?: Uint8Array) => member.request(addr, name, { header, body }, { response, maxBodyBytes: 0, timeoutMs: 20_000 });
    await call('join', { nodeVersion: 'v24', backend: 'cpu' }, JoinResponse);
    const task = (await call('task', { afterRound: 0, waitMs: 1000 }, TaskResponse)).header;
    expect(task).toMatchObject({ status: 'open', round: 1 });
    const baseHash = genesisModelVersion({ consortium: 't', modelValues: VALUES, strategy: 'fedavg', model });
    const send = (payload: UpdateHeader['payload']) => call('update', {
      round: 1, baseVersion: 0, baseHash, weight: 1, values: VALUES, encoding: 'f32le', privacy: [], entry: '', ...(payload ? { payload } : {}),
    } satisfies UpdateHeader, UpdateAck, f32ToBytes(new Float32Array(VALUES).fill(3)));
    // The open round's base as the task names it (round 2 builds on aggregate 1).
    const sendTo = async (round: number, payload: UpdateHeader['payload']) => {
      const t = (await call('task', { afterRound: round - 1, waitMs: 5000 }, TaskResponse)).header;
      if (t.status !== 'open' || t.round !== round) throw new Error(`round ${round} is not open: ${JSON.stringify(t)}`);
      return call('update', {
        round, baseVersion: t.baseVersion, baseHash: t.baseHash, weight: 1, values: VALUES, encoding: 'f32le', privacy: [], entry: '', ...(payload ? { payload } : {}),
      } satisfies UpdateHeader, UpdateAck, f32ToBytes(new Float32Array(VALUES).fill(3)));
    };
    return { send, sendTo };
  }

  it('a vae consortium refuses a count vector; a marginals consortium refuses a model delta (absent payload included) and takes counts', async () => {
    const vae = await consortium({ kind: 'vae', latentDim: 2, hidden: 4, seed: 1 });
    await expect(vae.send('counts')).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    const marginals = await consortium({ kind: 'marginals', seed: 1 });
    await expect(marginals.send(undefined)).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    await expect(marginals.send('model-delta')).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    expect((await marginals.send('counts')).header).toMatchObject({ accepted: true, round: 1 });
  }, 60_000);

  it('a calibrating vae consortium (model.calibrate) takes counts only in its column release (the round on version 0), model deltas only after it', async () => {
    const vae = await consortium({ kind: 'vae', latentDim: 2, hidden: 4, seed: 1, calibrate: true });
    await expect(vae.sendTo(1, 'model-delta')).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    await expect(vae.sendTo(1, undefined)).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    expect((await vae.sendTo(1, 'counts')).header).toMatchObject({ accepted: true, round: 1 });
    await expect(vae.sendTo(2, 'counts')).rejects.toMatchObject({ code: 'AGG_BAD_UPDATE' });
    expect((await vae.sendTo(2, 'model-delta')).header).toMatchObject({ accepted: true, round: 2 });
  }, 60_000);
});
