import { describe, expect, it } from 'vitest';
import { createPrng, createRng, dirichletSplit, encodeTable, fidelityReport, loadDatasetTable, seededNoise, trainTestSplit } from '@fedtwin/models';
import type { Table } from '@fedtwin/models';
import { MST_ROUNDS, fitMst, fitReleased, marginalsFit, marginalsGenerator, memberCounts, mstSchedule, noiseShare, roundRequest, sampleTable } from '../src/index.ts';

async function pimaSites(seed: number): Promise<{ train: Table; test: Table; sites: Table[] }> {
  const full = await loadDatasetTable('pima_diabetes');
  const enc = encodeTable(full);
  const split = trainTestSplit(full.rows.length, 0.2, seed, Array.from(enc.cond));
  const pick = (idx: number[]): Table => ({ schema: full.schema, rows: idx.map((i) => full.rows[i]) });
  const parts = dirichletSplit(split.train.map((i) => enc.cond[i]), 3, 0.5, seed);
  return { train: pick(split.train), test: pick(split.test), sites: parts.map((p) => pick(p.map((j) => split.train[j]))) };
}

/** The three rounds as the daemons run them: each site counts its segment, adds its noise share, the vectors are summed. */
function federate(sites: Table[], epsilon: number, shares: (v: Float64Array, sigma: number) => Float64Array): { released: Float64Array; schedule: ReturnType<typeof mstSchedule> } {
  const schedule = mstSchedule(sites[0].schema, { epsilon, delta: 1e-5 });
  const released = new Float64Array(schedule.values);
  for (let round = 1; round <= MST_ROUNDS; round++) {
    const req = roundRequest(schedule, round, released); // every member derives the same request from what was released
    for (const t of sites) {
      const mine = shares(memberCounts(schedule, req, t), req.sigma);
      for (let i = 0; i < mine.length; i++) released[req.segment.offset + i] += mine[i];
    }
  }
  return { released, schedule };
}

describe('federated MST schedule', () => {
  it('without noise, the three summed rounds fit exactly the model fitMst fits over the same sites', async () => {
    const { sites } = await pimaSites(1);
    const { released, schedule } = federate(sites, Infinity, (v) => v);
    const model = fitReleased(schedule, released);
    const ref = fitMst(sites, { epsilon: Infinity, delta: 1e-5 });
    expect(model).toEqual(ref.model);
    expect(schedule.plan.mechanisms).toEqual([]);
    // The same run through the FederatedFit interface (what the node uses) ends with the same generator.
    const fit = marginalsFit(schedule);
    const sums = new Float64Array(fit.values);
    for (let round = 1; round <= fit.rounds; round++) {
      for (const t of sites) {
        const c = fit.contribution(round, sums, t);
        expect(c.mechanism).toBeUndefined();
        for (let i = 0; i < c.values.length; i++) sums[c.offset + i] += c.values[i];
      }
    }
    expect(fit.finish(sums).sample(50, { seed: 9 }).rows).toEqual(marginalsGenerator(ref.model).sample(50, { seed: 9 }).rows);
  });

  it('with each member adding its noise share, ε = 8: fidelity near fitMst, spends the plan\'s three q = 1 Gaussians', async () => {
    const { train, test, sites } = await pimaSites(2);
    const noise = seededNoise(createRng(3));
    const { released, schedule } = federate(sites, 8, (v, sigma) => noiseShare([v], sigma, sites.length, noise)[0]);
    const model = fitReleased(schedule, released);
    const prng = createPrng('s');
    const synth = sampleTable(model, train.rows.length, () => prng.next());
    const fid = fidelityReport(test, synth).mean;
    expect(fid).toBeGreaterThan(0.88); // bench/marginals.ts: .927 ± .006 for fitMst at ε = 8
    expect(schedule.plan.mechanisms.map((m) => m.sampleRate)).toEqual([1, 1, 1]);
    const r1 = roundRequest(schedule, 1, released);
    expect(r1.mechanism?.steps).toBe(schedule.plan.oneWay.count);
  });

  it('layout: segments tile the vector; a request never overflows its segment; bad rounds are typed errors', async () => {
    const { sites } = await pimaSites(3);
    const s = mstSchedule(sites[0].schema, { epsilon: 8, delta: 1e-5 });
    expect(s.segments[1].offset).toBe(s.segments[0].size);
    expect(s.segments[2].offset + s.segments[2].size).toBe(s.values);
    expect(() => roundRequest(s, 4, new Float64Array(s.values))).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
    expect(() => roundRequest(s, 1, new Float64Array(3))).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });
});
