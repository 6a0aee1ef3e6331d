import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf, type Manifest } from '@fedtwin/consortium';
import { createAggregator, type Aggregator } from '@fedtwin/aggregator';
import type { EntryPayload } from '@fedtwin/ledger';
import { createTwinVae, encodeTable, inferSchema, initBackend, loadDataset, toCsv, type TableSchema } from '@fedtwin/models';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import type { PrivateKey } from '@libp2p/interface';
import { createNode } from '../src/node.ts';
import { columnReleaseLength } from '@fedtwin/marginals';
import { readFile } from 'node:fs/promises';
import { contributionEntries } from './helpers/in-process-federation.ts';

// Issue 13 item 7: a member's privacy budget cannot be reset by losing (or deleting) its state, and a
// stricter ε configured after a run applies. A real aggregator and one real member (in-process, plaintext
// aggregation, record-level DP at a calibrated z) run a 4-round federation; the member is stopped once it
// has contributed to 2 rounds and restarted on the same ledger replica and identity.
const ROUNDS = 4;

type Event = Record<string, unknown>;
interface Fixture {
  dir: string;
  manifest: Manifest;
  schema: TableSchema;
  modelValues: number;
  key: PrivateKey;
  aggKey: PrivateKey;
  aggHost: WireHost;
  agg: Aggregator;
}

let fx: Fixture | undefined;
afterEach(async () => {
  if (!fx) return;
  await fx.agg.stop().catch(() => undefined);
  await fx.aggHost.stop().catch(() => undefined);
  await rm(fx.dir, { recursive: true, force: true });
  fx = undefined;
});
beforeAll(async () => { await initBackend('cpu'); });

async function consortium(opts: { calibrate?: boolean } = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'fedtwin-budget-ledger-'));
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  await writeFile(join(dir, 'records.csv'), toCsv(ds.header, ds.rows.slice(0, 200)));
  const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1, ...(opts.calibrate ? { calibrate: true } : {}) };
  const layout = encodeTable({ schema, rows: [] });
  const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: 2, hidden: 8, seed: 1 });
  // With model.calibrate the column release's counts ride behind the model's values.
  const modelValues = probe.sharedSize + (opts.calibrate ? columnReleaseLength(schema) : 0);
  probe.dispose();
  const key = await generateIdentity();
  const aggKey = await generateIdentity();
  const aggHost = await createWireHost({ privateKey: aggKey, allow: [peerIdOf(key)] });
  const manifest = parseManifest({
    consortium: 'budget', aggregator: aggHost.peerId, members: [{ peerId: peerIdOf(key) }], model,
    training: { epochs: 1, batchSize: 64, learningRate: 0.003 },
    rounds: { total: ROUNDS, quorum: 1, minParticipants: 1, deadlineSeconds: 600 },
    secureAggregation: { scheme: 'plaintext' },
    privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
  });
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const agg = await createAggregator({
    host: aggHost, dataDir: join(dir, 'agg-state'), consortium: manifest.consortium, members: [peerIdOf(key)], schema, model, modelValues, strategy: 'fedavg',
    training: manifest.training, rounds: { totalRounds: ROUNDS, quorum: 1, minParticipants: 1, deadlineSeconds: 600 },
    privacy: privacyPolicyOf(manifest), secureAggregation: secureAggregationOf(manifest), manifest: { manifest, hash: manifestHash(manifest) },
    ledger: { dir: join(dir, 'agg-ledger'), identity: aggKey }, logger: quiet,
  });
  return { dir, manifest, schema, modelValues, key, aggKey, aggHost, agg };
}

/** Runs the member until the federation ends, or stops it once it holds global version `stopAtVersion` (its contributions to earlier rounds persisted). */
async function runMember(f: Fixture, opts: { epsilon?: number; stopAtVersion?: number } = {}): Promise<{ events: Event[]; error?: unknown }> {
  const events: Event[] = [];
  const h = await createWireHost({ privateKey: f.key, listen: [], allow: [f.aggHost.peerId] });
  let node: Awaited<ReturnType<typeof createNode>> | undefined;
  const record = (obj: Event) => {
    events.push(obj);
    if (opts.stopAtVersion !== undefined && obj.event === 'global-updated' && obj.version === opts.stopAtVersion) void node?.stop();
  };
  node = await createNode({
    host: h, aggregator: f.aggHost.addrs()[0]!, dataDir: join(f.dir, 'site', 'state'), csvPath: join(f.dir, 'records.csv'), backend: 'cpu',
    logger: { info: record, warn: record, error: record }, consortium: { manifest: f.manifest, hash: manifestHash(f.manifest) }, identity: f.key,
    ledgerDir: join(f.dir, 'site', 'ledger'), heKeyFile: join(f.dir, 'site', 'he-secret.key'), seed: 1, seededNoise: true, unreachableGiveUpSeconds: 30,
    ...(opts.epsilon !== undefined ? { privacy: { epsilon: opts.epsilon } } : {}),
  });
  let error: unknown;
  try {
    await node.run();
  } catch (e) {
    error = e;
  } finally {
    await node.stop().catch(() => undefined);
    await h.stop().catch(() => undefined);
  }
  if (opts.stopAtVersion === undefined && error) throw error;
  return { events, ...(error ? { error } : {}) };
}

