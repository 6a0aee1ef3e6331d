import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { manifestHash, parseManifest, schemaHash } from '@fedtwin/consortium';
import { createWriteStream } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { FedtwinError } from '@fedtwin/errors';
import { generateIdentity, peerIdOf, saveIdentity } from '@fedtwin/wire';
import {
  createTwinVae, decodeRows, dirichletSplit, encodeTable, fidelityReport, columnHistograms, correlationHeatmap, initBackend, inferSchema,
  createPrng, extractUnitColumn, loadDataset, parseCsv, tableFromCsv, tableToCsv, toCsv, trainTestSplit, trtrAuc, tstrAuc, forestUtility, dcrReport, membershipInferenceAuc,
  type EncodedTable, type Table, type TableSchema,
} from '@fedtwin/models';
import { noiseMultiplierFor } from '@fedtwin/dp';
import { MARGINALS_ROUNDS } from '@fedtwin/protocol';
import { COLUMN_RELEASE_SHARE, capRowsPerUnit, columnRelease, fitMst, sampleTable, scheduleFor } from '@fedtwin/marginals';
import { daemonFailed, membersFinished, startDaemon, stopDaemon, waitFor, type Daemon, type LogEvent } from './processes.ts';
import { createProgress } from './progress.ts';
import { writeHtmlReport } from './report-html.ts';
import { auditReport, canaryScores, flipCoins, loadMemberModel, makeCanaryRows, makeMarginalsCanaryRows, marginalsCanaryScores, recordsWithCanaries, type Canaries, type SimAuditReport } from './audit.ts';
import type { SimOptions } from './options.ts';

export type { SimOptions } from './options.ts';
export { DEFAULT_SIM_OPTIONS, DEFAULT_AUDIT_CANARIES } from './options.ts';
export type { SimAuditReport } from './audit.ts';

/** The member that holds the audit's canaries. */
export const AUDIT_NODE = 0;

export interface SimPrivacyReport {
  mode: SimOptions['dp'];
  /** Largest total ε any member spent (record-level; site-level for mode site), at `delta`. */
  epsilon: number | null;
  delta: number;
  /** Each member's budget. */
  budget: number | null;
  noiseMultiplier: number | null;
  clip: number | null;
  /** Steps composed per member over the federation (record: DP-SGD steps; site: rounds). */
  steps: number | null;
  sampleRate: number | null;
  /** Every mode each member spent on, with totals. */
  perNode: Array<Array<{ mode: string; epsilonTotal: number; noiseMultiplier: number; sampleRate: number; steps: number; clip: number }>>;
  site?: { epsilon: number; noiseMultiplier: number; clip: number; sampleRate: number; steps: number };
  /** Baselines (local-only, centralized) are trained with DP-SGD at the same budget when record-level DP is on. */
  baselinesPrivate: boolean;
  /** 'os' (CSPRNG) or 'seeded' (reproducible simulation; not private against whoever knows the seed). */
  noise: 'os' | 'seeded';
  /** With --audit: the empirical lower bound ε_lower next to the claimed ε (docs/privacy-audit.md). */
  audit?: SimAuditReport;
  /**
   * With --unit-column (patient-level DP): the column, each member's unit count as it logged it, the DP count Ũ it
   * released and accounted (q = min(1, B/Ũ) in perNode), and its rows. The ε above is then per unit, not per row.
   */
  unit?: { column: string; unitsPerNode: Array<number | null>; countEstimatePerNode: Array<number | null>; rowsPerNode: number[] };
}

export interface SimReport {
  dataset: string;
  target: string;
  /** The synthesizer the consortium federated (the manifest's model.kind). */
  generator: SimOptions['generator'];
  /**
   * The VAE's column calibration (manifest model.calibrate): round 1 released the 1-way counts of `columns` columns
   * (the numeric ones and the target) under secure aggregation, taking `share` of the ρ the budget buys; the twins'
   * numeric columns are mapped onto them. Null when the consortium does not calibrate (marginals, site-level DP, --no-calibrate).
   */
  calibration: { round: 1; columns: number; share: number } | null;
  nodes: number;
  rounds: number;
  seed: number;
  backend: string;
  nodeVersion: string;
  split: { alpha: number; testFraction: number; trainRows: number; testRows: number; rowsPerNode: number[]; classesPerNode: Array<Record<string, number>> };
  utility: {
    trtrAuc: number;
    tstrAuc: { federated: number; localOnly: number; localOnlyPerNode: number[]; centralized: number };
    /** The same with a random forest (it sees interactions logistic regression misses), and the minority class's recall. */
    forest: { trees: number; trtrAuc: number; tstrAuc: number; minorityClass: string | null; minorityRecall: { trtr: number | null; federated: number | null } };
  };
  /** Distance-based privacy of the released synthetic.csv against the training rows, size-matched to the test rows. */
  release: {
    dcr: { medianToTrain: number; medianToTest: number; ratio: number; closerToTrainShare: number; matchedRows: number };
    membershipInferenceAuc: number;
  };
  /** Fidelity of the release measured against the held-out test rows (never the rows it was trained on). */
  fidelity: {
    columns: Array<{ name: string; kind: string; metric: string; score: number }>;
    mean: number;
    correlationDistance: number;
    /** Per column that may be missing: the missing-cell rate in the test rows and in the release, 1 − |Δ| and its mean. */
    missingness?: { columns: Array<{ name: string; real: number; synthetic: number; score: number }>; mean: number };
  };
  training: { epochsPerRound: number; batchSize: number; learningRate: number; latentDim: number; hidden: number; modelValues: number };
  lossPerRound: Array<{ node: number; peerId: string; rounds: Array<{ round: number; loss: number }> }>;
  rounds_: Array<{ round: number; status: string; participants: number; openedAt: number; closedAt?: number }>;
  bytes: { nodes: Array<{ node: number; sent: number; received: number }>; aggregator: { sent: number; received: number } };
  timing: { federatedSeconds: number; baselinesSeconds: number; roundSeconds: number[]; trainSecondsPerRound: number[] };
  privacy: SimPrivacyReport;
  secureAggregation: { scheme: string; polyModulusDegree: number | null; bytesPerValue: number; ratioToFloat32: number; keyId: string | null };
  ledger: { size: number; rootHash: string; checkpoint: string | null; cosignatures: number; dir: string; replicas: string[]; verified: { aggregator: boolean; replicas: boolean[] } } | null;
  wallSeconds: number;
}

