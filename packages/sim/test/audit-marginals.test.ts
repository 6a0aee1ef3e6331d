import { describe, expect, it } from 'vitest';
import { seededRandom } from '@fedtwin/dp';
import { accountMechanisms, memberCounts, roundRequest, scheduleFor, type MstSchedule } from '@fedtwin/marginals';
import { inferSchema, loadDataset, tableFromCsv, type Table } from '@fedtwin/models';
import { skellamCountShare } from '../../node/src/marginals/noise.ts';
import { auditReport, flipCoins, makeMarginalsCanaryRows, marginalsCanaryScores, recordsWithCanaries } from '../src/audit.ts';

// The one-run audit of the marginals generator (docs/privacy-audit.md), in process and in seconds: the federated
// protocol of packages/node without the network — each round's public request, every member's exact counts plus its
// exact Skellam share Sk(μ/m) (what a member sends under BFV), summed and released — over two WDBC sites, node 0 with
// the canaries its OS-CSPRNG coins let in. Scored from the released counts as `fedtwin sim --audit` does.
const M = 200;
const MEMBERS = 2;

async function sites() {
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  const table = (rows: string[][]): Table => tableFromCsv(ds.header, rows, schema);
  return { schema, node0: table(ds.rows.slice(0, 250)).rows, node1: table(ds.rows.slice(250, 500)) };
}

/** The three rounds as the members run them: released = Σ_members (counts + Sk(μ/m)), μ the schedule's (0: DP off). */
function federate(s: MstSchedule, tables: Table[], seed: number, noiseless = false): Float32Array {
  const released = new Float32Array(s.values);
  const p = s.plan;
  const mus = p.epsilon === Infinity || noiseless ? [0, 0, 0] : [p.oneWay.mu!, p.select.kind === 'measured' ? p.select.mu! : 0, p.edges.mu!];
  for (const round of [1, 2, 3] as const) {
    const req = roundRequest(s, round, released);
    const sum = new Float64Array(req.segment.size);
    tables.forEach((t, k) => {
      const share = skellamCountShare(memberCounts(s, req, t), mus[round - 1]!, MEMBERS, seededRandom([seed, round, k]));
      for (let j = 0; j < sum.length; j++) sum[j]! += share[j]!;
    });
    for (let j = 0; j < sum.length; j++) released[req.segment.offset + j] = sum[j]!;
  }
  return released;
}

async function audit(epsilon: number, seed: number, noiseless = false) {
  const { schema, node0, node1 } = await sites();
  const canaries = { rows: makeMarginalsCanaryRows(schema, M, seed), included: flipCoins(M) };
  const schedule = scheduleFor(schema, {}, { epsilon, delta: 1e-5 });
  const released = federate(schedule, [{ schema, rows: recordsWithCanaries(node0, canaries, seed) }, node1], seed, noiseless);
  const claimed = epsilon === Infinity ? null : accountMechanisms(schedule.plan.mechanisms, 1e-5).epsilon;
  const scores = marginalsCanaryScores(canaries.rows, schedule, released);
  return { schema, canaries, report: auditReport(scores, canaries, { delta: 1e-5, epsilonClaimed: claimed, node: 0, score: 'tree-edge counts' }) };
}

describe('one-run audit of the marginals generator', () => {
  it('canaries are valid records of the schema (within bounds, declared categories), distinct, and not from the coins', async () => {
    const { schema } = await sites();
    const rows = makeMarginalsCanaryRows(schema, M, 5);
    expect(new Set(rows.map((r) => r.join(','))).size).toBe(M);
    for (const r of rows) {
      schema.columns.forEach((c, k) => {
        if (c.kind === 'numeric') expect(Number(r[k]) >= c.min && Number(r[k]) <= c.max).toBe(true);
        else expect(c.categories).toContain(r[k]);
      });
    }
    expect(makeMarginalsCanaryRows(schema, M, 5)).toEqual(rows); // public: from the seed alone
  });

  it('DP off: the released counts give the canaries away (ε_lower well above 2, over 90 % of guesses right)', async () => {
    const { report } = await audit(Infinity, 11);
    expect(report.epsilonClaimed).toBeNull();
    expect(report.method).toMatch(/Steinke, Nasr & Jagielski 2023/);
    expect(report.epsilonLower).toBeGreaterThan(2);
    expect(report.correct / report.guesses).toBeGreaterThan(0.9);
  });

  it('DP on at ε = 1 and ε = 8: ε_lower ≤ ε_claimed (at ε = 1 the ceiling is above the claim, so a broken noise path would fail)', async () => {
    for (const epsilon of [1, 8]) {
      const { report } = await audit(epsilon, 12);
      expect(report.epsilonClaimed).toBeGreaterThan(0);
      expect(report.epsilonClaimed).toBeLessThanOrEqual(epsilon);
      expect(report.epsilonLower).toBeLessThanOrEqual(report.epsilonClaimed!);
      if (epsilon === 1) expect(report.maxAttainable).toBeGreaterThan(report.epsilonClaimed!);
    }
  });

  it('a member that claims ε = 1 but leaves its noise share out is caught: ε_lower > ε_claimed', async () => {
    const { report } = await audit(1, 13, true);
    expect(report.epsilonClaimed).toBeLessThanOrEqual(1);
    expect(report.epsilonLower).toBeGreaterThan(report.epsilonClaimed!);
  });
});
