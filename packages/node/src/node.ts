import { writeFile, mkdir } from 'node:fs/promises';
import type { z } from 'zod';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import {
  AggregateResponse, CosignAck, JoinResponse, ProbeResponse, VerdictAck, KeyPublishAck, LedgerSyncResponse, MAX_LEDGER_SYNC_BYTES, KeyResponse, MAX_TASK_WAIT_MS, Protocols, RefuseAck, TaskResponse, UpdateAck, bytesToF32, f32ToBytes,
  type UpdateHeader, genesisModelVersion, nextModelVersion,
} from '@fedtwin/protocol';
import { createStrategy, versionHash, type Strategy } from '@fedtwin/strategy';
import {
  createRng, createTwinVae, decodeRows, encodeTable, fillNormal, osNoise, readCsvFile, tableFromCsv, toCsv,
  type EncodedTable, type Table, type TableSchema, type TwinVae,
} from '@fedtwin/models';
import type { PrivateKey } from '@libp2p/interface';
import { NodeStore, type NodeState } from './store.ts';
import { bfvMember, plaintextMember, type MemberScheme } from './scheme.ts';
import { sha256Hex } from '@fedtwin/ledger';
import { openWitness, type Witness } from './witness.ts';
import { privatizeSiteUpdate } from '@fedtwin/dp';
import { checkAffordable, openBudgets, planRound, type SiteBudget } from './privacy.ts';
import type { PrivacyBudget } from '@fedtwin/dp';
import type { Logger, NodeHost } from './types.ts';
import { agreedJoin, checkOwnFloor, checkTaskTraining, warnPrivacyOff, type PinnedConsortium } from './consortium-check.ts';
import type { PrivacyFloor } from '@fedtwin/consortium';

export interface SyntheticOutput {
  /** Rows to generate when the federation finishes. */
  rows: number;
  /** CSV file to write them to. */
  out: string;
  /** Class mix to generate (category → probability); default: this site's own label mix. */
  classProbs?: Record<string, number>;
}

export interface NodeInit {
  host: NodeHost;
  /** The consortium manifest this member installed: what it agreed to; everything announced is checked against it. */
  consortium: PinnedConsortium;
  /** The weakest privacy this member contributes under (a manifest weaker than it is refused). */
  privacyFloor?: PrivacyFloor;
  /** This member's own config says `privacy: { mode: off }`: the only way it joins a consortium without DP. */
  allowPrivacyOff?: boolean;
  /** Aggregator's multiaddr including `/p2p/<peer ID>` (re-dialled after it restarts), or its peer ID. */
  aggregator: string;
  /** Give up after the aggregator has been unreachable this long (default 300 s). */
  unreachableGiveUpSeconds?: number;
  dataDir: string;
  /** The site's records (CSV); validated against the consortium's schema at join. */
  csvPath: string;
  backend: string;
  logger: Logger;
  synthetic?: SyntheticOutput;
  /** Where to write a JSON summary (losses, bytes) when the federation finishes. */
  resultPath?: string;
  /** Return from run() when the federation finishes (default true). */
  exitWhenDone?: boolean;
  /** For tests and sims: crash on purpose after this many contributions (simulates a dying site). */
  bytes?: () => { sent: number; received: number };
  seed?: number;
  /** This member's own privacy budget (defaults: the consortium's). */
  privacy?: SiteBudget;
  /** Simulations only: draw DP noise and HE rounding from `seed` so a run can be reproduced. Anyone who
   *  knows the seed can subtract the noise, so a real site never sets this. */
  seededNoise?: boolean;
  /** HE worker threads (default: 2, or 1 on a one-core machine). */
  heThreads?: number;
  /** This member's libp2p identity: opens the HE key sealed for it in the key ceremony. */
  identity?: PrivateKey;
  /** Where the HE secret key is kept (mode 0600); default `<dataDir>/../he-secret.key` (beside, not inside, the Level directory). */
  heKeyFile?: string;
  /** Where this member keeps its replica of the consortium's audit log (needs `identity`). */
  ledgerDir?: string;
}

export interface FedtwinNode {
  readonly peerId: string;
  /** Joins and takes part in rounds until the federation finishes (or stop() is called). */
  run(): Promise<NodeRunResult>;
  stop(): Promise<void>;
}

export interface NodeRunResult {
  version: number;
  hash: string;
  contributions: number;
  losses: Array<{ round: number; losses: number[] }>;
  syntheticRows: number;
}