/** The manifest's consortium id for a data set: a CSV path ("data/x.csv") becomes "sim-x"; ids take letters, digits, . _ - only. */
export function simConsortiumId(dataset: string): string {
  const stem = basename(dataset, extname(dataset)).replace(/[^A-Za-z0-9._-]+/g, '_');
  return `sim-${stem || 'data'}`;
}

/**
 * A researcher's simulation: one aggregator and N nodes as separate OS processes on 127.0.0.1,
 * a seeded non-IID split of a real data set, then federated vs local-only vs centralized.
 */
export async function runSimulation(opts: SimOptions): Promise<{ report: SimReport; outDir: string }> {
  validateOptions(opts);
  const t0 = performance.now();
  const out = resolve(opts.out);
  await mkdir(out, { recursive: true });
  const progress = createProgress(opts.progress);
  const backend = await initBackend();
  progress.log(`fedtwin sim: Node ${process.version}, tfjs backend ${backend.name}; output in ${out}`);

  // --- data: schema, held-out test set, non-IID split ------------------------------------------
  const loaded = await loadDataset(opts.dataset);
  // Patient-level DP: the id column comes out before any schema sees it (as every member's loadData does).
  const byUnit = opts.unitColumn === undefined ? undefined : unitsOfDataset(loaded, opts.unitColumn, opts.target);
  const ds = byUnit ? { ...loaded, header: byUnit.header, rows: byUnit.rows } : loaded;
  const target = opts.target ?? ds.defaultTarget;
  if (!target) throw new FedtwinError('SIM_BAD_ARGUMENT', `dataset ${ds.name} has no default target`, { hint: `pass --target with one of: ${ds.header.join(', ')}` });
  if (!ds.header.includes(target)) throw new FedtwinError('SIM_BAD_ARGUMENT', `--target ${target} is not a column of ${ds.name}`, { hint: `choose one of: ${ds.header.join(', ')}` });
  const schema: TableSchema = inferSchema(ds.header, ds.rows, { target, ...(opts.zeroIsMissing?.length ? { zeroIsMissing: opts.zeroIsMissing } : {}) });
  const full: Table = tableFromCsv(ds.header, ds.rows, schema);
  const fullEnc = encodeTable(full);
  const { train, test, shardRows } = byUnit
    ? splitByUnit(byUnit, Array.from(fullEnc.cond), opts)
    : splitByRow(full.rows.length, Array.from(fullEnc.cond), opts);
  // Each picked table remembers its rows of `full` (the baselines group them by unit).
  const rowsOf = new WeakMap<Table, number[]>();
  const pick = (idx: number[]): Table => {
    const t: Table = { schema, rows: idx.map((i) => full.rows[i]!) };
    rowsOf.set(t, idx);
    return t;
  };
  const trainTable = pick(train);
  const testTable = pick(test);
  const colNames = schema.columns.map((c) => c.name);
  await writeFile(join(out, 'schema.json'), JSON.stringify(schema, null, 2));
  await writeFile(join(out, 'test.csv'), tableToCsv(testTable));
  await writeFile(join(out, 'split.json'), JSON.stringify({ seed: opts.seed, alpha: opts.alpha, testFraction: opts.testFraction, test, nodes: shardRows }, null, 0));
  // Audit canaries: values from the seed, inclusion coins from the OS CSPRNG, held in memory until the scoring.
  const canaries: Canaries | undefined = opts.audit
    ? { rows: (opts.generator === 'marginals' ? makeMarginalsCanaryRows : makeCanaryRows)(schema, opts.audit.canaries, opts.seed), included: flipCoins(opts.audit.canaries) }
    : undefined;
  const classOf = (t: Table) => countClasses(t, schema);
  const pooledProbs = normalise(classOf(trainTable));
  progress.log(`data: ${ds.name} (${full.rows.length} rows, target ${target}); test ${test.length}; shards ${shardRows.map((s) => s.length).join('/')} (Dirichlet α=${opts.alpha}, seed ${opts.seed})`);

  // --- identities and configs --------------------------------------------------------------------
  const aggDir = join(out, 'aggregator');
  await rm(aggDir, { recursive: true, force: true });
  await rm(join(out, 'ledger'), { recursive: true, force: true });
  await rm(join(out, 'audit.json'), { force: true });
  await mkdir(aggDir, { recursive: true });
  const aggKey = await generateIdentity();
  await saveIdentity(join(aggDir, 'identity.key'), aggKey);
  const nodeIds: string[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const dir = join(out, 'nodes', String(i));
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const key = await generateIdentity();
    await saveIdentity(join(dir, 'identity.key'), key);
    nodeIds.push(peerIdOf(key));
    const rows = pick(shardRows[i]!).rows;
    const csv = tableToCsv({ schema, rows: canaries && i === AUDIT_NODE ? recordsWithCanaries(rows, canaries, opts.seed) : rows });
    // With a unit column the member's CSV carries each row's id as its first column (the member takes it out).
    await writeFile(join(dir, 'data.csv'), byUnit ? withUnitIds(csv, opts.unitColumn!, shardRows[i]!.map((r) => byUnit.ids[r]!)) : csv);
  }
  const quorum = opts.nodes;
  // The marginals generator always runs its three measurement rounds (1-way, selection, tree).
  // A calibrating VAE consortium runs its column release first, then --rounds training rounds.
  const calibrate = calibratesColumns(opts);
  const rounds = opts.generator === 'marginals' ? MARGINALS_ROUNDS : opts.rounds + (calibrate ? 1 : 0);
  // The consortium manifest every process pins: what each hospital agreed to before it sends anything.
  const manifest = parseManifest({
    consortium: simConsortiumId(ds.name), aggregator: peerIdOf(aggKey),
    members: nodeIds.map((peerId, i) => ({ peerId, name: `site ${i}` })), schemaHash: schemaHash(schema),
    model: opts.generator === 'marginals' ? { kind: 'marginals', seed: opts.seed } : { kind: 'vae', latentDim: opts.latentDim, hidden: opts.hidden, seed: opts.seed, ...(calibrate ? { calibrate: true } : {}) },
    strategy: 'fedavg', training: { epochs: opts.epochs, batchSize: opts.batchSize, learningRate: opts.learningRate },
    rounds: { total: rounds, quorum, minParticipants: Math.max(1, Math.ceil(opts.nodes / 2)), deadlineSeconds: opts.deadlineSeconds },
    privacy: privacyConfig(opts),
    secureAggregation: { scheme: opts.secureAggregation, ...(opts.heMaxParticipants !== undefined && opts.secureAggregation === 'bfv' ? { maxParticipants: opts.heMaxParticipants } : {}) },
  }, 'the simulation\'s consortium manifest');
  await writeFile(join(out, 'consortium.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  progress.log(`consortium manifest ${join(out, 'consortium.json')} (hash ${manifestHash(manifest).slice(0, 16)}…)`);
  const aggConfig = {
    consortium: '../consortium.json', dataDir: '.', identity: 'identity.key', listen: ['/ip4/127.0.0.1/tcp/0'],
    schema: '../schema.json', ledgerDir: '../ledger', log: { level: 'info' },
    // One server (the same address) for the page and /metrics; the report appears on it once written.
    ...(opts.aggregatorHttp ? { dashboard: { listen: '127.0.0.1:0', report: '../report.json' }, metrics: { listen: '127.0.0.1:0' } } : {}),
  };
  await writeFile(join(aggDir, 'config.json'), JSON.stringify(aggConfig, null, 2));

  // --- the federation, as real processes ---------------------------------------------------------
  const daemons: Daemon[] = [];
  const unitsSeen: Array<number | null> = nodeIds.map(() => null);
  const countsReleased: Array<number | null> = nodeIds.map(() => null);
  const roundTimes = new Map<number, { opened: number; closed?: number; participants?: number; status?: string }>();
  let done = 0;
  const tFed = performance.now();
  try {
    // The aggregator leaves by itself once every member has the final aggregate (or the grace has passed).
    const agg = startDaemon('aggregator', ['aggregator', 'start', '--config', join(aggDir, 'config.json'), '--exit-when-finished', '--finish-grace', String(FINISH_GRACE_SECONDS)], (e: LogEvent) => {
      if (e.event === 'round-open') roundTimes.set(Number(e.round), { opened: performance.now() });
      if (e.event === 'round-aggregated' || e.event === 'round-failed') {
        const r = roundTimes.get(Number(e.round));
        if (r) Object.assign(r, { closed: performance.now(), participants: Number(e.participants ?? 0), status: e.event === 'round-aggregated' ? 'aggregated' : 'failed' });
        if (e.event === 'round-aggregated') done = Number(e.version);
      }
      if (e.event === 'contribution' || e.event === 'round-aggregated' || e.event === 'round-open' || e.event === 'round-failed') {
        progress.update({ round: done, total: rounds, contributions: Number(e.count ?? 0), nodes: opts.nodes, msg: String(e.msg ?? '') });
      }
    }, createWriteStream(join(aggDir, 'aggregator.log')));
    daemons.push(agg);
    const listening = await waitFor('the aggregator to listen', async () => {
      if (agg.child.exitCode !== null) throw daemonFailed(agg);
      // not there yet, or (from an older writer) not complete yet: poll again
      return readFile(join(aggDir, 'listening.json'), 'utf8').then((t) => { try { return JSON.parse(t) as { peerId: string; addrs: string[] }; } catch { return undefined; } }, () => undefined);
    }, 60_000);
    const address = listening.addrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? listening.addrs[0]!;
    // Members watch each other: each gossips its co-signed checkpoint with its two ring neighbours
    // (docs/witnesses.md), so a split view would stop the run; a connected graph is all detection needs.
    const gossipPorts = await freeLoopbackPorts(opts.nodes);
    const gossipAddr = (k: number) => `/ip4/127.0.0.1/tcp/${gossipPorts[k]}/p2p/${nodeIds[k]}`;
    const neighbours = (i: number) => [...new Set([(i + 1) % opts.nodes, (i + opts.nodes - 1) % opts.nodes])].filter((k) => k !== i);
    for (let i = 0; i < opts.nodes; i++) {
      const dir = join(out, 'nodes', String(i));
      const nodeConfig = {
        consortium: '../../consortium.json', dataDir: '.', identity: 'identity.key',
        aggregator: { address }, data: { csv: 'data.csv' },
        listen: [`/ip4/127.0.0.1/tcp/${gossipPorts[i]}`], witnesses: neighbours(i).map(gossipAddr),
        ...(manifest.privacy.mode === 'off' ? { privacy: { mode: 'off' } } : {}),
        // Each site releases twins of its own population (its own label mix, its personalised model);
        // together they follow the pooled distribution.
        synthetic: { rows: shardRows[i]!.length, out: 'synthetic.csv' },
        exitWhenDone: true, seed: opts.seed * 100 + i, seededNoise: !opts.secureNoise, result: 'result.json', log: { level: 'info' },
        // The members share this machine: two HE threads each only oversubscribe its cores.
        heThreads: Math.max(1, Math.min(2, Math.floor(availableParallelism() / opts.nodes))),
      };
      await writeFile(join(dir, 'config.json'), JSON.stringify(nodeConfig, null, 2));
      daemons.push(startDaemon(`node ${i}`, ['node', 'start', '--config', join(dir, 'config.json')], (e: LogEvent) => {
        // What the member counted and released about its units (patient-level DP), for the report.
        if (e.event === 'data-loaded' && e.units !== undefined) unitsSeen[i] = Number(e.units);
        if (e.event === 'count-released') countsReleased[i] = Number(e.estimate);
      }, createWriteStream(join(dir, 'node.log'))));
    }
    const nodeDaemons = daemons.slice(1);
    const deadline = setTimeout(() => { for (const d of daemons) d.child.kill('SIGKILL'); }, opts.timeoutSeconds * 1000);
    try {
      await membersFinished(nodeDaemons, agg);
    } finally {
      clearTimeout(deadline);
    }
    // The grace timer is cleared once the aggregator has left: a pending one kept the process alive ~30 s after the run.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([agg.exited, new Promise((r) => { grace = setTimeout(r, (FINISH_GRACE_SECONDS + 10) * 1000); })]);
    clearTimeout(grace);
    if (agg.child.exitCode !== null && agg.child.exitCode !== 0) throw daemonFailed(agg, agg.child.exitCode);
    await stopDaemon(agg);
  } finally {
    for (const d of daemons) await stopDaemon(d, 3000);
    progress.done();
  }
  const federatedSeconds = (performance.now() - tFed) / 1000;

  // --- gather the federation's outputs -------------------------------------------------------------
  const nodeResults = await Promise.all(nodeIds.map(async (_, i) => JSON.parse(await readFile(join(out, 'nodes', String(i), 'result.json'), 'utf8')) as NodeResultFile));
  const aggResult = JSON.parse(await readFile(join(aggDir, 'result.json'), 'utf8')) as AggResultFile;
  const synthParts = await Promise.all(nodeIds.map(async (_, i) => {
    const { header, rows } = parseCsv(await readFile(join(out, 'nodes', String(i), 'synthetic.csv'), 'utf8'));
    return tableFromCsv(header, rows, schema);
  }));
  const synthetic: Table = { schema, rows: synthParts.flatMap((t) => t.rows) };
  await writeFile(join(out, 'synthetic.csv'), tableToCsv(synthetic));
  const recordDp = dpOn(opts) && (opts.dp === 'record' || opts.dp === 'both');
  const privacy = privacyReport(opts, nodeResults, recordDp);
  if (byUnit) privacy.unit = { column: opts.unitColumn!, unitsPerNode: unitsSeen, countEstimatePerNode: countsReleased, rowsPerNode: shardRows.map((s) => s.length) };
  if (canaries) {
    progress.log(`audit: scoring ${canaries.rows.length} canaries under node ${AUDIT_NODE}'s released model`);
    const { report: audit, scores } = await runAudit(opts, schema, canaries, join(out, 'nodes', String(AUDIT_NODE), 'state'), privacy);
    privacy.audit = audit;
    // The coins, only now that the guesses are made: for re-analysis (docs/privacy-audit.md).
    await writeFile(join(out, 'audit.json'), JSON.stringify({ columns: colNames, canaries: canaries.rows.map((row, i) => ({ row, included: canaries.included[i], score: scores[i] })), report: audit }, null, 1));
  }

  // --- baselines in this process: local-only (each shard alone) and centralized (pooled) ----------
  progress.log(`baselines: ${opts.generator === 'marginals' ? 'fitting' : 'training'} local-only and centralized ${opts.generator} models for comparison`);
  const tBase = performance.now();
  const totalEpochs = opts.epochs * opts.rounds;
  const trainAndSynth = async (t: Table, seed: number): Promise<Table> => {
    // The same generator as the federation, at the same ε: MST over the one table (no secure aggregation needed).
    if (opts.generator === 'marginals') {
      // With a unit column, as the members: at most one row per unit counted, sensitivity 1 per unit (model.maxRowsPerUnit's default).
      const counted = byUnit ? capRowsPerUnit(t, rowsOf.get(t)!.map((r) => byUnit.units[r]!), 1) : t;
      const run = fitMst([counted], { epsilon: dpOn(opts) ? opts.epsilon : Infinity, delta: opts.delta });
      const prng = createPrng(seed + 7);
      return sampleTable(run.model, train.length, () => prng.next());
    }
    const enc = encodeTable(t);
    const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, latentDim: opts.latentDim, hidden: opts.hidden, seed: opts.seed });
    try {
      // Same privacy as the members: DP-SGD calibrated to the same ε over the same epochs.
      // With a unit column, per unit like the members: q = B/U, each unit's summed gradient clipped.
      let dp: { clip: number; noiseMultiplier: number; secureNoise: boolean; units?: Int32Array } | undefined;
      if (recordDp) {
        const units = byUnit ? denseUnits(rowsOf.get(t)!.map((r) => byUnit.units[r]!)) : undefined;
        const q = Math.min(1, opts.batchSize / (units?.count ?? enc.rows));
        const steps = totalEpochs * Math.max(1, Math.round(1 / q));
        dp = { clip: opts.clip, noiseMultiplier: noiseMultiplierFor({ epsilon: opts.epsilon, sampleRate: q, steps, delta: opts.delta }).noiseMultiplier, secureNoise: opts.secureNoise, ...(units ? { units: units.index } : {}) };
      }
      await vae.trainEpochs(enc, { epochs: totalEpochs, batchSize: opts.batchSize, learningRate: opts.learningRate, seed, dp });
      const gen = vae.generate(train.length, { classProbs: enc.classes.map((c) => pooledProbs[c] ?? 0), seed: seed + 7 });
      return { schema, rows: decodeRows(schema, gen.x, gen.cond) };
    } finally {
      vae.dispose();
    }
  };
  const localAucs: number[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const synth = await trainAndSynth(pick(shardRows[i]!), opts.seed * 100 + i);
    localAucs.push(tstrAuc(synth, testTable).auc);
  }
  const centralSynth = await trainAndSynth(trainTable, opts.seed);
  const centralized = tstrAuc(centralSynth, testTable).auc;
  const baselinesSeconds = (performance.now() - tBase) / 1000;

  const fidelity = fidelityReport(testTable, synthetic);
  const forestTrtr = forestUtility(trainTable, testTable, { seed: opts.seed, trees: opts.forestTrees });
  const forestTstr = forestUtility(synthetic, testTable, { seed: opts.seed, trees: opts.forestTrees });
  const evalRng = createPrng(opts.seed * 31 + 5);
  const dcr = dcrReport(synthetic, trainTable, testTable, evalRng);
  const report: SimReport = {
    dataset: ds.name, target, generator: opts.generator, nodes: opts.nodes, rounds, seed: opts.seed,
    calibration: calibrate ? { round: 1, columns: columnRelease(schema, { epsilon: Infinity, delta: opts.delta }).columns.length, share: COLUMN_RELEASE_SHARE } : null,
    backend: backend.name, nodeVersion: process.version,
    split: {
      alpha: opts.alpha, testFraction: opts.testFraction, trainRows: train.length, testRows: test.length,
      rowsPerNode: shardRows.map((s) => s.length), classesPerNode: shardRows.map((s) => classOf(pick(s))),
    },
    utility: {
      trtrAuc: trtrAuc(trainTable, testTable).auc,
      tstrAuc: { federated: tstrAuc(synthetic, testTable).auc, localOnly: mean(localAucs), localOnlyPerNode: localAucs, centralized },
      forest: { trees: opts.forestTrees, trtrAuc: forestTrtr.auc, tstrAuc: forestTstr.auc, minorityClass: forestTrtr.minorityClass, minorityRecall: { trtr: forestTrtr.minorityRecall, federated: forestTstr.minorityRecall } },
    },
    release: { dcr, membershipInferenceAuc: membershipInferenceAuc(synthetic, trainTable, testTable, evalRng).auc },
    fidelity,
    training: { epochsPerRound: opts.epochs, batchSize: opts.batchSize, learningRate: opts.learningRate, latentDim: opts.latentDim, hidden: opts.hidden, modelValues: Number(nodeResults[0]?.modelValues ?? 0) },
    lossPerRound: nodeResults.map((r, i) => ({ node: i, peerId: r.peerId, rounds: r.losses.filter((l) => l.losses.length > 0).map((l) => ({ round: l.round, loss: l.losses.at(-1)! })) })), // count rounds train nothing
    rounds_: [...roundTimes.entries()].map(([round, r]) => ({ round, status: r.status ?? 'open', participants: r.participants ?? 0, openedAt: r.opened, closedAt: r.closed })),
    bytes: { nodes: nodeResults.map((r, i) => ({ node: i, sent: r.bytes?.sent ?? 0, received: r.bytes?.received ?? 0 })), aggregator: aggResult.bytes },
    timing: {
      federatedSeconds, baselinesSeconds,
      roundSeconds: [...roundTimes.values()].filter((r) => r.closed).map((r) => (r.closed! - r.opened) / 1000),
      trainSecondsPerRound: slowestTrainingPerRound(aggResult, nodeResults),
    },
    privacy,
    secureAggregation: secureAggregationReport(opts, aggResult, Number(nodeResults[0]?.modelValues ?? 0)),
    ledger: aggResult.ledger ? { ...aggResult.ledger, dir: join(out, 'ledger'), replicas: nodeIds.map((_, i) => join(out, 'nodes', String(i), 'ledger')), verified: await verifyLedgers(join(out, 'ledger'), nodeIds.map((_, i) => join(out, 'nodes', String(i), 'ledger'))) } : null,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  await writeFile(join(out, 'report.json'), JSON.stringify(report, null, 2));
  await writeHtmlReport(join(out, 'report.html'), report, columnHistograms(testTable, synthetic, 20), correlationHeatmap(testTable, synthetic));
  return { report, outDir: out };
}

interface SpendRecord { mode: string; epsilonTotal: number; noiseMultiplier: number; sampleRate: number; steps: number; clip: number; delta: number; budgetEpsilon: number; skellam?: { mu: number } }
interface NodeResultFile { contributionsDetail?: Array<{ round: number; trainSeconds?: number | null; privacy?: SpendRecord[] }>; peerId: string; losses: Array<{ round: number; losses: number[] }>; bytes?: { sent: number; received: number }; modelValues?: number }
interface AggResultFile { ledger?: { size: number; rootHash: string; checkpoint: string | null; cosignatures: number }; bytes: { sent: number; received: number }; keyId?: string; secureAggregation?: { scheme: string; params?: { polyModulusDegree?: number } }; rounds: Array<{ round: number; status: string; contributions: Array<{ peer: string; bytes: number }> }> }

/**
 * Per aggregated round, the longest local training among its participants, from each member's own result.json:
 * under DP the aggregator never learns training times (they reveal a site's record count). NaN where no
 * participant knows its time (an update re-sent after a restart).
 */
function slowestTrainingPerRound(agg: AggResultFile, nodes: NodeResultFile[]): number[] {
  const seconds = new Map<string, number>();
  for (const n of nodes) for (const c of n.contributionsDetail ?? []) {
    if (typeof c.trainSeconds === 'number' && Number.isFinite(c.trainSeconds)) seconds.set(`${c.round}/${n.peerId}`, c.trainSeconds);
  }
  return agg.rounds.filter((r) => r.status === 'aggregated').map((r) => {
    const known = r.contributions.map((c) => seconds.get(`${r.round}/${c.peer}`)).filter((x): x is number => x !== undefined);
    return known.length ? Math.max(...known) : Number.NaN;
  });
}

/** Offline audit of the aggregator's log and every member's replica, as `fedtwin ledger verify` does. */
async function verifyLedgers(main: string, replicas: string[]): Promise<{ aggregator: boolean; replicas: boolean[] }> {
  const { verifyLedgerDir } = await import('@fedtwin/ledger');
  const ok = async (dir: string) => (await verifyLedgerDir(dir)).ok;
  return { aggregator: await ok(main), replicas: await Promise.all(replicas.map(ok)) };
}

function secureAggregationReport(o: SimOptions, agg: AggResultFile, modelValues: number): SimReport['secureAggregation'] {
  const sizes = agg.rounds.flatMap((r) => r.contributions.map((c) => c.bytes));
  const bytesPerValue = sizes.length && modelValues ? sizes.reduce((a, b) => a + b, 0) / sizes.length / modelValues : 0;
  return {
    scheme: o.secureAggregation === 'bfv' ? 'BFV (SEAL)' : o.secureAggregation === 'secagg' ? 'pairwise masking (SecAgg)' : 'plaintext',
    polyModulusDegree: o.secureAggregation === 'bfv' ? agg.secureAggregation?.params?.polyModulusDegree ?? 4096 : null,
    bytesPerValue, ratioToFloat32: bytesPerValue / 4, keyId: agg.keyId ?? null,
  };
}

const dpOn = (o: SimOptions) => o.dp !== 'off' && Number.isFinite(o.epsilon);

/** `n` TCP ports free on 127.0.0.1 right now (held open together, so they are distinct). */
async function freeLoopbackPorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  })));
  const ports = servers.map((srv) => (srv.address() as AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  return ports;
}

function privacyConfig(o: SimOptions): Record<string, unknown> {
  if (!dpOn(o)) return { mode: 'off' };
  const base = { mode: o.dp, epsilon: o.epsilon, delta: o.delta, ...(o.unitColumn !== undefined ? { unitColumn: o.unitColumn } : {}) };
  if (o.dp === 'record') return { ...base, clip: o.clip };
  if (o.dp === 'site') return { ...base, clip: o.siteClip };
  return { ...base, clip: o.clip, site: { clip: o.siteClip } };
}

function privacyReport(o: SimOptions, nodes: NodeResultFile[], baselinesPrivate: boolean): SimPrivacyReport {
  const delta = o.delta;
  const noise = o.secureNoise ? 'os' as const : 'seeded' as const;
  if (!dpOn(o)) return { mode: 'off', epsilon: null, delta, budget: null, noiseMultiplier: null, clip: null, steps: null, sampleRate: null, perNode: nodes.map(() => []), baselinesPrivate: false, noise };
  // Per member and mode: the last contribution's running total, and steps summed over contributions.
  const perNode = nodes.map((n) => {
    const byMode = new Map<string, { mode: string; epsilonTotal: number; noiseMultiplier: number; sampleRate: number; steps: number; clip: number }>();
    for (const c of n.contributionsDetail ?? []) for (const p of c.privacy ?? []) {
      const prev = byMode.get(p.mode);
      // The VAE's column release (q = 1 Skellam counts) is in the total but is no DP-SGD step: z, q and steps are DP-SGD's.
      if (o.generator === 'vae' && p.skellam && p.mode === 'record') {
        byMode.set(p.mode, { ...(prev ?? { mode: p.mode, noiseMultiplier: p.noiseMultiplier, sampleRate: p.sampleRate, clip: p.clip, steps: 0 }), epsilonTotal: p.epsilonTotal });
        continue;
      }
      byMode.set(p.mode, { mode: p.mode, epsilonTotal: p.epsilonTotal, noiseMultiplier: p.noiseMultiplier, sampleRate: p.sampleRate, clip: p.clip, steps: (prev?.steps ?? 0) + p.steps });
    }
    return [...byMode.values()];
  });
  const main = o.dp === 'site' ? 'site' : 'record';
  const all = perNode.flat().filter((p) => p.mode === main);
  const worst = all.reduce<(typeof all)[number] | undefined>((a, b) => (a === undefined || b.epsilonTotal > a.epsilonTotal ? b : a), undefined);
  const site = perNode.flat().filter((p) => p.mode === 'site').reduce<(typeof all)[number] | undefined>((a, b) => (a === undefined || b.epsilonTotal > a.epsilonTotal ? b : a), undefined);
  return {
    mode: o.dp, epsilon: worst?.epsilonTotal ?? 0, delta, budget: o.epsilon,
    noiseMultiplier: worst?.noiseMultiplier ?? null, clip: worst?.clip ?? null, steps: worst?.steps ?? null, sampleRate: worst?.sampleRate ?? null,
    perNode, baselinesPrivate, noise,
    ...(o.dp === 'both' && site ? { site: { epsilon: site.epsilonTotal, noiseMultiplier: site.noiseMultiplier, clip: site.clip, sampleRate: site.sampleRate, steps: site.steps } } : {}),
  };
}

/**
 * Scores the canaries under the audited member's released model — its final global weights with its private
 * layers, or in site mode the shared layers alone (what its synthetic CSV is generated from: phases/finish.ts) —
 * and bounds ε from below. The claim is that member's own spent ε in the mode the report leads with.
 */
async function runAudit(o: SimOptions, schema: TableSchema, canaries: Canaries, stateDir: string, privacy: SimPrivacyReport): Promise<{ report: SimAuditReport; scores: Float64Array }> {
  const weights = await loadMemberModel(stateDir);
  if (o.generator === 'marginals') {
    // The member's global is the released counts; the schedule is the one every member derives (member-model.ts).
    const schedule = scheduleFor(schema, { }, { epsilon: dpOn(o) ? o.epsilon : Infinity, delta: o.delta });
    const scores = marginalsCanaryScores(canaries.rows, schedule, weights.global);
    const claimed = dpOn(o) ? privacy.perNode[AUDIT_NODE]?.find((p) => p.mode === 'record')?.epsilonTotal ?? null : null;
    return { report: auditReport(scores, canaries, { delta: o.delta, epsilonClaimed: claimed, node: AUDIT_NODE, score: 'released counts of the canary\'s cells (1-way hierarchies, selection pairs, tree edges), each clamped to [0, 1], summed' }), scores };
  }
  const releasesPrivate = o.dp !== 'site' || !dpOn(o);
  const scores = canaryScores(canaries.rows, schema, { latentDim: o.latentDim, hidden: o.hidden, seed: o.seed }, { global: weights.global, private: releasesPrivate ? weights.private : undefined });
  const main = o.dp === 'site' ? 'site' : 'record';
  const claimed = dpOn(o) ? privacy.perNode[AUDIT_NODE]?.find((p) => p.mode === main)?.epsilonTotal ?? null : null;
  const report = auditReport(scores, canaries, { delta: o.delta, epsilonClaimed: claimed, node: AUDIT_NODE, score: releasesPrivate ? '-ELBO(final global + private layers)' : '-ELBO(final global, shared layers only)' });
  return { report, scores };
}

/** How long the aggregator waits, once the last round is aggregated, for members to fetch it (--finish-grace). */
const FINISH_GRACE_SECONDS = 20;


function countClasses(t: Table, schema: TableSchema): Record<string, number> {
  const ti = schema.columns.findIndex((c) => c.name === schema.target);
  const counts: Record<string, number> = {};
  for (const r of t.rows) counts[String(r[ti])] = (counts[String(r[ti])] ?? 0) + 1;
  return counts;
}

function normalise(counts: Record<string, number>): Record<string, number> {
  const s = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / s]));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function validateOptions(o: SimOptions): void {
  const bad = (name: string, msg: string) => new FedtwinError('SIM_BAD_ARGUMENT', `--${name} ${msg}`, { hint: 'see fedtwin sim --help' });
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 64) throw bad('nodes', 'must be an integer between 1 and 64');
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 1000) throw bad('rounds', 'must be an integer between 1 and 1000');
  if (!Number.isInteger(o.seed) || o.seed < 0) throw bad('seed', 'must be a non-negative integer');
  if (!(o.alpha > 0)) throw bad('alpha', 'must be > 0');
  if (!(o.testFraction > 0 && o.testFraction < 1)) throw bad('test-fraction', 'must be in (0, 1)');
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw bad('epochs', 'must be an integer ≥ 1');
  if (!(o.epsilon > 0)) throw bad('epsilon', 'must be > 0 (or inf for no DP)');
  if (!(o.delta > 0 && o.delta < 1)) throw bad('delta', 'must be in (0, 1)');
  if (!(o.clip > 0) || !(o.siteClip > 0)) throw bad('clip', 'must be > 0');
  if (o.generator !== 'vae' && o.generator !== 'marginals') throw bad('generator', `must be vae or marginals, got "${String(o.generator)}"`);
  if (o.secureAggregation === 'secagg' && o.nodes < 2) {
    throw new FedtwinError('SIM_BAD_ARGUMENT', `--nodes ${o.nodes}: secure aggregation by masking (secagg, the default) needs at least 2 members`, { hint: 'use --nodes 2 or more, or --aggregation bfv (or plaintext) for a single node' });
  }
  if (o.generator === 'marginals' && (o.dp === 'site' || o.dp === 'both') && Number.isFinite(o.epsilon)) throw bad('dp', `${o.dp} is for the vae generator: the marginals generator protects records (--dp record) or runs without DP (--dp off)`);
  if (o.unitColumn !== undefined) {
    if (o.unitColumn.trim() === '') throw bad('unit-column', 'must name a column');
    if (o.dp !== 'record' && o.dp !== 'both' || !Number.isFinite(o.epsilon)) throw bad('unit-column', `protects units instead of records (DP-SGD samples and clips per unit; the marginals generator counts at most one row per unit): it needs --dp record${o.generator === 'vae' ? ' or both' : ''} with a finite --epsilon, got --dp ${o.dp}${Number.isFinite(o.epsilon) ? '' : ' --epsilon inf'}`);
    if (o.audit) throw bad('unit-column', 'with --audit is not supported yet (the canaries are records, not units)');
  }
  if (!(Number.isInteger(o.forestTrees) && o.forestTrees >= 1 && o.forestTrees <= 1000)) throw bad('forest-trees', 'must be an integer between 1 and 1000');
  if (o.audit && !(Number.isInteger(o.audit.canaries) && o.audit.canaries >= 2 && o.audit.canaries <= 100_000)) throw bad('audit-canaries', 'must be an integer between 2 and 100000');
}

