import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { createAggregator } from '@fedtwin/aggregator';
import { createTwinVae, encodeTable, inferSchema, initBackend, loadDataset, toCsv, type TableSchema } from '@fedtwin/models';
import type { JoinResponse } from '@fedtwin/protocol';
import { createWireHost, generateIdentity, peerIdOf } from '@fedtwin/wire';
import type { NodeInit } from '../src/api.ts';
import { createNode } from '../src/node.ts';
import { loadData } from '../src/phases/join.ts';

// Issue 13, "one out-of-range value aborts the node (whether a site takes part then depends on one record)".
// A member clamps a numeric value beyond the schema's bounds to the bound and drops a row with a category the
// schema does not declare; its log says how many (counts only, never a value); nothing of it is sent.
type Event = Record<string, unknown>;
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const A = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const schema: TableSchema = {
  target: 'y',
  columns: [
    { name: 'a', kind: 'numeric', min: 0, max: 10, integer: false, decimals: 1 },
    { name: 'c', kind: 'categorical', categories: ['x', 'z'] },
    { name: 'y', kind: 'categorical', categories: ['n', 'p'] },
  ],
};
const initWith = (events: Event[]) => {
  const log = (e: Event) => { events.push(e); };
  return { csvPath: 'site.csv', logger: { info: log, warn: log, error: log } } as unknown as NodeInit;
};
const joinWith = (privacy: Record<string, unknown>) => ({
  schema,
  privacy: privacyPolicyOf(parseManifest({ consortium: 'c', aggregator: AGG, members: [{ peerId: A }], rounds: { total: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 }, privacy })),
}) as unknown as JoinResponse;

describe('values outside the schema', () => {
  it('loadData clamps out-of-range numbers, drops rows with an undeclared category, and logs counts only', () => {
    const events: Event[] = [];
    const csv = {
      header: ['a', 'c', 'y'],
      rows: [['1.5', 'x', 'n'], ['987654321', 'x', 'p'], ['-31337', 'z', 'n'], ['2.5', 'q', 'p'], ['3.5', 'z', 'maybe'], ['4.5', 'x', 'p']],
    };
    const { data } = loadData(initWith(events), joinWith({ mode: 'record' }), csv);
    expect(data.rows).toBe(4);
    expect(Array.from(data.x.filter((_, i) => i % 3 === 0))).toEqual([0.15, 1, 0, 0.45].map(Math.fround));
    const clamped = events.find((e) => e.event === 'data-clamped');
    expect(clamped).toMatchObject({ clamped: { a: 2 }, clampedTotal: 2, dropped: { c: 1, y: 1 }, droppedTotal: 2, rows: 4 });
    const text = JSON.stringify(events);
    for (const value of ['987654321', '31337', '"q"', 'maybe']) expect(text).not.toContain(value);
    // Nothing to clamp or drop: no line.
    const quiet: Event[] = [];
    loadData(initWith(quiet), joinWith({ mode: 'record' }), { header: csv.header, rows: [csv.rows[0]!, csv.rows[5]!] });
    expect(quiet.some((e) => e.event === 'data-clamped')).toBe(false);
  });

  it('with a unit column, the unit indices follow the rows kept (a patient whose only row was dropped is gone)', () => {
    const events: Event[] = [];
    const csv = {
      header: ['pid', 'a', 'c', 'y'],
      rows: [['P1', '1', 'x', 'n'], ['P2', '2', 'q', 'p'], ['P3', '3', 'z', 'n'], ['P1', '4', 'x', 'p'], ['P3', '99', 'q', 'n']],
    };
    const loaded = loadData(initWith(events), joinWith({ mode: 'record', unitColumn: 'pid' }), csv);
    expect(loaded.data.rows).toBe(3);
    expect(loaded.unitCount).toBe(2);
    expect(Array.from(loaded.units!)).toEqual([0, 1, 0]);
    expect(events.find((e) => e.event === 'data-clamped')).toMatchObject({ droppedTotal: 2, clampedTotal: 0, rows: 3, units: 2 });
  });
});

describe('one absurd value in a federation', () => {
  let dir = '';
  beforeAll(async () => {
    await initBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'fedtwin-data-clamped-'));
  });
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('the member joins and trains; its log says one value was clamped; the aggregator hears nothing of it', async () => {
    const ds = await loadDataset('breast_cancer_wdbc');
    const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
    const rows = ds.rows.slice(0, 100).map((r) => [...r]);
    rows[37]![0] = '123456789'; // mean_radius of a giant
    await writeFile(join(dir, 'site.csv'), toCsv(ds.header, rows));
    const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1 };
    const layout = encodeTable({ schema, rows: [] });
    const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: 2, hidden: 8, seed: 1 });
    const modelValues = probe.sharedSize;
    probe.dispose();
    const key = await generateIdentity();
    const aggKey = await generateIdentity();
    const aggHost = await createWireHost({ privateKey: aggKey, allow: [peerIdOf(key)] });
    const manifest = parseManifest({
      consortium: 'clamped', aggregator: aggHost.peerId, members: [{ peerId: peerIdOf(key) }], model,
      training: { epochs: 1, batchSize: 16, learningRate: 0.003 },
      rounds: { total: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 600 },
      secureAggregation: { scheme: 'plaintext' },
    });
    const aggEvents: Event[] = [];
    const aggLog = (e: Event) => { aggEvents.push(e); };
    const agg = await createAggregator({
      host: aggHost, dataDir: join(dir, 'agg-state'), consortium: manifest.consortium, members: [peerIdOf(key)], schema, model, modelValues, strategy: 'fedavg',
      training: manifest.training, rounds: { totalRounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 600 },
      privacy: privacyPolicyOf(manifest), secureAggregation: secureAggregationOf(manifest), manifest: { manifest, hash: manifestHash(manifest) },
      ledger: { dir: join(dir, 'agg-ledger'), identity: aggKey }, logger: { info: aggLog, warn: aggLog, error: aggLog },
    });
    const events: Event[] = [];
    const record = (e: Event) => { events.push(e); };
    const h = await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] });
    const node = await createNode({
      host: h, aggregator: aggHost.addrs()[0]!, dataDir: join(dir, 'site', 'state'), csvPath: join(dir, 'site.csv'), backend: 'cpu',
      logger: { info: record, warn: record, error: record }, consortium: { manifest, hash: manifestHash(manifest) }, identity: key,
      ledgerDir: join(dir, 'site', 'ledger'), heKeyFile: join(dir, 'site', 'he-secret.key'), seed: 1, unreachableGiveUpSeconds: 30,
    });
    try {
      await node.run();
    } finally {
      await node.stop().catch(() => undefined);
      await h.stop().catch(() => undefined);
      await agg.stop().catch(() => undefined);
      await aggHost.stop().catch(() => undefined);
    }
    expect(events.find((e) => e.event === 'data-clamped')).toMatchObject({ clamped: { mean_radius: 1 }, clampedTotal: 1, droppedTotal: 0, rows: 100 });
    expect(events.filter((e) => e.event === 'contributed').map((e) => e.round)).toEqual([1]);
    expect(events.some((e) => e.event === 'federation-finished')).toBe(true);
    expect(JSON.stringify(events)).not.toContain('123456789');
    expect(JSON.stringify(aggEvents)).not.toMatch(/clamp|123456789/);
  }, 120_000);
});
