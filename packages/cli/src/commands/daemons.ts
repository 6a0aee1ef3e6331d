import { readFile, writeFile, rename } from 'node:fs/promises';
import type { Command } from 'commander';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import type { TableSchema } from '@fedtwin/models';
import { TableSchemaMessage } from '@fedtwin/protocol';
import { AggregatorConfigSchema, NodeConfigSchema, loadConfigFile, resolveFrom, validateConfig, type AggregatorConfig } from '../config.ts';
import type { ModelConfig, SecureAggregation } from '@fedtwin/protocol';
import { FinishWatch } from '../finish-watch.ts';
import { tapHost } from '../host-tap.ts';
import { createLogger, observeEvents } from '../logger.ts';
import { liveAggregatorStatus, liveNodeStatus } from '../status/live.ts';
import { publishStatus } from '../status/publish.ts';
import { explainNetworkError } from '../network-errors.ts';
import { ensurePrivateDir, restrictUmask } from '../private-dirs.ts';
import { planViews, startViews } from '../views.ts';
import { loadManifest, maxWeights, memberIds, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';

/** How long --exit-when-finished waits for members that have not fetched the final aggregate. */
const DEFAULT_FINISH_GRACE_SECONDS = 120;
/** After the last member's final answer was handed to the wire: time for it to be written before the host stops. */
const EXIT_DRAIN_MS = 1000;

/** What a first dial gets from an aggregator that is not up (yet): worth waiting for. */
// WIRE_NOT_MEMBER too: a connection dropped right after the handshake is a refusal or an aggregator too busy to
// finish the upgrade; the join decides after a few quick retries (NOT_MEMBER_RETRIES_BEFORE_JOIN in @fedtwin/node).
const AGGREGATOR_DOWN = new Set(['WIRE_DIAL_FAILED', 'WIRE_TIMEOUT', 'WIRE_STREAM_FAILED', 'WIRE_HANDSHAKE_TIMEOUT', 'WIRE_HANDSHAKE_CLOSED', 'WIRE_NOT_MEMBER']);

export function registerDaemonCommands(program: Command): void {
  program.command('aggregator').description('The consortium daemon').command('start')
    .description('Start the aggregator: admit members, run rounds, publish aggregates')
    .requiredOption('--config <file>', 'aggregator config (YAML or JSON)')
    .option('--exit-when-finished', 'exit (code 0) once every round is aggregated and every member has fetched the final aggregate and seen it co-signed, or --finish-grace has passed (default: keep running)')
    .option('--finish-grace <seconds>', 'with --exit-when-finished: the longest wait for members after the federation finished', String(DEFAULT_FINISH_GRACE_SECONDS))
    .action(async (opts: { config: string; exitWhenFinished?: boolean; finishGrace: string }) => {
      const grace = Number(opts.finishGrace);
      if (!(grace >= 0) || !Number.isFinite(grace)) throw new FedtwinError('CLI_BAD_ARGUMENT', `--finish-grace must be a number of seconds >= 0, got "${opts.finishGrace}"`, { hint: `e.g. --finish-grace ${DEFAULT_FINISH_GRACE_SECONDS}` });
      await startAggregator(opts.config, opts.exitWhenFinished ? { graceMs: grace * 1000 } : undefined);
    });

  program.command('node').description('A site\'s daemon, next to its data').command('start')
    .description('Start a node: join the consortium, train on local records, contribute updates')
    .requiredOption('--config <file>', 'node config (YAML or JSON)')
    .option('--exit-when-done', 'exit when the federation finishes (default: keep running)')
    .action(async (opts: { config: string; exitWhenDone?: boolean }) => { await startNode(opts.config, opts.exitWhenDone); });
}

async function startAggregator(configPath: string, exitWhenFinished?: { graceMs: number }): Promise<void> {
  restrictUmask(); // every file and directory this daemon creates is owner-only (0600 / 0700)
  const { config, baseDir } = await loadConfigFile(configPath, AggregatorConfigSchema);
  const viewPlans = await planViews(config); // a public bind without a token is refused before anything starts
  // Heavy modules load only for the command that needs them (keeps `fedtwin dp …` instant).
  const [{ createWireHost, loadIdentity }, { createAggregator }, { initBackend }] = await Promise.all([
    import('@fedtwin/wire'), import('@fedtwin/aggregator'), import('@fedtwin/models'),
  ]);
  const log = createLogger('aggregator', config.log.level);
  const backend = await initBackend();
  log.info({ event: 'start', nodeVersion: process.version, backend: backend.name }, `fedtwin aggregator on Node ${process.version}, tfjs backend ${backend.name}`);
  const { manifest, hash: manifestHash } = await loadManifest(resolveFrom(baseDir, config.consortium));
  const schema = await loadSchema(config.schema, baseDir);
  const modelValues = await sharedModelSize(schema, manifest.model);
  const privateKey = await loadIdentity(resolveFrom(baseDir, config.identity));
  const { peerIdOf } = await import('@fedtwin/wire');
  if (peerIdOf(privateKey) !== manifest.aggregator) {
    throw new FedtwinError('CONSORTIUM_MISMATCH', `this aggregator's identity is ${peerIdOf(privateKey)}, the consortium manifest names ${manifest.aggregator}`, { hint: 'start the aggregator with the identity the manifest names, or install the right manifest', details: { field: 'aggregator', pinned: manifest.aggregator, announced: peerIdOf(privateKey) } });
  }
  const memberList = memberIds(manifest);
  const members = new Set(memberList);
  const host = await createWireHost({ privateKey, listen: config.listen, allow: (peer) => members.has(peer), logger: log, ...(config.allowIps ? { allowIps: config.allowIps } : {}) });
  const dataDir = resolveFrom(baseDir, config.dataDir);
  const ledgerDir = config.ledgerDir ? resolveFrom(baseDir, config.ledgerDir) : `${dataDir}/ledger`;
  for (const dir of [dataDir, `${dataDir}/state`, ledgerDir]) await ensurePrivateDir(dir, log);
  // What the aggregator does not persist (joins, last requests, who fetched the final aggregate) is seen on the
  // requests it answers: for `fedtwin status` (status.json) and --exit-when-finished.
  const live = await liveAggregatorStatus({ stateDir: `${dataDir}/state`, manifest, peerId: host.peerId });
  const watch = exitWhenFinished ? new FinishWatch({ witnessQuorum: manifest.rounds.witnessQuorum ?? 0, graceMs: exitWhenFinished.graceMs }) : undefined;
  let publisher: ReturnType<typeof publishStatus> | undefined;
  let views: Awaited<ReturnType<typeof startViews>> | undefined;
  const tapped = tapHost(host, (s) => {
    if (live.observe(s)) publisher?.changed();
    watch?.served(s);
  }, (protocol, code) => views?.metrics?.refused(protocol, code));
  const aggregator = await createAggregator({
    host: tapped, dataDir: `${dataDir}/state`, consortium: manifest.consortium, members: memberList, schema, model: manifest.model,
    modelValues, strategy: manifest.strategy, training: manifest.training,
    rounds: { totalRounds: manifest.rounds.total, quorum: manifest.rounds.quorum, minParticipants: manifest.rounds.minParticipants, deadlineSeconds: manifest.rounds.deadlineSeconds },
    privacy: privacyPolicyOf(manifest),
    maxWeight: maxWeights(manifest),
    manifest: { manifest, hash: manifestHash },
    secureAggregation: secureAggregationOf(manifest),
    ledger: { dir: ledgerDir, identity: privateKey },
    logger: observeEvents(log, (e) => views?.metrics?.onEvent(e)),
  });
  views = await startViews({ role: 'aggregator', plans: viewPlans, baseDir, report: config.dashboard?.report, status: () => live.build(aggregator), bytes: () => host.bytesByProtocol(), log });
  const addrs = host.addrs();
  // tmp + rename: whoever polls for this file (fedtwin sim, scripts) never reads half of it
  await writeFile(`${dataDir}/listening.json.tmp`, JSON.stringify({ peerId: host.peerId, addrs, ...(views.urls.dashboard || views.urls.metrics ? { http: views.urls } : {}) }, null, 2));
  await rename(`${dataDir}/listening.json.tmp`, `${dataDir}/listening.json`);
  log.info({ event: 'listening', peerId: host.peerId, addrs, members: memberList.length, manifestHash, modelValues, secureAggregation: manifest.secureAggregation.scheme }, `aggregator ${host.peerId} listening on ${addrs.join(', ')}`);
  const stats = async () => ({
    peerId: host.peerId, bytes: host.bytes(), state: await aggregator.state(), rounds: await aggregator.rounds(),
    secureAggregation: aggregator.secureAggregation, keyId: await aggregator.keyId(), ledger: await aggregator.ledger(), backend: backend.name, nodeVersion: process.version,
  });
  publisher = publishStatus({ dataDir, build: () => live.build(aggregator), log });
  publisher.changed();
  const shutdown = once(async (signal: string) => {
    log.info({ event: 'stopping', signal }, `stopping (${signal})`);
    watch?.stop();
    await writeStats(`${dataDir}/result.json`, await stats());
    await publisher.stop();
    await views?.close();
    await aggregator.stop();
    await host.stop();
  });
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void shutdown(sig).then(resolve); });
    void aggregator.finished().then(async () => {
      await writeStats(`${dataDir}/result.json`, await stats());
      publisher.changed();
      if (!watch) return;
      const state = await aggregator.state();
      const excluded = new Set(state.excluded ?? []);
      watch.finished({ version: state.version, ledgerSize: (await aggregator.ledger())?.size ?? 0, active: memberList.filter((m) => !excluded.has(m)) });
      const outcome = await watch.whenDone();
      const msg = outcome.reason === 'all-fetched'
        ? 'every member has the final aggregate; exiting (--exit-when-finished)'
        : `${outcome.waitingFor.length} member(s) did not fetch the final aggregate within --finish-grace; exiting (--exit-when-finished)`;
      log.info({ event: 'exit-when-finished', reason: outcome.reason, version: state.version, waitingFor: outcome.waitingFor }, msg);
      await new Promise((r) => setTimeout(r, EXIT_DRAIN_MS));
      await shutdown('finished');
      resolve();
    });
  });
}