/** The member's own contribution entries in its ledger replica (verified, synced before each aggregate it applied), in log order. */
async function ledgerContributions(f: Fixture): Promise<Array<Extract<EntryPayload, { type: 'contribution' }>>> {
  return contributionEntries(join(f.dir, 'site', 'ledger'));
}

const spentOf = (events: Event[]) => (events.find((e) => e.event === 'privacy')!.spent as { record: { epsilon: number; budget: number } }).record;
const contributedRounds = (events: Event[]) => events.filter((e) => e.event === 'contributed').map((e) => Number(e.round));

/**
 * Runs the member to global version 2 (contributions to rounds 1 and 2), deletes its state, runs it again to the end:
 * the restarted member must start from the budget its two signed entries give (rebuilt, not fresh) and take part in
 * rounds 3 and 4 only.
 */
async function loseStateAfterTwoRounds(f: Fixture): Promise<{ before: Array<Extract<EntryPayload, { type: 'contribution' }>>; after: Array<Extract<EntryPayload, { type: 'contribution' }>>; signed: number }> {
  const first = await runMember(f, { stopAtVersion: 2 });
  expect(contributedRounds(first.events)).toEqual([1, 2]);
  const before = await ledgerContributions(f);
  expect(before.map((c) => c.round)).toEqual([1, 2]);
  const signed = before.at(-1)!.epsilonTotal;
  expect(signed).toBeGreaterThan(0);
  await rm(join(f.dir, 'site', 'state'), { recursive: true, force: true });
  const second = await runMember(f);
  // The budget it starts from is the ledger's, not a fresh one ...
  expect(second.events.find((e) => e.event === 'budget-rebuilt')).toMatchObject({ contributions: 2, lastRound: 2 });
  expect(Math.abs(spentOf(second.events).epsilon - signed)).toBeLessThanOrEqual(1e-9 * signed);
  // ... it takes part in rounds 3 and 4 only, and its totals carry on from the ledger's.
  expect(contributedRounds(second.events)).toEqual([3, 4]);
  expect(second.events.find((e) => e.event === 'federation-finished')).toBeDefined();
  const after = await ledgerContributions(f);
  expect(after.map((c) => c.round)).toEqual([1, 2, 3, 4]);
  expect(after[2]!.epsilonTotal).toBeGreaterThan(signed);
  return { before, after, signed };
}

describe('a member\'s privacy budget and its ledger', () => {
  it('state deleted after 2 contributed rounds: the restarted member spends on from exactly what its ledger entries say', async () => {
    fx = await consortium();
    const { after } = await loseStateAfterTwoRounds(fx);
    // Four rounds at one calibrated z: exactly what a member that never lost its state would have spent.
    expect(after[3]!.epsilonTotal).toBeLessThanOrEqual(8);
  }, 240_000);

  it('a stricter ε configured after a run wins over the saved budget, and the rest of the federation fits in it', async () => {
    fx = await consortium();
    const first = await runMember(fx, { stopAtVersion: 2 });
    expect(contributedRounds(first.events)).toEqual([1, 2]);
    const spent2 = (await ledgerContributions(fx)).at(-1)!.epsilonTotal;
    const stricter = (spent2 + 8) / 2;
    const second = await runMember(fx, { epsilon: stricter });
    const opened = spentOf(second.events);
    expect(opened.budget).toBe(stricter);
    expect(contributedRounds(second.events)).toEqual([3, 4]);
    // More noise from round 3 on: the remaining rounds are calibrated on what the stricter budget leaves.
    const z = (e: Event[]) => ((e.find((x) => x.event === 'contributed')!.privacy as Array<{ noiseMultiplier: number }>)[0]!.noiseMultiplier);
    expect(z(second.events)).toBeGreaterThan(z(first.events));
    const all = await ledgerContributions(fx);
    expect(all.map((c) => c.round)).toEqual([1, 2, 3, 4]);
    expect(all[3]!.epsilonTotal).toBeLessThanOrEqual(stricter);
    // A looser ε later does not lift it: the saved, stricter budget stands.
    const third = await runMember(fx, { epsilon: 50 });
    expect(spentOf(third.events).budget).toBe(stricter);
    expect(third.events.some((e) => e.event === 'budget-kept')).toBe(true);
  }, 240_000);

  it('a calibrating consortium (model.calibrate): state deleted after the column release and one training round, the restarted member rebuilds both from its ledger and ends within ε with a calibrated model', async () => {
    fx = await consortium({ calibrate: true });
    const { before, after } = await loseStateAfterTwoRounds(fx);
    // Round 1 signed the release (Skellam counts at q = 1), round 2 DP-SGD.
    expect(before[0]!.mechanism).toMatchObject({ kind: 'skellam', sampleRate: 1, l1: 1, l2: 1 });
    expect(before[1]!.mechanism?.kind).toBeUndefined();
    expect(after[3]!.epsilonTotal).toBeLessThanOrEqual(8);
    // The restarted member caught up through aggregate 1 (the released counts) and released a calibrated model.
    const model = JSON.parse(await readFile(join(fx.dir, 'site', 'model.json'), 'utf8'));
    expect(model.model.calibration.columns).toHaveLength(30);
    expect(model.privacy.epsilon).toBeCloseTo(after[3]!.epsilonTotal, 9);
  }, 240_000);
});