type KeyResponseT = import('zod').infer<typeof KeyResponse>;
const RPC_TIMEOUT_MS = 120_000;
/** Wire errors worth retrying: the aggregator may be restarting. */
const TRANSIENT = new Set(['WIRE_TIMEOUT', 'WIRE_DIAL_FAILED', 'WIRE_STREAM_FAILED']);

/**
 * A hospital's daemon: trains the consortium's model on local records, sends only the shared
 * sub-model's update, and applies the published aggregates. Raw records never leave this process.
 */
export async function createNode(init: NodeInit): Promise<FedtwinNode> {
  const log = init.logger;
  const host = init.host;
  const store = await NodeStore.open(init.dataDir);
  const abort = new AbortController();
  let stopped = false;
  let vae: TwinVae | undefined;
  let scheme: MemberScheme | undefined;
  let witness: Witness | undefined;

  // Every call retries while the aggregator is unreachable (restarting, network blip), with a
  // bounded budget: a consortium that is gone for good ends the node with a clear error.
  const giveUpMs = (init.unreachableGiveUpSeconds ?? 300) * 1000;
  let joinedOnce = false;
  const call = async <Res>(name: string, header: unknown, response: z.ZodType<Res>, opts: { body?: Uint8Array; maxBodyBytes?: number; timeoutMs?: number } = {}) => {
    let firstFailure: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await host.request<unknown, Res>(init.aggregator, name, { header, body: opts.body }, {
          response, maxBodyBytes: opts.maxBodyBytes ?? 0, timeoutMs: opts.timeoutMs ?? RPC_TIMEOUT_MS, signal: abort.signal,
        });
      } catch (err) {
        // A missing protocol: the aggregator is starting or restarting (it listens a moment before its
        // handlers are registered), also before our first join (a node may start first). A refused
        // handshake is retried only once joined: before that we cannot tell "restarting" from "does not
        // admit us", and a stranger or a wrong key must hear so at once (WIRE_NOT_MEMBER), not in 300 s.
        const transient = isFedtwinError(err) && (TRANSIENT.has(err.code) || err.code === 'WIRE_UNSUPPORTED_PROTOCOL' || (joinedOnce && err.code === 'WIRE_NOT_MEMBER'));
        if (stopped || !transient) throw err;
        firstFailure ??= Date.now();
        if (Date.now() - firstFailure > giveUpMs) {
          throw new FedtwinError('NODE_AGGREGATOR_UNREACHABLE', `aggregator unreachable for ${Math.round(giveUpMs / 1000)} s (last error ${err.code}: ${err.message})`, { hint: 'check that the aggregator runs and that aggregator.address is right', cause: err });
        }
        log.warn({ event: 'aggregator-unreachable', code: err.code, attempt, protocol: name }, `aggregator unreachable (${err.code}); retrying`);
        await sleep(Math.min(5000, 250 * 2 ** Math.min(attempt, 5)), abort.signal);
      }
    }
  };

  async function run(): Promise<NodeRunResult> {
    // Read and parse before contacting anyone: a missing or malformed export fails fast (size-capped read).
    const { header: csvHeader, rows } = await readCsvFile(init.csvPath);
    // Before contacting anyone: does this member agree to its own manifest at all (privacy floor)?
    checkOwnFloor(init.consortium, host.peerId, { ...(init.privacyFloor ? { floor: init.privacyFloor } : {}), ...(init.allowPrivacyOff ? { allowPrivacyOff: true } : {}) });
    const { header: announced } = await call(Protocols.join, { nodeVersion: process.version, backend: init.backend }, JoinResponse);
    // Everything the aggregator announces must be what this member pinned; from here on, the pinned values are used.
    const join = agreedJoin(init.consortium, announced);
    joinedOnce = true;
    log.info({ event: 'joined', consortium: join.consortium, strategy: join.strategy, modelValues: join.modelValues }, `joined consortium ${join.consortium}`);
    const schema = join.schema as TableSchema;
    const table: Table = tableFromCsv(csvHeader, rows, schema);
    const data: EncodedTable = encodeTable(table);
    if (data.rows < 1) throw new FedtwinError('DATA_EMPTY', `${init.csvPath} has no records`);
    log.info({ event: 'data-loaded', rows: data.rows, columns: schema.columns.length }, `loaded ${data.rows} records from ${init.csvPath}`);

    const strategy: Strategy = createStrategy(join.strategy);
    vae = createTwinVae({
      width: data.width, segments: data.segments, classes: data.classes,
      latentDim: join.model.latentDim, hidden: join.model.hidden, sharedLayers: join.model.sharedLayers, seed: join.model.seed,
    });
    if (vae.sharedSize !== join.modelValues) {
      throw new FedtwinError('NODE_MODEL_MISMATCH', `local shared model has ${vae.sharedSize} values, the consortium's ${join.modelValues}`, { hint: 'run the same fedtwin version as the aggregator' });
    }

    // Secure aggregation: BFV ciphertexts under the consortium key, or plaintext (baseline).
    const sa = join.secureAggregation;
    if (sa.scheme === 'bfv') {
      if (!init.identity) throw new FedtwinError('NODE_BAD_INIT', 'secure aggregation needs the member identity to open its sealed HE key');
      scheme = await bfvMember({
        config: sa, announcedKeyId: join.keyId, identity: init.identity, peerId: host.peerId,
        keyFile: init.heKeyFile ?? `${dirname(init.dataDir)}/he-secret.key`, logger: log, giveUpMs,
        threads: init.heThreads ?? Math.min(2, availableParallelism()),
        io: {
          fetchKey: async () => (await call(Protocols.key, { waitMs: MAX_TASK_WAIT_MS }, KeyResponse, { timeoutMs: MAX_TASK_WAIT_MS + 30_000 })).header as KeyResponseT,
          publish: async (keyId, epoch, boxes) => {
            await call(Protocols.keyPublish, { keyId, epoch, boxes: boxes.length }, KeyPublishAck, { body: new TextEncoder().encode(JSON.stringify(boxes)) });
          },
        },
      });
    } else {
      scheme = plaintextMember();
      log.warn({ event: 'plaintext-aggregation' }, 'secure aggregation is OFF: updates travel in plaintext (baseline mode)');
    }
    const memberScheme = scheme;
    if (init.ledgerDir && init.identity) {
      witness = await openWitness({ dir: init.ledgerDir, identity: init.identity, aggregatorPeerId: aggregatorPeerId(init.aggregator), origin: `fedtwin/${join.consortium}` });
    }

    // Durable state: the global model this member holds. Version 0 is the seeded initial model,
    // identical on every member.
    let global: Float32Array;
    let state: NodeState;
    const saved = await store.load();
    const genesis = genesisModelVersion({ consortium: join.consortium, modelValues: join.modelValues, strategy: join.strategy, model: join.model, manifestHash: init.consortium.hash });
    if (saved) {
      global = bytesToF32(saved.global);
      state = saved.state;
      if (state.base === undefined) {
        if (state.version !== 0) throw new FedtwinError('STATE_CORRUPT', `the saved state at version ${state.version} has no model version id`, { hint: 'this dataDir was written by an older fedtwin; start this member from a fresh dataDir' });
        state = { ...state, base: genesis };
      }
      if (saved.private) vae.setPrivateWeights(bytesToF32(saved.private));
      log.info({ event: 'resume', version: state.version, lastRound: state.lastRound }, `resuming at global version ${state.version}`);
    } else {
      global = vae.getSharedWeights();
      state = { version: 0, hash: versionHash(global), base: genesis, lastRound: 0, contributions: [], losses: [] };
      await store.save(state, f32ToBytes(global), f32ToBytes(vae.getPrivateWeights()));
    }

    // Witness: replicate the audit log, check it, co-sign its checkpoint. A fork or an edit stops
    // this member (LEDGER_INCONSISTENT propagates): it will not contribute to a rewritten history.
    const syncLedger = async (): Promise<void> => {
      if (!witness) return;
      const { header, body } = await call(Protocols.ledger, { fromSize: witness.size }, LedgerSyncResponse, { maxBodyBytes: MAX_LEDGER_SYNC_BYTES });
      if (header.size < witness.size) {
        throw new FedtwinError('LEDGER_INCONSISTENT', `the aggregator's log has ${header.size} entries, but this member already verified and co-signed a checkpoint of ${witness.size}: history was rolled back or rewritten`, {
          hint: 'do not contribute; keep this member\'s ledger directory as evidence (fedtwin ledger verify --dir …) and alert the consortium',
          details: { served: header.size, accepted: witness.size },
        });
      }
      if (header.size === witness.size) return;
      const parsed = JSON.parse(new TextDecoder().decode(body ?? new Uint8Array())) as { entries: string[]; consistencyProof: string[] };
      const bundle = {
        entries: parsed.entries.map((e) => Uint8Array.from(Buffer.from(e, 'base64'))),
        consistencyProof: parsed.consistencyProof.map((h) => Uint8Array.from(Buffer.from(h, 'hex'))),
        checkpoint: header.checkpoint,
      };
      const accepted = await witness.accept(bundle, state.ledgerLeaves ?? []);
      const { header: ack } = await call(Protocols.cosign, { note: accepted.note }, CosignAck);
      log.info({ event: 'ledger-cosigned', size: accepted.size, root: accepted.rootHash, cosignatures: ack.cosignatures }, `ledger checkpoint ${accepted.size} verified and co-signed`);
    };

    const sendVerdict = async (v: { round: number; version?: number; probe?: string; body: Uint8Array; participants: number; valid: boolean; reason: string }): Promise<void> => {
      const sumHash = sha256Hex(v.body);
      const reason = v.reason.slice(0, 1000);
      const signed = witness
        ? await witness.sign({ type: 'verdict', v: 1, round: v.round, node: host.peerId, sumHash, participants: v.participants, valid: v.valid,
          ...(v.version !== undefined ? { version: v.version } : {}), ...(v.probe !== undefined ? { probe: v.probe } : {}), ...(reason ? { reason } : {}) })
        : undefined;
      try {
        await call(Protocols.verdict, { round: v.round, ...(v.version !== undefined ? { version: v.version } : {}), ...(v.probe !== undefined ? { probe: v.probe } : {}), sumHash, valid: v.valid, reason, entry: signed?.entry ?? '' }, VerdictAck);
      } catch (err) {
        // The probe closed or the aggregate moved on meanwhile: nothing to add.
        if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
        log.warn({ event: 'verdict-declined', round: v.round, code: err.code, reason: err.message }, `verdict not recorded: ${err.message}`);
      }
      log.warn({ event: 'verdict-sent', round: v.round, version: v.version, probe: v.probe, valid: v.valid, reason }, `round ${v.round}: ${v.probe ? `probe ${v.probe}` : `aggregate ${v.version}`} judged ${v.valid ? 'valid' : 'unusable'}`);
    };

    /** A probe: a subset sum of a round whose aggregate was reported unusable. Decrypt it and say whether it works. */
    const answerProbe = async (id: string): Promise<void> => {
      let res: { header: ProbeResponse; body?: Uint8Array };
      try {
        res = await call(Protocols.probe, { id }, ProbeResponse, { maxBodyBytes: memberScheme.sumBytes(join.modelValues) });
      } catch (err) {
        if (isFedtwinError(err) && err.code === 'AGG_NO_SUCH_PROBE') return;
        throw err;
      }
      const { header: p, body } = res;
      let valid = true;
      let reason = '';
      if (!body || p.values !== global.length || p.encoding !== memberScheme.encoding) {
        valid = false; reason = 'the probe has the wrong shape or encoding';
      } else {
        try {
          await memberScheme.decode(body, global.length, { keyId: p.keyId, participants: p.participants });
        } catch (err) {
          if (!isFedtwinError(err) || err.code !== 'NODE_BAD_AGGREGATE') throw err;
          valid = false; reason = err.message;
        }
      }
      await sendVerdict({ round: p.round, probe: p.id, body: body ?? new Uint8Array(), participants: p.participants.length, valid, reason });
    };

    const catchUp = async (target: number): Promise<void> => {
      // Before every round, not only when aggregates are missing: a log rolled back or rewritten while
      // the aggregator restarted is caught before this member contributes to it (one small request).
      await syncLedger();
      while (state.version < target) {
        const v = state.version + 1;
        const tDownload = performance.now();
        const cDownload = process.cpuUsage();
        const { header: agg, body } = await call(Protocols.aggregate, { version: v }, AggregateResponse, { maxBodyBytes: memberScheme.sumBytes(join.modelValues) });
        if (agg.version !== v || agg.values !== global.length || !body || agg.encoding !== memberScheme.encoding) {
          throw new FedtwinError('NODE_BAD_AGGREGATE', `aggregate for version ${v} has the wrong shape or encoding (${agg.encoding})`);
        }
        if (agg.baseHash !== state.base) {
          throw new FedtwinError('NODE_DIVERGED', `aggregate ${v} applies to model version ${agg.baseHash.slice(0, 12)}…, this member holds ${state.base!.slice(0, 12)}…`, { hint: 'this member\'s state diverged from the consortium: remove its dataDir to resync' });
        }
        const tDecode = performance.now();
        const cDecode = process.cpuUsage();
        let decoded: Float64Array;
        try {
          decoded = await memberScheme.decode(body, global.length, { keyId: agg.keyId, participants: agg.participants });
        } catch (err) {
          if (!isFedtwinError(err) || err.code !== 'NODE_BAD_AGGREGATE') throw err;
          // Not the end of this member: say so (signed, into the ledger) and wait for the consortium to
          // find the contribution that broke the sum; the aggregate is then replaced or withdrawn.
          await sendVerdict({ round: agg.round, version: v, body, participants: agg.participants.length, valid: false, reason: err.message });
          throw new AggregateUnusable(v, err.message);
        }
        global = strategy.applyAggregate(global, decoded, agg.totalWeight, agg.participants.length);
        state = { ...state, version: v, hash: versionHash(global), base: nextModelVersion(state.base!, sha256Hex(body)) };
        const tSave = performance.now();
        const cSave = process.cpuUsage();
        await store.save(state, f32ToBytes(global));
        const ms = {
          downloadMs: Math.round(tDecode - tDownload), decodeMs: Math.round(tSave - tDecode), saveMs: Math.round(performance.now() - tSave), bytes: body.length,
          cpu: { downloadMs: cpuMsBetween(cDownload, cDecode), decodeMs: cpuMsBetween(cDecode, cSave), saveMs: cpuMsBetween(cSave) },
        };
        log.info({ event: 'global-updated', version: v, hash: state.hash, participants: agg.participants.length, ...ms }, `applied aggregate → global version ${v}`);
      }
    };

    // Privacy: the consortium's policy, this member's own budgets (persisted), and the round plan.
    const policy = join.privacy;
    const budgets = openBudgets(state.privacy, policy, init.privacy ?? {});
    const budgetEps = init.privacy?.epsilon ?? policy.epsilon;
    const budgetDelta = init.privacy?.delta ?? policy.delta;
    // Site-level DP noise: every bit from the OS CSPRNG, like DP-SGD's (seeded only in simulations).
    const seededRng = init.seededNoise ? createRng((init.seed ?? 1) * 7919 + 17) : undefined;
    const osNormals = seededRng ? undefined : osNoise();
    const normal = (out: Float32Array, std: number) => {
      if (seededRng) {
        fillNormal(seededRng, out, 0, std);
        return;
      }
      const z = osNormals!.next(out.length);
      for (let i = 0; i < out.length; i++) out[i] = std * z[i]!;
    };
    if (init.seededNoise) log.warn({ event: 'seeded-noise' }, 'DP noise and HE rounding are seeded (simulation mode): not private against anyone who knows the seed');
    if (policy.mode !== 'off') {
      log.info({ event: 'privacy', mode: policy.mode, epsilon: budgetEps, delta: budgetDelta, spent: spentSummary(budgets) }, `privacy: ${policy.mode}-level DP, budget ε = ${budgetEps}, δ = ${budgetDelta}`);
    }
    const persist = async (pending?: Uint8Array) => {
      state = { ...state, privacy: { ...state.privacy, record: budgets.record?.toJSON(), site: budgets.site?.toJSON() } };
      await store.save(state, f32ToBytes(global), f32ToBytes(vae!.getPrivateWeights()), pending);
    };

    const deliver = async (header: UpdateHeader, body: Uint8Array, losses: number[], phases: Record<string, number> = {}, cpuAtStart?: NodeJS.CpuUsage) => {
      try {
        const tUpload = performance.now();
        const cUpload = process.cpuUsage();
        const { header: ack } = await call(Protocols.update, header, UpdateAck, { body });
        phases.uploadMs = Math.round(performance.now() - tUpload);
        phases.uploadCpuMs = cpuMsBetween(cUpload);
        if (cpuAtStart) {
          // CPU of this process (HE worker threads included) from the task to the acknowledgement
          phases.cpuMs = cpuMsBetween(cpuAtStart);
        }
        state = {
          ...state, lastRound: header.round, pending: undefined, pendingLeaf: undefined,
          ledgerLeaves: state.pendingLeaf ? [...(state.ledgerLeaves ?? []), { leafHash: state.pendingLeaf, ...(ack.ledgerIndex !== undefined ? { index: ack.ledgerIndex } : {}) }] : state.ledgerLeaves,
          contributions: [...state.contributions, { round: header.round, baseVersion: header.baseVersion, loss: header.loss, weight: header.weight, trainSeconds: header.trainSeconds, at: Date.now(), privacy: header.privacy }],
          losses: [...state.losses, { round: header.round, losses }],
        };
        log.info({ event: 'contributed', round: header.round, loss: header.loss, trainSeconds: header.trainSeconds, contributions: ack.contributions, privacy: header.privacy, phases }, `round ${header.round}: update sent (loss ${header.loss.toFixed(4)}, trained ${header.trainSeconds.toFixed(1)} s)`);
      } catch (err) {
        if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
        // The aggregator declined (round closed, version moved on, already has it): move on.
        // The privacy cost stays recorded: the update left this member.
        state = { ...state, lastRound: header.round, pending: undefined, pendingLeaf: undefined };
        const level = err.code === 'AGG_DUPLICATE' ? 'info' : 'warn';
        log[level]({ event: 'update-declined', round: header.round, code: err.code, reason: err.message }, `round ${header.round}: update declined: ${err.message}`);
      }
      await persist();
    };

    while (!stopped) {
      const { header: task } = await call(Protocols.task, { afterRound: state.lastRound, waitMs: MAX_TASK_WAIT_MS }, TaskResponse, { timeoutMs: MAX_TASK_WAIT_MS + 30_000 });
      if (stopped) break;
      if (task.status === 'idle') continue;
      if (task.status === 'probe') {
        await answerProbe(task.id);
        continue;
      }
      if (task.status === 'finished') {
        try {
          await catchUp(task.version); // syncs and co-signs the final checkpoint first
        } catch (err) {
          if (!(err instanceof AggregateUnusable)) throw err;
          await sleep(1000, abort.signal);
          continue;
        }
        log.info({ event: 'federation-finished', version: state.version, hash: state.hash }, `federation finished at global version ${state.version}`);
        break;
      }
      // A crash between paying for an update and its acknowledgement: re-send the very same bytes.
      if (state.pending) {
        const pendingBody = saved?.pending;
        if (state.pending.round === task.round && pendingBody) {
          log.info({ event: 'resend', round: task.round }, `round ${task.round}: re-sending the update persisted before a restart`);
          await deliver(state.pending.header, pendingBody, []);
          continue;
        }
        state = { ...state, pending: undefined };
      }
      const cpuAtStart = process.cpuUsage(); // this process, its HE worker threads included
      const tCatchUp = performance.now();
      try {
        await catchUp(task.baseVersion);
      } catch (err) {
        if (!(err instanceof AggregateUnusable)) throw err;
        await sleep(1000, abort.signal); // the report is in; the aggregator opens probes next
        continue;
      }
      const catchUpMs = Math.round(performance.now() - tCatchUp);
      if (state.version !== task.baseVersion) {
        throw new FedtwinError('NODE_DIVERGED', `round ${task.round} is based on version ${task.baseVersion}, this member holds ${state.version}`);
      }
      checkTaskTraining(init.consortium, task.training);
      if (policy.mode === 'off') warnPrivacyOff(log, task.round);
      if (task.baseHash !== state.base) {
        throw new FedtwinError('NODE_DIVERGED', `round ${task.round} is based on model version ${task.baseHash.slice(0, 12)}…, but the aggregates this member applied lead to ${state.base!.slice(0, 12)}…`, { hint: 'the aggregator announces a base its own published aggregates do not lead to; keep this member\'s ledger as evidence and alert the consortium' });
      }

      // Budget check before any training: refuse (and say why) rather than overspend.
      const plan = planRound(policy, data.rows, task.training, join.totalRounds, budgetDelta, budgetEps);
      const check = checkAffordable(budgets, plan);
      if (!check.affordable || state.privacy?.refused) {
        const reason = check.reason ?? state.privacy!.refused!.reason;
        state = { ...state, lastRound: task.round, privacy: { ...state.privacy, refused: state.privacy?.refused ?? { round: task.round, code: 'NODE_BUDGET_EXHAUSTED', reason } } };
        await persist();
        log.error({ event: 'budget-refusal', round: task.round, code: 'NODE_BUDGET_EXHAUSTED', reason, spent: spentSummary(budgets) }, `round ${task.round}: refusing to contribute: ${reason}`);
        const refusalEntry = witness
          ? (await witness.sign({ type: 'refusal', v: 1, round: task.round, node: host.peerId, reason: reason.slice(0, 1000), epsilonRemaining: Math.max(0, (check.spends[0]?.budgetEpsilon ?? 0) - (check.spends[0]?.epsilonTotal ?? 0)), epsilonRequired: check.spends[0]?.epsilonRound ?? 0 })).entry
          : '';
        try {
          await call(Protocols.refuse, { round: task.round, code: 'NODE_BUDGET_EXHAUSTED', reason, privacy: check.spends, entry: refusalEntry }, RefuseAck);
        } catch (err) {
          // The round closed meanwhile: the refusal stands and is sent again with the next round.
          if (!isFedtwinError(err) || !err.code.startsWith('AGG_')) throw err;
          log.warn({ event: 'refusal-declined', round: task.round, code: err.code, reason: err.message }, `round ${task.round}: the aggregator did not record the refusal: ${err.message}`);
        }
        continue;
      }

      const roundRef = { round: task.round, baseHash: state.base!, ...(task.keyId ? { keyId: task.keyId } : {}) };
      if (memberScheme.canContribute && !(await memberScheme.canContribute(roundRef))) {
        // The state was lost after this round's update was encrypted (it may have been sent): a second one
        // would share the round's mask. Sit the round out; nothing is spent.
        log.warn({ event: 'round-skipped', round: task.round, code: 'NODE_ROUND_ALREADY_ENCRYPTED' }, `round ${task.round}: this member already encrypted an update for this round before a restart; sitting it out`);
        state = { ...state, lastRound: task.round };
        await persist();
        continue;
      }
      // HE's offline phase (this update's encryption masks) runs on the HE workers while this thread trains.
      memberScheme.prepare?.(global.length, roundRef)?.catch((err: unknown) => {
        log.warn({ event: 'he-prepare-failed', err: String(err) }, 'could not prepare HE masks ahead; they will be made when needed');
      });
      // Train from the current global weights; send only the shared sub-model's change.
      const cpuTrain = process.cpuUsage(); // process-wide: the HE workers' offline phase counts here too
      const t0 = performance.now();
      vae.setSharedWeights(global);
      const dp = plan.record ? { clip: plan.record.clip, noiseMultiplier: plan.record.noiseMultiplier, secureNoise: !init.seededNoise } : undefined;
      const trained = await vae.trainEpochs(data, { ...task.training, seed: (init.seed ?? 1) * 1_000_003 + task.round, dp });
      if (plan.record && (trained.steps !== plan.record.steps || trained.sampleRate !== plan.record.sampleRate)) {
        throw new FedtwinError('NODE_PRIVACY_MISMATCH', `trainer took ${trained.steps} steps at q=${trained.sampleRate}, the accountant planned ${plan.record.steps} at q=${plan.record.sampleRate}`);
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const trainCpuMs = cpuMsBetween(cpuTrain);
      const local = vae.getSharedWeights();
      const delta = new Float32Array(local.length);
      for (let i = 0; i < local.length; i++) delta[i] = local[i]! - global[i]!;
      const update = plan.site
        ? strategy.encodeUpdate(privatizeSiteUpdate(delta, plan.site.clip, plan.site.noiseMultiplier, plan.site.minParticipants, normal).values, 1)
        : strategy.encodeUpdate(delta, data.rows);
      const loss = trained.losses.at(-1) ?? NaN;
      for (const mode of ['record', 'site'] as const) if (plan[mode]) budgets[mode]!.record(plan[mode]!);
      const tEncode = performance.now();
      const cEncode = process.cpuUsage();
      const body = await memberScheme.encode(update.values, roundRef, init.seededNoise ? [init.seed ?? 1, task.round] : undefined);
      // The round sum's decryption masks, on the HE workers while this thread persists and uploads.
      memberScheme.prepareSum?.(global.length, roundRef)?.catch((err: unknown) => {
        log.warn({ event: 'he-prepare-failed', err: String(err) }, 'could not prepare HE decryption masks ahead; they will be made when the sum arrives');
      });
      const keyId = task.keyId ?? memberScheme.keyId;
      const main = check.spends.find((p) => p.mode === 'record') ?? check.spends[0];
      const signed = witness
        ? await witness.sign({
          type: 'contribution', v: 1, round: task.round, node: host.peerId, ciphertextHash: sha256Hex(body), ciphertextSize: body.length,
          ...(plan.site ? {} : { sampleCount: data.rows }),
          epsilon: main?.epsilonRound ?? 0, delta: main?.delta ?? 0, epsilonTotal: main?.epsilonTotal ?? 0, deltaTotal: main?.delta ?? 0,
          keyId: keyId ?? 'plaintext', globalVersion: state.base!,
        })
        : undefined;
      const header: UpdateHeader = {
        round: task.round, baseVersion: task.baseVersion, baseHash: state.base!, weight: update.weight,
        values: update.values.length, encoding: memberScheme.encoding, ...(keyId ? { keyId } : {}),
        loss: Number.isFinite(loss) ? loss : 0, trainSeconds, privacy: check.spends, entry: signed?.entry ?? '',
      };
      // Spending is durable before the update leaves: a crash now re-sends, never forgets or re-pays.
      const tPersist = performance.now();
      const cPersist = process.cpuUsage();
      state = { ...state, pending: { round: task.round, header }, pendingLeaf: signed?.leafHash };
      await persist(body);
      const phases = { catchUpMs, trainMs: Math.round(trainSeconds * 1000), trainCpuMs, encodeMs: Math.round(tPersist - tEncode), persistMs: Math.round(performance.now() - tPersist),
        encodeCpuMs: cpuMsBetween(cEncode, cPersist), persistCpuMs: cpuMsBetween(cPersist),
        ...(memberScheme.lastMaskWaitMs !== undefined ? { maskWaitMs: memberScheme.lastMaskWaitMs } : {}) };
      await deliver(header, body, trained.losses, phases, cpuAtStart);
    }

    let syntheticRows = 0;
    if (init.synthetic && !stopped) {
      vae.setSharedWeights(global);
      const probs = classProbabilities(data, init.synthetic.classProbs);
      const gen = vae.generate(init.synthetic.rows, { classProbs: probs, seed: (init.seed ?? 1) + 7 });
      const synthRows = decodeRows(schema, gen.x, gen.cond);
      await mkdir(dirname(init.synthetic.out), { recursive: true });
      await writeFile(init.synthetic.out, toCsv(schema.columns.map((c) => c.name), synthRows));
      syntheticRows = synthRows.length;
      log.info({ event: 'synthetic-written', rows: syntheticRows, out: init.synthetic.out }, `wrote ${syntheticRows} synthetic records to ${init.synthetic.out}`);
    }
    const result: NodeRunResult = { version: state.version, hash: state.hash, contributions: state.contributions.length, losses: state.losses, syntheticRows };
    if (init.resultPath) {
      await mkdir(dirname(init.resultPath), { recursive: true });
      await writeFile(init.resultPath, JSON.stringify({ peerId: host.peerId, modelValues: join.modelValues, ...result, contributionsDetail: state.contributions, privacy: { mode: join.privacy.mode, spent: spentSummary(openBudgets(state.privacy, join.privacy, init.privacy ?? {})), refused: state.privacy?.refused ?? null }, bytes: init.bytes?.(), backend: init.backend, nodeVersion: process.version }, null, 2));
    }
    return result;
  }

  return {
    peerId: host.peerId,
    run,
    async stop() {
      if (stopped) return;
      stopped = true;
      abort.abort();
      vae?.dispose();
      await scheme?.close();
      await witness?.close();
      await store.close();
    },
  };
}

