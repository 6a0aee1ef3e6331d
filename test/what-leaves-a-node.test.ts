import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import { createAggregator, type AggregatorHost, type RoundRecord } from '@fedtwin/aggregator';
import { createNode, type NodeRunResult } from '@fedtwin/node';
import { openLedger, parseEntry } from '@fedtwin/ledger';
import { createTwinVae, encodeTable, inferSchema, initBackend, loadDataset, parseCsv, toCsv } from '@fedtwin/models';
import { Protocols } from '@fedtwin/protocol';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';

// Issue 13 item 3: under DP nothing data-dependent leaves a member unaccounted. A real aggregator (Level
// state, ledger) and two real members (createNode in-process) over 127.0.0.1 run a record-level DP
// federation; a wrapper records every update header the aggregator's handler is given. Site A has 200
// records, 90 % benign; site B 80 records, half and half. Neither its loss, its training time nor its
// record count may reach the aggregator, and site A's synthetic CSV must not reproduce its 90/10 mix.
const SITE_A = { benign: 180, malignant: 20 };
const SITE_B = { benign: 40, malignant: 40 };
const SYNTHETIC_ROWS = 1000;

interface Run {
  headers: Array<Record<string, unknown>>;
  logLines: string[];
  rounds: RoundRecord[];
  ledgerEntries: Array<{ raw: string; payload: Record<string, unknown> }>;
  results: NodeRunResult[];
  /** The target class of each synthetic row of site A and site B. */
  syntheticA: string[];
  syntheticB: string[];
  nodeLogs: string[][];
}

describe('what leaves a node under record-level DP (real aggregator, real members)', () => {
  let dir = '';
  let run: Run;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedtwin-leaves-'));
    run = await federate(dir);
  }, 240_000);
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('the update headers the aggregator receives carry no loss, no training time and weight 1 for both sites (N = 200 and 80)', () => {
    expect(run.headers.length).toBeGreaterThanOrEqual(4); // 2 rounds × 2 members
    for (const h of run.headers) {
      expect(h).not.toHaveProperty('loss');
      expect(h).not.toHaveProperty('trainSeconds');
      expect(h.weight).toBe(1);
    }
  });

  it('the stored contribution records carry no loss, no training time, and the weight does not depend on N', () => {
    const contributions = run.rounds.flatMap((r) => r.contributions);
    expect(contributions.length).toBeGreaterThanOrEqual(4);
    for (const c of contributions) {
      expect(c).not.toHaveProperty('loss');
      expect(c).not.toHaveProperty('trainSeconds');
      expect(c.weight).toBe(1);
    }
  });

  it('the aggregator\'s log lines name no loss, training time or record count', () => {
    const all = run.logLines.join('\n');
    expect(all).not.toMatch(/"loss"|"trainSeconds"|"sampleCount"|loss \d/);
    for (const l of run.logLines.filter((x) => x.includes('"event":"contribution"'))) expect(l).toContain('"weight":1');
    expect(run.logLines.some((x) => x.includes('"event":"update-stats-dropped"'))).toBe(false);
  });

  it('the ledger\'s contribution entries name no sample count', () => {
    const contributions = run.ledgerEntries.filter((e) => e.payload.type === 'contribution');
    expect(contributions.length).toBeGreaterThanOrEqual(4);
    for (const e of contributions) {
      expect(e.payload).not.toHaveProperty('sampleCount');
      expect(e.raw).not.toContain('sampleCount');
    }
  });

  it('the member keeps its own loss in its own log and state (it never leaves the site)', () => {
    const contributed = run.nodeLogs[0]!.filter((l) => l.includes('"event":"contributed"'));
    expect(contributed.length).toBeGreaterThanOrEqual(2);
    for (const l of contributed) expect(l).toMatch(/"loss":\d/);
    expect(run.results[0]!.losses.length).toBeGreaterThanOrEqual(2);
  });

  it('site A (90 % benign) releases the uniform class mix under DP, not its own label frequencies', () => {
    const benign = run.syntheticA.filter((c) => c === '1').length / run.syntheticA.length;
    expect(run.syntheticA.length).toBe(SYNTHETIC_ROWS);
    // Uniform: 0.5 ± 4.4 standard deviations of a binomial(1000, 0.5) share; 0.9 is far outside.
    expect(Math.abs(benign - 0.5)).toBeLessThan(0.07);
  });

  it('a class mix the operator declares is released as declared', () => {
    const benign = run.syntheticB.filter((c) => c === '1').length / run.syntheticB.length;
    expect(Math.abs(benign - 0.2)).toBeLessThan(0.06);
  });
});