async function startNode(configPath: string, exitFlag?: boolean): Promise<void> {
  restrictUmask(); // state (the private adapter, the HE key), ledger, outputs: owner-only (0600 / 0700)
  const { config, baseDir } = await loadConfigFile(configPath, NodeConfigSchema);
  const viewPlans = await planViews(config); // a public bind without a token is refused before anything starts
  const [{ createWireHost, loadIdentity }, { createNode }, { initBackend }] = await Promise.all([
    import('@fedtwin/wire'), import('@fedtwin/node'), import('@fedtwin/models'),
  ]);
  const log = createLogger('node', config.log.level);
  const backend = await initBackend();
  log.info({ event: 'start', nodeVersion: process.version, backend: backend.name }, `fedtwin node on Node ${process.version}, tfjs backend ${backend.name}`);
  const { manifest, hash: manifestHash } = await loadManifest(resolveFrom(baseDir, config.consortium));
  const privateKey = await loadIdentity(resolveFrom(baseDir, config.identity));
  // The aggregator is the manifest's: Noise proves the peer holds that key, so no one else can stand in.
  const aggregatorId = manifest.aggregator;
  if (config.aggregator.peerId !== undefined && config.aggregator.peerId !== aggregatorId) {
    throw new FedtwinError('CONSORTIUM_MISMATCH', `aggregator.peerId ${config.aggregator.peerId} is not the manifest's aggregator ${aggregatorId}`, { hint: 'drop aggregator.peerId from the node config (the manifest names the aggregator) or install the right manifest', details: { field: 'aggregator', pinned: aggregatorId, announced: config.aggregator.peerId } });
  }
  if (config.aggregator.address.includes('/p2p/') && !config.aggregator.address.endsWith(`/p2p/${aggregatorId}`)) {
    throw new FedtwinError('CONSORTIUM_MISMATCH', `aggregator.address ${config.aggregator.address} names another peer than the manifest's aggregator ${aggregatorId}`, { hint: 'fix aggregator.address', details: { field: 'aggregator', pinned: aggregatorId, announced: config.aggregator.address } });
  }
  // The aggregator, and the other members it gossips with (Noise proves each holds its manifest key).
  const witnesses = config.witnesses.map((address) => ({ address, peerId: address.slice(address.lastIndexOf('/p2p/') + 5) }));
  const gossipWith = new Set(witnesses.length ? manifest.members.map((m) => m.peerId) : []);
  const host = await createWireHost({ privateKey, listen: config.listen, allow: (peer) => peer === aggregatorId || gossipWith.has(peer), logger: log, ...(config.allowIps ? { allowIps: config.allowIps } : {}) });
  // A node only dials out: unless its config sets listen, it has no listener at all (listenAddrs: []).
  log.info({ event: 'node-host', peerId: host.peerId, listenAddrs: host.addrs() }, `node ${host.peerId} ${host.addrs().length ? `listening on ${host.addrs().join(', ')}` : 'dials out only (no listener)'}`);
  const address = config.aggregator.address.includes('/p2p/') ? config.aggregator.address : `${config.aggregator.address}/p2p/${aggregatorId}`;
  const dataDir = resolveFrom(baseDir, config.dataDir);
  const ledgerDir = config.ledgerDir ? resolveFrom(baseDir, config.ledgerDir) : `${dataDir}/ledger`;
  try {
    for (const dir of [dataDir, `${dataDir}/state`, ledgerDir]) await ensurePrivateDir(dir, log);
    await host.dial(address);
    log.info({ event: 'listening', peerId: host.peerId, aggregator: aggregatorId }, `node ${host.peerId} connected to aggregator ${aggregatorId}`);
  } catch (raw) {
    // Nothing listens (yet): the aggregator may start after this node, or be restarting. The node's
    // join retries as it would mid-run, for up to unreachableGiveUpSeconds. Anything else fails now, with
    // its own message: another peer or another service at the address (WIRE_PEER_MISMATCH, WIRE_NOT_LIBP2P) —
    // waiting would not change it. A refusal (WIRE_NOT_MEMBER) is confirmed by the join's few retries.
    const err = explainNetworkError(raw);
    if (!isFedtwinError(err) || !AGGREGATOR_DOWN.has(err.code)) {
      await host.stop();
      throw err;
    }
    log.warn({ event: 'aggregator-unreachable', code: err.code, attempt: 0, protocol: 'dial' }, `aggregator ${aggregatorId} not reachable yet (${err.code}); waiting for it`);
  }
  // Level lets one process open the node's state and replica: `fedtwin status` reads what it publishes instead.
  const live = await liveNodeStatus({ stateDir: `${dataDir}/state`, ledgerDir, consortium: manifest.consortium, peerId: host.peerId });
  let publisher: ReturnType<typeof publishStatus> | undefined;
  const views = await startViews({ role: 'node', plans: viewPlans, baseDir, status: () => live.build(), bytes: () => host.bytesByProtocol(), log }).catch(async (err: unknown) => { await host.stop(); throw err; });
  const observed = observeEvents(log, (e) => { if (live.onEvent(e)) publisher?.changed(); views.metrics?.onEvent(e); });
  publisher = publishStatus({ dataDir, build: () => live.build(), log });
  publisher.changed();
  const node = await createNode({
    host, aggregator: address, dataDir: `${dataDir}/state`, csvPath: resolveFrom(baseDir, config.data.csv), backend: backend.name, logger: observed,
    synthetic: config.synthetic && { ...config.synthetic, out: resolveFrom(baseDir, config.synthetic.out) },
    resultPath: config.result ? resolveFrom(baseDir, config.result) : `${dataDir}/result.json`,
    consortium: { manifest, hash: manifestHash },
    ...(config.privacy?.require ? { privacyFloor: config.privacy.require } : {}),
    ...(config.privacy?.mode === 'off' ? { allowPrivacyOff: true } : {}),
    bytes: () => host.bytes(), seed: config.seed, privacy: { ...(config.privacy?.epsilon !== undefined ? { epsilon: config.privacy.epsilon } : {}), ...(config.privacy?.delta !== undefined ? { delta: config.privacy.delta } : {}) }, identity: privateKey, seededNoise: config.seededNoise, ...(config.heThreads !== undefined ? { heThreads: config.heThreads } : {}),
    ledgerDir, ...(witnesses.length ? { witnesses } : {}), ...(config.unreachableGiveUpSeconds !== undefined ? { unreachableGiveUpSeconds: config.unreachableGiveUpSeconds } : {}),
    heKeyFile: `${dataDir}/he-secret.key`,
  });
  let signalled = false;
  const stop = once(async () => { await publisher.stop(); await views.close(); await node.stop(); await host.stop(); });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { signalled = true; log.info({ event: 'stopping', signal: sig }, `stopping (${sig})`); void stop(); });
  try {
    await node.run();
  } catch (err) {
    if (!signalled) throw err; // a stop by signal aborts in-flight calls; that is not a failure
    return;
  } finally {
    if (exitFlag ?? config.exitWhenDone) await stop();
  }
  if (!(exitFlag ?? config.exitWhenDone)) {
    log.info({ event: 'idle' }, 'federation finished; staying up (Ctrl-C to stop)');
    await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  }
}