/** CPU milliseconds of this process (worker threads included) between two process.cpuUsage() readings (`to` omitted: now). */
function cpuMsBetween(from: NodeJS.CpuUsage, to: NodeJS.CpuUsage = process.cpuUsage()): number {
  return Math.round((to.user - from.user + to.system - from.system) / 1000);
}

/** The aggregator's peer ID from its address (`…/p2p/<id>`) or the bare ID. */
function aggregatorPeerId(target: string): string {
  const i = target.lastIndexOf('/p2p/');
  return i >= 0 ? target.slice(i + 5) : target;
}

function spentSummary(b: { record?: PrivacyBudget; site?: PrivacyBudget }): Record<string, { epsilon: number; budget: number; delta: number }> {
  const out: Record<string, { epsilon: number; budget: number; delta: number }> = {};
  for (const mode of ['record', 'site'] as const) {
    const x = b[mode];
    if (x) out[mode] = { epsilon: x.spent().epsilon, budget: x.epsilon, delta: x.delta };
  }
  return out;
}

function classProbabilities(data: EncodedTable, declared?: Record<string, number>): number[] {
  if (declared) {
    const p = data.classes.map((c) => declared[c] ?? 0);
    const s = p.reduce((a, b) => a + b, 0);
    if (!(s > 0)) throw new FedtwinError('CONFIG_INVALID', 'synthetic.classProbs gives no class a positive probability', { hint: `name some of: ${data.classes.join(', ')}` });
    return p.map((x) => x / s);
  }
  const counts = new Array<number>(data.classes.length).fill(0);
  for (const c of data.cond) counts[c]!++;
  return counts.map((c) => c / data.rows);
}


/** A published aggregate this member cannot use (reported with a signed verdict); the node waits for the consortium's decision. */
class AggregateUnusable extends Error {
  readonly version: number;
  constructor(version: number, reason: string) {
    super(`aggregate ${version} is unusable: ${reason}`);
    this.version = version;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
