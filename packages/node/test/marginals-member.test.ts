import { describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { UpdateHeader, type JoinResponse } from '@fedtwin/protocol';
import { RdpAccountant, SKELLAM_TAIL_LOG2, seededRandom, skellamTailBound } from '@fedtwin/dp';
import { scheduleFor } from '@fedtwin/marginals';
import { agreedJoin } from '../src/consortium-check.ts';
import { rebuildSpending, savedEpsilon, type OwnLedgerEntry } from '../src/privacy.ts';
import { shareBound, shareLambda, skellamCountShare } from '../src/marginals/noise.ts';
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

  it('noise shares (convention Sk(μ) = Poisson(μ) − Poisson(μ), variance 2μ): m members\' integer Sk(μ/m) shares sum to the exact integer total plus Sk(μ)', () => {
    const cells = 20_000;
    const counts = Float64Array.from({ length: cells }, (_, i) => (i * 7919) % 23);
    expect(skellamCountShare(counts, 0, 3, seededRandom([1]))).toEqual(counts); // DP off: the counts
    const mu = 18.6708984375; // WDBC's tree round at ε = 8 (on the 1/1024 grid)
    const m = 3;
    // λ = μ/m exactly, as a rational, though μ/3 is not a double
    const lam = shareLambda(mu, m);
    expect(lam.num * 3 * 1024).toBe(mu * 1024 * lam.den);
    const bound = shareBound(mu, m);
    expect(bound).toBe(skellamTailBound(mu / m, SKELLAM_TAIL_LOG2));
    const shares = [0, 1, 2].map((k) => skellamCountShare(counts, mu, m, seededRandom([7, k])));
    const noise = new Float64Array(cells);
    for (let i = 0; i < cells; i++) {
      let sum = 0;
      for (const sh of shares) {
        expect(Number.isInteger(sh[i]!)).toBe(true);
        expect(Math.abs(sh[i]! - counts[i]!)).toBeLessThanOrEqual(bound);
        sum += sh[i]!;
      }
      noise[i] = sum - m * counts[i]!; // every member here holds the same counts: the total is m·counts
    }
    // Sk(μ): mean 0, variance 2μ, fourth central moment 2μ + 3(2μ)²; sample mean and variance within 5 standard errors
    const mean = noise.reduce((a, x) => a + x, 0) / cells;
    const v = noise.reduce((a, x) => a + (x - mean) ** 2, 0) / (cells - 1);
    expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt((2 * mu) / cells));
    const seVar = Math.sqrt((2 * mu + 2 * (2 * mu) ** 2) / cells);
    expect(Math.abs(v - 2 * mu)).toBeLessThan(5 * seVar);
    // the law, not only the moments: χ² against the Skellam(μ) pmf P(k) = Σ_j Pois(j + |k|) Pois(j)
    const logPois = (j: number) => { let s = -mu + j * Math.log(mu); for (let i = 2; i <= j; i++) s -= Math.log(i); return s; };
    const pmf = (k: number) => { let p = 0; for (let j = 0; j < 200; j++) p += Math.exp(logPois(j + Math.abs(k)) + logPois(j)); return p; };
    const hist = new Map<number, number>();
    for (const x of noise) hist.set(x, (hist.get(x) ?? 0) + 1);
    let chi = 0;
    let dof = -1;
    let restObs = cells;
    let restExp = cells;
    for (let k = -30; k <= 30; k++) {
      const e = pmf(k) * cells;
      if (e < 20) continue;
      const o = hist.get(k) ?? 0;
      chi += (o - e) ** 2 / e;
      restObs -= o;
      restExp -= e;
      dof++;
    }
    chi += (restObs - restExp) ** 2 / restExp;
    dof++;
    // upper 1e-6 quantile of χ²(dof), Wilson–Hilferty
    expect(chi).toBeLessThan(dof * (1 - 2 / (9 * dof) + 4.75 * Math.sqrt(2 / (9 * dof))) ** 3);
    // a member that drew Sk(μ) instead of Sk(μ/m) would triple the variance: this test would see it
    expect(3 * 2 * mu - 2 * mu).toBeGreaterThan(50 * seVar);
  });

  it('shares are drawn from the OS CSPRNG unless seeded: two unseeded draws differ, two seeded ones agree', async () => {
    const { osRandom } = await import('@fedtwin/dp');
    const counts = new Float64Array(64);
    expect(skellamCountShare(counts, 75.3056640625, 2, osRandom())).not.toEqual(skellamCountShare(counts, 75.3056640625, 2, osRandom()));
    expect(skellamCountShare(counts, 75.3056640625, 2, seededRandom([3, 1]))).toEqual(skellamCountShare(counts, 75.3056640625, 2, seededRandom([3, 1])));
    expect(() => shareLambda(1 / 3, 2)).toThrow(expect.objectContaining({ code: 'NODE_PRIVACY_MISMATCH' }));
  });

  it('counts travel in whole HE quanta: summed and read back they are the counts; a cell above the cap is capped (sensitivity stays 1)', () => {
    const u = roundUnits({ unit: 64 / 32767, qmax: 32767 }, shareBound(18.6708984375, 2));
    expect(u).toEqual({ unit: 64 / 32767, cap: 16383, resolution: 1 });
    const a = toWire(Float64Array.from([0, 5 - 3, 20_000 + 4]), Float64Array.from([0, 5, 20_000]), u);
    expect(a.capped).toBe(1);
    expect(Array.from(a.quanta!)).toEqual([0, 2, 16383 + 4]);
    const b = toWire(Float64Array.from([1, 2, 3]), Float64Array.from([1, 2, 3]), u);
    const sum = Float64Array.from(a.quanta!, (v, i) => (v + b.quanta![i]!) * u.unit);
    const released = addReleased(new Float32Array(3), sum, u);
    expect(Array.from(released, (x) => Math.round(x * 1000) / 1000)).toEqual([1, 4, 16383 + 7]);
  });

  it('a share bound wider than half the HE range would need several counts per quantum (resolution > 1), which the member refuses for integer noise', () => {
    const u = roundUnits({ unit: 64 / 32767, qmax: 32767 }, 40_000);
    expect(u.resolution).toBe(3);
    expect(toWire(Float64Array.from([3]), Float64Array.from([3]), u).quanta).toBeUndefined();
    // plaintext float32: never
    expect(roundUnits({ unit: 1, qmax: 2 ** 24 }, 40_000).resolution).toBe(1);
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
