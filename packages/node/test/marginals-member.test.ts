import { describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { createRng, fillNormal } from '@fedtwin/models';
import { UpdateHeader, type JoinResponse } from '@fedtwin/protocol';
import { RdpAccountant } from '@fedtwin/dp';
import { scheduleFor } from '@fedtwin/marginals';
import { agreedJoin } from '../src/consortium-check.ts';
import { rebuildSpending, savedEpsilon, type OwnLedgerEntry } from '../src/privacy.ts';
import { countNoiseShare } from '../src/marginals/noise.ts';
import { addReleased, roundUnits, toWire } from '../src/marginals/wire.ts';

const peer = (c: string) => `12D3KooW${c.repeat(44)}`;

function pinned(model: unknown) {
  const manifest = parseManifest({
    consortium: 'c', aggregator: peer('A'), members: [{ peerId: peer('B') }, { peerId: peer('C') }],
    rounds: { total: 3, quorum: 2, minParticipants: 2, deadlineSeconds: 60 }, model, secureAggregation: { scheme: 'plaintext' }, privacy: { mode: 'record' },
  });
  return { manifest, hash: manifestHash(manifest) };
}

describe('marginals member', () => {
  it('an aggregator that announces another generator (or other bins) is refused at join: the manifest pins it', () => {
    const p = pinned({ kind: 'marginals', seed: 1 });
    const m = p.manifest;
    const join = (model: JoinResponse['model']): JoinResponse => ({
      consortium: m.consortium, schema: { columns: [{ name: 'a', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 2 }, { name: 'y', kind: 'categorical', categories: ['0', '1'] }], target: 'y' },
      model, strategy: m.strategy, modelValues: 10, totalRounds: 3, privacy: privacyPolicyOf(m), secureAggregation: secureAggregationOf(m), manifestHash: p.hash,
    });
    expect(agreedJoin(p, join({ kind: 'marginals', seed: 1 })).model.kind).toBe('marginals');
    for (const evil of [{ kind: 'vae', latentDim: 8, hidden: 64, seed: 1 }, { kind: 'marginals', seed: 1, maxBins: 2 }] as const) {
      expect(() => agreedJoin(p, join(evil))).toThrow(expect.objectContaining({ code: 'CONSORTIUM_MISMATCH' }));
    }
  });

  it('a manifest naming the marginals generator must say 3 rounds and record-level DP (or off)', () => {
    expect(() => parseManifest({ consortium: 'c', aggregator: peer('A'), members: [{ peerId: peer('B') }], rounds: { total: 5, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, model: { kind: 'marginals', seed: 1 } }))
      .toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
    expect(() => parseManifest({ consortium: 'c', aggregator: peer('A'), members: [{ peerId: peer('B') }], rounds: { total: 3, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, model: { kind: 'marginals', seed: 1 }, privacy: { mode: 'site', site: { clip: 1, noiseMultiplier: 1 } } }))
      .toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
  });

  it('noise share: none with DP off; N(0, σ²/m) per cell otherwise, so m shares add up to σ²', () => {
    const counts = Float64Array.from({ length: 20_000 }, (_, i) => i % 7);
    expect(countNoiseShare(counts, 0, 3, () => { throw new Error('no noise with DP off'); })).toEqual(counts);
    const rng = createRng(4);
    const normal = (out: Float32Array, std: number) => fillNormal(rng, out, 0, std);
    const shares = [0, 1, 2].map(() => countNoiseShare(counts, 6, 3, normal));
    let sq = 0;
    for (let i = 0; i < counts.length; i++) sq += (shares[0]![i]! + shares[1]![i]! + shares[2]![i]! - 3 * counts[i]!) ** 2;
    expect(Math.sqrt(sq / counts.length)).toBeCloseTo(6, 0); // σ of the sum of 3 shares
  });

  it('counts travel in HE quanta: summed and read back they are the counts; a cell above the cap is capped (sensitivity stays 1)', () => {
    const u = roundUnits({ unit: 64 / 32767, qmax: 32767 }, 6);
    expect(u).toEqual({ unit: 64 / 32767, cap: 16383, resolution: 1 });
    const a = toWire(Float64Array.from([0, 5, 20_000]), Float64Array.from([0, 5, 20_000]), u);
    expect(a.capped).toBe(1);
    const b = toWire(Float64Array.from([1, 2, 3]), Float64Array.from([1, 2, 3]), u);
    const sum = Float64Array.from(a.values, (v, i) => v + b.values[i]!);
    const released = addReleased(new Float32Array(3), sum, u);
    expect(Array.from(released, (x) => Math.round(x * 1000) / 1000)).toEqual([1, 7, 16383 + 3]);
  });

  it('a noise share too wide for half the HE range makes a quantum stand for several counts (the same on every member)', () => {
    const u = roundUnits({ unit: 64 / 32767, qmax: 32767 }, 5000); // 8 σ = 40,000 quanta > 16,383
    expect(u.resolution).toBe(3);
    expect(u.unit).toBeCloseTo(64 / 32767 / 3, 15);
    // count and noise each fit in half the range: the cap (16,383 quanta) and 8 σ of the share
    expect(u.cap * u.unit).toBeLessThanOrEqual(64 / 2 + 1e-9);
    expect(8 * 5000 * u.unit).toBeLessThanOrEqual(64 / 2 + 1e-9);
    const sum = Float64Array.from(toWire(Float64Array.from([30_000]), Float64Array.from([30_000]), u).values);
    expect(addReleased(new Float32Array(1), sum, u)[0]).toBeCloseTo(30_000, 1);
    // plaintext float32: never
    expect(roundUnits({ unit: 1, qmax: 2 ** 24 }, 5000).resolution).toBe(1);
  });

  it('a member that lost its state rebuilds its spending from its signed entries by replaying the schedule\'s mechanisms', () => {
    const schema = { target: 'y', columns: [{ name: 'a', kind: 'numeric' as const, min: 0, max: 100, integer: true, decimals: 0 }, { name: 'y', kind: 'categorical' as const, categories: ['0', '1'] }] };
    const plan = scheduleFor(schema, {}, { epsilon: 8, delta: 1e-5 }).plan;
    const acc = new RdpAccountant();
    const entries: OwnLedgerEntry[] = plan.mechanisms.map((m, i) => ({ index: 10 + i, leafHash: 'x'.repeat(64), type: 'contribution', round: i + 1, epsilonTotal: acc.compose(m).getEpsilon(1e-5).epsilon, delta: 1e-5 }));
    const policy = { mode: 'record' as const, epsilon: 8, delta: 1e-5, record: { clip: 1 } };
    const input = { policy, rows: 100, training: { batchSize: 32, epochs: 1 }, totalRounds: 3, own: {}, scheduled: plan.mechanisms };
    const r = rebuildSpending(entries, input);
    expect(r.lastRound).toBe(3);
    expect(savedEpsilon(r.privacy, 'record', 1e-5)).toBeCloseTo(entries[2]!.epsilonTotal!, 9);
    expect(savedEpsilon(r.privacy, 'record', 1e-5)).toBeLessThanOrEqual(8);
    // an entry that signed less than its round's mechanism spends is not a spending to rebuild from
    const forged = entries.map((e, i) => (i === 1 ? { ...e, epsilonTotal: e.epsilonTotal! * 0.9 } : e));
    expect(() => rebuildSpending(forged, input)).toThrow(expect.objectContaining({ code: 'NODE_BUDGET_UNRECOVERABLE' }));
    // A failed round made measurement 2 twice (rounds 2 and 3, then 4 for the tree): replayed as such.
    const again = new RdpAccountant();
    const seq = [plan.mechanisms[0]!, plan.mechanisms[1]!, plan.mechanisms[1]!, plan.mechanisms[2]!];
    const retried: OwnLedgerEntry[] = seq.map((m, i) => ({ index: 20 + i, leafHash: 'y'.repeat(64), type: 'contribution', round: i + 1, epsilonTotal: again.compose(m).getEpsilon(1e-5).epsilon, delta: 1e-5 }));
    const rr = rebuildSpending(retried, input);
    expect(rr.lastRound).toBe(4);
    expect(savedEpsilon(rr.privacy, 'record', 1e-5)).toBeCloseTo(retried[3]!.epsilonTotal!, 9);
  });

  it('the update header names its payload: counts or model-delta, nothing else', () => {
    const base = { round: 1, baseVersion: 0, baseHash: 'a'.repeat(64), weight: 1, values: 10, encoding: 'f32le', privacy: [], entry: '' };
    expect(UpdateHeader.parse({ ...base, payload: 'counts' }).payload).toBe('counts');
    expect(UpdateHeader.parse(base).payload).toBeUndefined();
    expect(UpdateHeader.safeParse({ ...base, payload: 'rows' }).success).toBe(false);
  });
});