/** A data set with its unit column taken out: each row's unit index (0..count−1), the ids in row order. */
interface DatasetUnits {
  header: string[];
  rows: string[][];
  units: Int32Array;
  count: number;
  ids: string[];
}

/** The unit column out of the data set (SIM_BAD_ARGUMENT naming the columns if it is not there, or if it is the target). */
function unitsOfDataset(ds: { name: string; header: string[]; rows: string[][] }, column: string, target: string | undefined): DatasetUnits {
  if (!ds.header.includes(column)) {
    throw new FedtwinError('SIM_BAD_ARGUMENT', `--unit-column ${column} is not a column of ${ds.name}`, { hint: `choose the column that holds each row's patient (unit) id, one of: ${ds.header.join(', ')}`, details: { column } });
  }
  if (column === target) throw new FedtwinError('SIM_BAD_ARGUMENT', `--unit-column ${column} is the --target column`, { hint: 'the unit column holds ids and never enters the model; pick another --target or unit column' });
  const j = ds.header.indexOf(column);
  const ids = ds.rows.map((r) => (r[j] ?? '').trim());
  const u = extractUnitColumn(ds, column, { source: ds.name });
  return { header: u.header, rows: u.rows, units: u.units, count: u.unitCount, ids };
}

/** Rows to test/train (stratified by label) and the train rows to nodes (Dirichlet over labels), row by row. */
function splitByRow(n: number, labels: number[], o: SimOptions): { train: number[]; test: number[]; shardRows: number[][] } {
  const { train, test } = trainTestSplit(n, o.testFraction, o.seed, labels);
  const parts = dirichletSplit(train.map((i) => labels[i]!), o.nodes, o.alpha, o.seed);
  return { train, test, shardRows: parts.map((p) => p.map((j) => train[j]!)) };
}