export async function loadSchema(schema: string | object, baseDir: string): Promise<TableSchema> {
  if (typeof schema !== 'string') return schema as TableSchema;
  const path = resolveFrom(baseDir, schema);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new FedtwinError('CONFIG_INVALID', `schema file ${path}: ${(err as Error).message}`, { hint: 'point "schema" at a JSON table schema (fedtwin sim writes one as schema.json)' });
  }
  return validateConfig(raw, TableSchemaMessage, `schema ${path}`) as TableSchema;
}

/**
 * What every member's update must have: the VAE's shared sub-model size, or for the marginals generator the
 * length of its count vector (a function of the schema and the pinned bins alone).
 */
export async function sharedModelSize(schema: TableSchema, model: ModelConfig): Promise<number> {
  if (model.kind === 'marginals') {
    const { countVectorLength } = await import('@fedtwin/marginals');
    return countVectorLength(schema, model);
  }
  const { createTwinVae, encodeTable } = await import('@fedtwin/models');
  const layout = encodeTable({ schema, rows: [] });
  const vae = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: model.latentDim, hidden: model.hidden, sharedLayers: model.sharedLayers, seed: model.seed });
  try {
    // With model.calibrate the column release's counts travel behind the model values (the same vector every round).
    const tail = model.calibrate ? (await import('@fedtwin/marginals')).columnReleaseLength(schema) : 0;
    return vae.sharedSize + tail;
  } finally {
    vae.dispose();
  }
}

async function writeStats(path: string, stats: object): Promise<void> {
  await writeFile(path, JSON.stringify(stats, null, 2));
}

function once<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  let p: Promise<void> | undefined;
  return (...a) => (p ??= fn(...a));
}
