import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { AggregatorStore } from '@fedtwin/aggregator';
import { loadManifest, secureAggregationOf } from '@fedtwin/consortium';
import { accountMechanisms, memberCounts, roundRequest, scheduleFor } from '@fedtwin/marginals';
import { loadDataset, parseCsv, tableFromCsv, type TableSchema } from '@fedtwin/models';
import { openLedger, parseEntry, verifyLedgerDir } from '@fedtwin/ledger';
import { rebuildSpending, savedEpsilon, type OwnLedgerEntry } from '../../node/src/privacy.ts';
import { NodeStore } from '@fedtwin/node';
import { CLI_BIN } from '../src/index.ts';

// `fedtwin sim --generator marginals`, end to end with real processes: an aggregator and 2 nodes on
// 127.0.0.1, BFV secure aggregation (named: the default is secagg, test/e2e-sim.test.ts), record-level DP at ε = 8
// (OS-CSPRNG noise), three rounds of counts.
describe('fedtwin sim --generator marginals (real processes)', () => {
  let out = '';
  let report: Record<string, any>;
  let schema: TableSchema;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'fedtwin-marginals-'));
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--generator', 'marginals', '--aggregation', 'bfv', '--nodes', '2', '--seed', '5', '--out', out, '--progress', 'none', '--timeout', '150'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8'));
  }, 180_000);
  afterAll(async () => { if (out) await rm(out, { recursive: true, force: true }); });

  it('writes the same outputs as the vae generator: synthetic.csv with the input\'s columns and formats, test.csv, split.json, report.json/html', async () => {
    expect(report).toMatchObject({ generator: 'marginals', nodes: 2, rounds: 3, dataset: 'breast_cancer_wdbc' });
    const input = await loadDataset('breast_cancer_wdbc');
    const synth = parseCsv(await readFile(join(out, 'synthetic.csv'), 'utf8'));
    expect(synth.header).toEqual(input.header);
    expect(tableFromCsv(synth.header, synth.rows, schema).rows.length).toBe(report.split.trainRows);
    const split = JSON.parse(await readFile(join(out, 'split.json'), 'utf8'));
    expect(split.test.length).toBe(report.split.testRows);
    expect(split.nodes.map((n: number[]) => n.length)).toEqual(report.split.rowsPerNode);
    expect(parseCsv(await readFile(join(out, 'test.csv'), 'utf8')).rows.length).toBe(report.split.testRows);
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('<html');
    expect(report.fidelity.mean).toBeGreaterThan(0.8);
    for (const i of [0, 1]) {
      const model = JSON.parse(await readFile(join(out, 'nodes', String(i), 'model.json'), 'utf8'));
      expect(model).toMatchObject({ format: 'fedtwin-model', generator: 'marginals', privacy: { mode: 'record', delta: 1e-5 } });
    }
  });

  it('the ledger verifies, and each member\'s signed ε is what the accountant gives for the schedule\'s three q = 1 Skellam measurements', async () => {
    expect(report.ledger.verified).toEqual({ aggregator: true, replicas: [true, true] });
    const v = await verifyLedgerDir(join(out, 'ledger'));
    expect(v.ok).toBe(true);
    const { epsilon } = accountMechanisms(scheduleFor(schema, {}, { epsilon: 8, delta: 1e-5 }).plan.mechanisms, 1e-5);
    expect(epsilon).toBeLessThanOrEqual(8);
    expect(epsilon).toBeGreaterThan(7.999);
    if (!v.ok) throw new Error('ledger verify failed');
    const perNode = Object.values(v.summary.epsilonPerNode);
    expect(perNode).toHaveLength(2);
    for (const e of perNode) expect(Math.abs(e - epsilon)).toBeLessThan(1e-9 * epsilon);
    expect(v.summary.mechanismsChecked).toBe(6); // 2 members × 3 rounds, each recomputed by verify
    for (const n of report.privacy.perNode) expect(n[0]).toMatchObject({ mode: 'record', sampleRate: 1, steps: scheduleFor(schema, {}, { epsilon: 8, delta: 1e-5 }).plan.mechanisms.reduce((s, m) => s + m.steps, 0) });
  });

  it('every signed contribution names its Skellam noise (μ of its measurement, l1 = l2 = 1), and a budget rebuilt from those entries is the ε ledger verify recomputes', async () => {
    const plan = scheduleFor(schema, {}, { epsilon: 8, delta: 1e-5 }).plan;
    expect(plan.noise).toBe('skellam');
    const ledger = await openLedger({ dir: join(out, 'ledger'), readOnly: true });
    const own = new Map<string, OwnLedgerEntry[]>();
    const measured = new Map<string, number[]>();
    try {
      for (let i = 0; i < ledger.size; i++) {
        const e = parseEntry(await ledger.getEntryBytes(i));
        const p = e.payload;
        if (p.type !== 'contribution') continue;
        const k = plan.mechanisms.findIndex((m) => m.skellam!.mu === p.mechanism?.mu);
        expect(k).toBeGreaterThanOrEqual(0);
        expect(p.mechanism).toEqual({ kind: 'skellam', sampleRate: 1, noiseMultiplier: plan.mechanisms[k]!.noiseMultiplier, steps: plan.mechanisms[k]!.steps, delta: 1e-5, mu: plan.mechanisms[k]!.skellam!.mu, l1: 1, l2: 1 });
        own.set(p.node, [...(own.get(p.node) ?? []), { index: i, leafHash: 'x'.repeat(64), type: 'contribution', round: p.round, epsilonTotal: p.epsilonTotal, delta: p.delta }]);
        measured.set(p.node, [...(measured.get(p.node) ?? []), k]);
      }
    } finally {
      await ledger.close();
    }
    const v = await verifyLedgerDir(join(out, 'ledger'));
    if (!v.ok) throw new Error('ledger verify failed');
    expect(own.size).toBe(2);
    for (const [node, entries] of own) {
      expect(measured.get(node)).toEqual([0, 1, 2]);
      const rebuilt = rebuildSpending(entries, {
        policy: { mode: 'record', epsilon: 8, delta: 1e-5, record: { clip: 1 } }, rows: 100, training: { batchSize: 32, epochs: 1 }, totalRounds: 3, own: {}, scheduled: plan.mechanisms,
      });
      expect(rebuilt.privacy.record!.mechanisms.every((m) => m.skellam !== undefined)).toBe(true);
      const eps = savedEpsilon(rebuilt.privacy, 'record', 1e-5);
      expect(Math.abs(eps - v.summary.epsilonPerNode[node]!)).toBeLessThan(1e-9 * eps);
      expect(eps).toBeLessThanOrEqual(8);
    }
  });

  it('the aggregator holds only BFV ciphertexts of the members\' counts, and no key to open them', async () => {
    const { manifest } = await loadManifest(join(out, 'consortium.json'));
    const sa = secureAggregationOf(manifest);
    if (sa.scheme !== 'bfv') throw new Error('expected BFV');
    const he = await import('@fedtwin/he');
    const ctx = await he.createHeContext(sa.params);
    const schedule = scheduleFor(schema, {}, { epsilon: 8, delta: 1e-5 });
    // Node 0's exact round-3 counts (its request follows from the counts released by rounds 1 and 2, which every
    // member holds) as they would travel unencrypted: f32 in HE quanta. Never in the stored bytes.
    const nodeStore = await NodeStore.open(join(out, 'nodes', '0', 'state'));
    const saved = await nodeStore.load();
    await nodeStore.close();
    const released = new Float32Array(saved!.global.buffer.slice(saved!.global.byteOffset, saved!.global.byteOffset + saved!.global.byteLength));
    expect(released.length).toBe(schedule.values);
    const node0 = parseCsv(await readFile(join(out, 'nodes', '0', 'data.csv'), 'utf8'));
    const req = roundRequest(schedule, 3, released);
    const exact = memberCounts(schedule, req, tableFromCsv(node0.header, node0.rows, schema));
    const unit = (sa.params.clip ?? he.DEFAULTS.clip) / he.quantMax(sa.params.quantBits ?? he.DEFAULTS.quantBits);
    const start = exact.findIndex((c, i) => c > 0 && exact[i + 1]! > 0 && exact[i + 2]! > 0);
    expect(start).toBeGreaterThanOrEqual(0);
    const plain = Buffer.from(Float32Array.from(exact.subarray(start, start + 3), (c) => c * unit).buffer);
    const store = await AggregatorStore.open(join(out, 'aggregator', 'state'));
    try {
      // The aggregator keeps the updates of the last aggregated round (for probes): round 3's, one per member.
      const ups = await store.updatesOf(3);
      expect(ups.size).toBe(2);
      for (const body of ups.values()) {
        const h = he.readUpdateHeader(ctx, body);
        expect(h.kind).toBe(he.KIND_FRESH);
        expect(h.valueCount).toBe(schedule.values);
        expect(Buffer.from(body).includes(plain)).toBe(false);
        // A count vector in clear is mostly zero bytes (other rounds' segments); a ciphertext's bytes are near uniform.
        const zeros = body.reduce((a, b) => a + (b === 0 ? 1 : 0), 0) / body.length;
        expect(zeros).toBeLessThan(0.02);
      }
      // What it published: sums, still encrypted.
      for (const version of [1, 2, 3]) {
        const agg = await store.getAggregate(version);
        expect(he.readUpdateHeader(ctx, agg!.body).kind).toBe(he.KIND_SUM_COMPACT);
      }
    } finally {
      await store.close();
      ctx.dispose();
    }
    const files = await readdir(join(out, 'aggregator'), { recursive: true });
    expect(files.filter((f) => f.endsWith('.key')).map((f) => relative('.', f))).toEqual(['identity.key']);
  });
});