/**
 * The same split over units: a unit (with its first row's label) goes to test or train, and to one node, with all
 * its rows. A patient split across test and train would leak into the evaluation, and one on two nodes would be
 * two units there (protected at 2ε): the simulation keeps each unit whole.
 */
function splitByUnit(u: DatasetUnits, labels: number[], o: SimOptions): { train: number[]; test: number[]; shardRows: number[][] } {
  const rowsOfUnit: number[][] = Array.from({ length: u.count }, () => []);
  u.units.forEach((k, r) => rowsOfUnit[k]!.push(r));
  const unitLabels = rowsOfUnit.map((rs) => labels[rs[0]!]!);
  const split = splitByRow(u.count, unitLabels, o);
  const expand = (ks: number[]) => ks.flatMap((k) => rowsOfUnit[k]!).sort((a, b) => a - b);
  return { train: expand(split.train), test: expand(split.test), shardRows: split.shardRows.map(expand) };
}

/** Unit indices of some rows, renumbered 0..count−1 (what DP-SGD's dp.units takes). */
function denseUnits(units: number[]): { index: Int32Array; count: number } {
  const map = new Map<number, number>();
  const index = Int32Array.from(units, (k) => {
    let v = map.get(k);
    if (v === undefined) map.set(k, (v = map.size));
    return v;
  });
  return { index, count: map.size };
}

/** A CSV with the unit id of each data row prepended as column `column` (ids in row order; canary rows get fresh ids). */
function withUnitIds(csv: string, column: string, ids: string[]): string {
  const { header, rows } = parseCsv(csv);
  return toCsv([column, ...header], rows.map((r, i) => [ids[i] ?? `canary-${i}`, ...r]));
}

export type { EncodedTable };

/** Whether the sim's VAE consortium calibrates its columns (model.calibrate): asked, and a mode that allows it. */
export function calibratesColumns(o: Pick<SimOptions, 'generator' | 'calibrate' | 'dp' | 'epsilon' | 'unitColumn'>): boolean {
  const mode = Number.isFinite(o.epsilon) ? o.dp : 'off';
  return o.generator === 'vae' && o.calibrate && (mode === 'record' || mode === 'off') && o.unitColumn === undefined;
}