async function federate(dir: string): Promise<Run> {
  await initBackend();
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  const targetIndex = ds.header.indexOf('diagnosis');
  const byLabel = (label: string) => ds.rows.filter((r) => r[targetIndex] === label);
  const [benign, malignant] = [byLabel('1'), byLabel('0')];
  const siteRows = [
    [...benign.slice(0, SITE_A.benign), ...malignant.slice(0, SITE_A.malignant)],
    [...benign.slice(SITE_A.benign, SITE_A.benign + SITE_B.benign), ...malignant.slice(SITE_A.malignant, SITE_A.malignant + SITE_B.malignant)],
  ];
  const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1 };
  const layout = encodeTable({ schema, rows: [] });
  const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: model.latentDim, hidden: model.hidden, seed: model.seed });
  const modelValues = probe.sharedSize;
  probe.dispose();

  const siteKeys = [await generateIdentity(), await generateIdentity()];
  const ids = siteKeys.map(peerIdOf);
  const aggKey = await generateIdentity();
  const aggHost = await createWireHost({ privateKey: aggKey, allow: ids });
  const manifest = parseManifest({
    consortium: 'leaves', aggregator: aggHost.peerId, members: ids.map((peerId) => ({ peerId })), model,
    training: { epochs: 1, batchSize: 64, learningRate: 0.003 },
    rounds: { total: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 600 },
    secureAggregation: { scheme: 'plaintext' },
    privacy: { mode: 'record', epsilon: 1000, delta: 1e-5, clip: 1, noiseMultiplier: 1 },
  });
  const pinned = { manifest, hash: manifestHash(manifest) };

  // Every update header the aggregator's handler is given, exactly as it arrives (after schema validation).
  const headers: Array<Record<string, unknown>> = [];
  const host: AggregatorHost = {
    peerId: aggHost.peerId,
    handle: (name, spec) => aggHost.handle(name, name !== Protocols.update ? spec : {
      ...spec, handler: (req) => { headers.push(structuredClone(req.header) as Record<string, unknown>); return spec.handler(req); },
    }),
  };
  const logLines: string[] = [];
  const record = (obj: Record<string, unknown>, msg?: string) => { logLines.push(`${JSON.stringify(obj)} ${msg ?? ''}`); };
  const agg = await createAggregator({
    host, dataDir: join(dir, 'agg-state'), consortium: manifest.consortium, members: ids, schema, model, modelValues, strategy: 'fedavg',
    training: manifest.training, rounds: { totalRounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 600 },
    privacy: privacyPolicyOf(manifest), secureAggregation: secureAggregationOf(manifest), manifest: pinned,
    ledger: { dir: join(dir, 'agg-ledger'), identity: aggKey }, logger: { info: record, warn: record, error: record },
  });

  const hosts: WireHost[] = [];
  const nodes = [];
  const nodeLogs: string[][] = [[], []];
  for (const [i, key] of siteKeys.entries()) {
    const siteDir = join(dir, `site${i}`);
    await mkdir(siteDir, { recursive: true });
    await writeFile(join(siteDir, 'records.csv'), toCsv(ds.header, siteRows[i]!));
    const h = await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] });
    hosts.push(h);
    const own = (obj: Record<string, unknown>, msg?: string) => { nodeLogs[i]!.push(`${JSON.stringify(obj)} ${msg ?? ''}`); };
    nodes.push(await createNode({
      host: h, aggregator: aggHost.addrs()[0]!, dataDir: join(siteDir, 'state'), csvPath: join(siteDir, 'records.csv'), backend: 'cpu',
      logger: { info: own, warn: own, error: own }, consortium: pinned, identity: key, ledgerDir: join(siteDir, 'ledger'),
      seed: i + 1, seededNoise: true, unreachableGiveUpSeconds: 30,
      // Site B's operator declares the mix its synthetic CSV should have; site A declares nothing.
      synthetic: { rows: SYNTHETIC_ROWS, out: join(siteDir, 'synthetic.csv'), ...(i === 1 ? { classProbs: { '1': 0.2, '0': 0.8 } } : {}) },
    }));
  }
  let results: NodeRunResult[];
  try {
    results = await Promise.all(nodes.map((n) => n.run()));
  } finally {
    for (const n of nodes) await n.stop().catch(() => undefined);
    for (const h of hosts) await h.stop().catch(() => undefined);
  }
  await agg.finished();
  const rounds = await agg.rounds();
  await agg.stop();
  await aggHost.stop();

  const ledger = await openLedger({ dir: join(dir, 'agg-ledger'), readOnly: true });
  const ledgerEntries: Run['ledgerEntries'] = [];
  try {
    for (let i = 0; i < ledger.size; i++) {
      const bytes = await ledger.getEntryBytes(i);
      ledgerEntries.push({ raw: Buffer.from(bytes).toString('latin1'), payload: parseEntry(bytes).payload as unknown as Record<string, unknown> });
    }
  } finally {
    await ledger.close();
  }
  // The target's class (0/1) of each synthetic row, whatever the column order of the written CSV.
  const synthetic = async (i: number) => {
    const csv = parseCsv(await readFile(join(dir, `site${i}`, 'synthetic.csv'), 'utf8'));
    const t = csv.header.indexOf('diagnosis');
    return csv.rows.map((r) => r[t]!);
  };
  return { headers, logLines, rounds, ledgerEntries, results, syntheticA: await synthetic(0), syntheticB: await synthetic(1), nodeLogs };
}
