import { FedtwinError } from '@fedtwin/errors';
import {
  AggregateRequest, JoinRequest, Protocols, RefuseRequest, TaskRequest, UpdateHeader,
  KeyPublishHeader, KeyRequest, MAX_SEALED_KEYS_BYTES, ProbeRequest, VerdictRequest,
  type ProbeResponse,
  type AggregateResponse, type JoinResponse, type KeyResponse, type ModelConfig, type PrivacyPolicy, type SecureAggregation,
  type TaskResponse, type TrainingConfig, type UpdateAck, genesisModelVersion, nextModelVersion,
} from '@fedtwin/protocol';
import { bfvScheme, int32ToBytes, maskedValues, plaintextScheme, secaggScheme, type AggregationScheme, type SumAccumulator } from './scheme.ts';
import {
  SecaggAck, SecaggKeysRequest, SecaggRevealRequest, SecaggRoundRequest, SecaggSharesRequest, type SecaggRoundResponse,
  secaggAdFromWire as adFromWire, secaggAdToWire as adToWire, secaggShareFromWire as shareFromWire, secaggShareToWire as shareToWire,
} from '@fedtwin/protocol';
import { SecaggRound } from './secagg-round.ts';
import type { RecoveryResponse as SecaggResponse } from '@fedtwin/secagg';
import { afterWithdrawal, isolatedCulprit, nextSitOut } from './isolation.ts';
import { secaggSharesHash as sharesHash, sha256Hex } from '@fedtwin/ledger';
import { openAuditLog, type AuditLog } from './audit.ts';
import { reconcileLedger } from './reconcile.ts';
import type { PrivateKey } from '@libp2p/interface';
import { CosignAck, CosignRequest, LedgerSyncRequest, MAX_LEDGER_SYNC_BYTES, MAX_WITNESS_NOTES, WitnessesRequest, type LedgerSyncResponse, type WitnessesResponse } from '@fedtwin/protocol';
import type { z } from 'zod';
import type { TableSchema } from '@fedtwin/models';
import { AggregatorStore, type AggregateRecord, type AggregatorState, type KeyRecord, type RoundRecord, type SecaggSnapshot } from './store.ts';
import type { EntryPayload } from '@fedtwin/ledger';
import type { AggregatorHost, Logger } from './types.ts';
import { crashPoint } from './crash-points.ts';

export interface RoundPolicy {
  /** Aggregates wanted; the federation finishes after this many. */
  totalRounds: number;
  /** A round aggregates as soon as this many members contributed. */
  quorum: number;
  /** At the deadline a round aggregates if at least this many contributed, else it fails and reopens. */
  minParticipants: number;
  /** Seconds a round stays open. */
  deadlineSeconds: number;
  /** Members that must have joined before the first round opens (default: quorum). */
  startAfterJoined?: number;
}

export interface AggregatorInit {
  host: AggregatorHost;
  /** The consortium manifest (normalised) and its hash: announced at join, named in the ledger's first entry and the genesis model version. */
  manifest?: { manifest: unknown; hash: string };
  dataDir: string;
  consortium: string;
  members: string[];
  schema: TableSchema;
  model: ModelConfig;
  /** Number of float32 values of the shared sub-model (what members send). */
  modelValues: number;
  strategy: string;
  training: TrainingConfig;
  rounds: RoundPolicy;
  /** The consortium's DP policy, sent to members at join (site-level noise already resolved). */
  privacy?: PrivacyPolicy;
  /** How updates travel: BFV ciphertexts (the default of the daemons) or plaintext (a baseline). */
  secureAggregation?: SecureAggregation;
  /**
   * Largest FedAvg weight (its record count) a member may declare, per member peer ID or one bound for all
   * (default 1,000,000): an unbounded self-declared weight lets one member dilute everyone else.
   */
  maxWeight?: number | Record<string, number>;
  /** The audit log: where it lives and the aggregator's identity that signs entries and checkpoints. */
  ledger?: { dir: string; identity: PrivateKey };
  logger: Logger;
  /** For tests: a clock. */
  now?: () => number;
}

export interface Aggregator {
  readonly peerId: string;
  state(): Promise<AggregatorState>;
  rounds(): Promise<RoundRecord[]>;
  aggregates(): Promise<AggregateRecord[]>;
  /** Resolves when the federation has finished (all rounds aggregated). */
  finished(): Promise<void>;
  readonly secureAggregation: SecureAggregation;
  /** The HE key id in force (undefined in plaintext mode or before the ceremony). */
  keyId(): Promise<string | undefined>;
  /** The audit log's size, root, latest checkpoint and its cosignatures. */
  ledger(): Promise<{ size: number; rootHash: string; checkpoint: string | null; cosignatures: number } | undefined>;
  stop(): Promise<void>;
}

/**
 * The consortium daemon: admits members, opens rounds, collects updates, sums them and publishes
 * the sum. It never computes the new model itself: members apply the published sum with the
 * strategy (so the same code works when the sum is of ciphertexts it cannot read).
 */
export async function createAggregator(init: AggregatorInit): Promise<Aggregator> {
  validatePolicy(init.rounds, init.members.length);
  const now = init.now ?? Date.now;
  const privacy: PrivacyPolicy = init.privacy ?? { mode: 'off', epsilon: 1, delta: 1e-5 };
  const siteDp = privacy.mode === 'site' || privacy.mode === 'both';
  const recordDp = privacy.mode === 'record' || privacy.mode === 'both';
  const anyDp = siteDp || recordDp;
  const log = init.logger;
  const secureAggregation: SecureAggregation = init.secureAggregation ?? { scheme: 'plaintext' };
  const scheme: AggregationScheme = secureAggregation.scheme === 'bfv' ? await bfvScheme(secureAggregation) : secureAggregation.scheme === 'secagg' ? secaggScheme() : plaintextScheme();
  const secaggConfig = secureAggregation.scheme === 'secagg' ? secureAggregation : undefined;
  const sa = secaggConfig ? await import('@fedtwin/secagg') : undefined;
  if (secaggConfig && !init.ledger) {
    // Members answer only the recovery request they read in their ledger replica: without a ledger there is none.
    throw new FedtwinError('CONFIG_INVALID', 'secure aggregation by masking (scheme secagg) needs the aggregator\'s ledger', { hint: 'give the aggregator a ledger directory (it records the keys, the recovery request and the reveals)' });
  }
  const store = await AggregatorStore.open(init.dataDir);
  // The HE key in force: its id and each member's sealed copy (the aggregator cannot open them).
  let keyState: KeyRecord | undefined = secureAggregation.scheme === 'bfv' ? await store.getKey() : undefined;
  const audit: AuditLog | undefined = init.ledger
    ? await openAuditLog({ dir: init.ledger.dir, identity: init.ledger.identity, consortium: init.consortium, members: init.members, ...(init.manifest ? { manifestHash: init.manifest.hash } : {}) })
    : undefined;
  // State and ledger are two stores: append what a crash between them left out of the ledger (reconcile.ts).
  if (audit) await reconcileLedger({ store, audit, log: init.logger, members: init.members, roundConfig: { ...init.training, quorum: init.rounds.quorum, minParticipants: init.rounds.minParticipants, privacy: privacy.mode, encoding: scheme.encoding } });
  const keyReady = () => secureAggregation.scheme !== 'bfv' || keyState !== undefined;
  const members = new Set(init.members);
  const joined = new Set<string>();
  let state = await store.state();
  const maxWeightOf = (peer: string): number =>
    typeof init.maxWeight === 'number' ? init.maxWeight : (init.maxWeight?.[peer] ?? DEFAULT_MAX_WEIGHT);
  // The base of every round is this chain's head, fixed by the aggregator (never by an upload).
  if (state.modelVersion === undefined) {
    let mv = genesisModelVersion({ consortium: init.consortium, modelValues: init.modelValues, strategy: init.strategy, model: init.model, manifestHash: init.manifest?.hash });
    for (let v = 1; v <= state.version; v++) {
      const a = await store.getAggregate(v);
      if (!a) throw new FedtwinError('STATE_CORRUPT', `aggregate ${v} is missing from the aggregator's state`, { hint: 'restore the aggregator\'s dataDir from a backup' });
      mv = nextModelVersion(mv, sha256Hex(a.body));
    }
    state = { ...state, modelVersion: mv };
  }
  let open: RoundRecord | undefined;
  let sum: SumAccumulator | undefined;
  /** The open round's masking phases (scheme secagg; rebuilt after a restart from the ledger and the store's snapshot, see resumeSecagg). */
  let secagg: SecaggRound | undefined;
  let secaggTimer: NodeJS.Timeout | undefined;
  // A phase waits at most a quarter of the round's deadline (and at least 5 s), unless everyone answered sooner.
  const secaggPhaseMs = Math.max(5000, init.rounds.deadlineSeconds * 250);
  let deadlineTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let queue: Promise<unknown> = Promise.resolve();
  const waiters = new Set<() => void>();
  let resolveFinished!: () => void;
  const finishedPromise = new Promise<void>((r) => { resolveFinished = r; });

  // Serialise every state transition: handlers run concurrently, the round state may not.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const wakeWaiters = () => { for (const w of [...waiters]) w(); };
  // Long-polls: resolve on the next state change, or after `ms`.
  const waitForChange = (ms: number) => new Promise<void>((resolve) => {
    const done = () => { waiters.delete(done); clearTimeout(t); resolve(); };
    const t = setTimeout(done, ms);
    waiters.add(done);
  });

  // Resume: an open round continues with the contributions persisted before a crash.
  /** A new running sum of `rec`'s persisted contributions (resume, or after a failure that may have left the old one half-updated). */
  async function rebuildSum(rec: RoundRecord): Promise<SumAccumulator> {
    const fresh = scheme.createAccumulator(init.modelValues);
    const ups = await store.updatesOf(rec.round);
    for (const c of rec.contributions) {
      const body = ups.get(c.peer);
      if (!body) throw new FedtwinError('STATE_CORRUPT', `round ${rec.round}: update of ${c.peer} listed but missing`);
      await fresh.add(body, { round: rec.round, baseHash: rec.baseHash ?? c.baseHash, member: c.peer, ...(rec.keyId ? { keyId: rec.keyId } : {}) });
    }
    return fresh;
  }

  if (state.round > 0) {
    const rec = await store.getRound(state.round);
    if (rec?.status === 'open') {
      open = { ...rec, baseHash: rec.baseHash ?? state.modelVersion };
      sum = await rebuildSum(open);
      log.info({ event: 'resume', round: rec.round, contributions: rec.contributions.length }, `resuming round ${rec.round}`);
      armDeadline();
      // A masked round resumes at its phase: advertisements, request and reveals from the ledger, phase closures
      // and share bundles from the store (docs/he.md §9, "Restarts").
      if (secaggConfig) await serial(() => resumeSecagg(open!));
    }
  }
  if (state.status === 'finished') resolveFinished();

  async function openNextRound(): Promise<void> {
    if (state.investigating) return; // no new round while the base it would train from is in doubt
    const out = new Set([...(state.exhausted ?? []), ...(state.excluded ?? [])]);
    const ableMembers = [...members].filter((m) => !out.has(m));
    const able = ableMembers.length;
    if (state.version < init.rounds.totalRounds && able < init.rounds.minParticipants) {
      state = { ...state, status: 'finished', finishedEarly: `only ${able} member(s) have privacy budget left, fewer than minParticipants ${init.rounds.minParticipants}` };
      await store.saveState(state);
      log.warn({ event: 'finished', version: state.version, reason: state.finishedEarly }, `federation finished early at version ${state.version}: ${state.finishedEarly}`);
      resolveFinished();
      wakeWaiters();
      return;
    }
    if (state.version >= init.rounds.totalRounds) {
      state = { ...state, status: 'finished' };
      await store.saveState(state);
      log.info({ event: 'finished', version: state.version }, `federation finished after ${state.version} rounds`);
      resolveFinished();
      wakeWaiters();
      return;
    }
    const t = now();
    // Isolating a withdrawn masked sum's culprit: this round runs without the next suspect (isolation.ts).
    const sitOut = secaggConfig ? nextSitOut(state.isolation, ableMembers, Math.max(secaggConfig.threshold, init.rounds.minParticipants)) : undefined;
    const rec: RoundRecord = {
      round: state.round + 1, baseVersion: state.version, baseHash: state.modelVersion!, openedAt: t,
      deadline: t + init.rounds.deadlineSeconds * 1000, status: 'open', contributions: [],
      ...(keyState ? { keyId: keyState.keyId } : {}), ...(sitOut ? { sitOut } : {}),
    };
    state = { ...state, round: rec.round, version: state.version, status: 'running', ...(sitOut && state.isolation ? { isolation: { ...state.isolation, lastSitOut: sitOut } } : {}) };
    await store.openRound(state, rec);
    crashPoint('after-round-store');
    await audit?.record({ type: 'round', v: 1, action: 'open', round: rec.round, globalVersion: rec.baseHash!, config: { ...init.training, baseVersion: rec.baseVersion, quorum: init.rounds.quorum, minParticipants: init.rounds.minParticipants, deadline: rec.deadline, privacy: privacy.mode, encoding: scheme.encoding } });
    open = rec;
    sum = scheme.createAccumulator(init.modelValues);
    if (secaggConfig) {
      secagg = new SecaggRound(sa!, SecaggRound.config(secaggConfig, init.consortium, rec.round, init.modelValues), secaggPhaseMs, now());
      armSecaggTimer();
    }
    roundCpu = process.cpuUsage();
    log.info({ event: 'round-open', round: rec.round, baseVersion: rec.baseVersion, deadline: rec.deadline, ...(sitOut ? { sitOut } : {}) }, `round ${rec.round} open${sitOut ? ` without suspect ${sitOut.slice(-8)} (isolating a withdrawn sum's culprit)` : ''}`);
    armDeadline();
    wakeWaiters();
  }

  /** CPU of this process at the open of the current round (for the round's cost in the log). */
  let roundCpu: NodeJS.CpuUsage | undefined;

  function armDeadline(): void {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    if (!open) return;
    const r = open.round;
    deadlineTimer = setTimeout(() => {
      void serial(async () => {
        if (stopped || !open || open.round !== r) return;
        if (open.contributions.length >= init.rounds.minParticipants) await aggregate('deadline');
        else await failRound(`deadline passed with ${open.contributions.length} of ${init.rounds.minParticipants} required contributions`);
      }).catch((err) => log.error({ event: 'deadline-error', err: String(err) }, 'deadline handling failed'));
    }, Math.max(0, open.deadline - now()));
    deadlineTimer.unref?.();
  }

  async function failRound(reason: string, opts: { reopen?: boolean } = {}): Promise<void> {
    if (!open) return;
    const rec: RoundRecord = { ...open, status: 'failed', reason };
    await store.closeRound(rec, state);
    await audit?.checkpoint();
    log.warn({ event: 'round-failed', round: rec.round, reason }, `round ${rec.round} failed: ${reason}`);
    open = undefined; await sum?.dispose(); sum = undefined;
    endSecagg();
    if (opts.reopen !== false) await openNextRound();
  }

  // Every member either contributed or declined: waiting for the deadline would change nothing.
  // Members known to have no budget left count as having answered.
  function everyoneAnswered(rec: RoundRecord): boolean {
    const answered = new Set([...rec.contributions.map((c) => c.peer), ...(rec.refusals ?? []).map((r) => r.peer), ...(state.exhausted ?? []), ...(state.excluded ?? []), ...(rec.sitOut ? [rec.sitOut] : [])]);
    // Under masking, a member that did not share its keys in time can no longer send: it has answered.
    if (secagg?.agg) for (const m of members) if (!secagg.sharers().has(m)) answered.add(m);
    return answered.size >= members.size;
  }

  async function aggregate(trigger: 'quorum' | 'deadline' | 'all-answered'): Promise<void> {
    if (!open || !sum) return;
    if (secagg) {
      await startRecovery(trigger);
      return;
    }
    await publish(trigger, () => sum!.result());
  }

  /** Publishes the round's sum (`bodyOf`): the aggregate record, the ledger entry and the next round. */
  async function publish(trigger: 'quorum' | 'deadline' | 'all-answered', bodyOf: () => Promise<Uint8Array>): Promise<void> {
    if (!open || !sum) return;
    const rec: RoundRecord = { ...open, status: 'aggregated' };
    // What is published must be exactly the accepted contributions: one update summed per contribution,
    // one ledger leaf per contribution. A mismatch means the running sum saw something it should not have.
    const leaves = rec.contributions.map((c) => c.ledgerIndex).filter((i): i is number => i !== undefined).sort((a, b) => a - b);
    if (sum.count !== rec.contributions.length) {
      log.error({ event: 'sum-mismatch', round: rec.round, summed: sum.count, contributions: rec.contributions.length }, `round ${rec.round}: the running sum holds ${sum.count} updates for ${rec.contributions.length} contributions; rebuilding it from the persisted updates`);
      await sum.dispose();
      sum = await rebuildSum(rec);
    }
    if (sum.count !== rec.contributions.length || (audit && leaves.length !== rec.contributions.length)) {
      throw new FedtwinError('STATE_CORRUPT', `round ${rec.round}: ${sum.count} updates summed, ${rec.contributions.length} contributions, ${leaves.length} ledger leaves`);
    }
    const version = state.version + 1;
    const body = await bodyOf();
    const agg: AggregateRecord = {
      version, round: rec.round,
      participants: rec.contributions.map((c) => c.peer),
      totalWeight: rec.contributions.reduce((a, c) => a + c.weight, 0),
      values: init.modelValues, baseHash: rec.baseHash!, createdAt: now(),
      encoding: scheme.encoding, ...(rec.keyId ? { keyId: rec.keyId } : {}),
    };
    const aggregateHash = sha256Hex(body);
    // Under HE the aggregator cannot hash the new weights; the version is named by what defines it.
    const modelVersion = nextModelVersion(agg.baseHash, aggregateHash);
    state = { ...state, version, modelVersion };
    await store.closeRound(rec, state, { record: agg, body });
    crashPoint('after-close-store');
    if (audit) {
      await audit.record({ type: 'aggregate', v: 1, round: rec.round, contributions: leaves, aggregateHash, modelVersion });
      await audit.checkpoint();
    }
    const cpu = roundCpu ? process.cpuUsage(roundCpu) : undefined;
    log.info({ event: 'round-aggregated', round: rec.round, version, participants: agg.participants.length, trigger, ...(cpu ? { cpuMs: Math.round((cpu.user + cpu.system) / 1000) } : {}) },
      `round ${rec.round} aggregated (${agg.participants.length} members, ${trigger}) → version ${version}`);
    open = undefined; await sum.dispose(); sum = undefined;
    endSecagg();
    await openNextRound();
  }

  // ---- Secure aggregation by masking: the phases around the usual update collection (docs/he.md §9) -----

  const sameAd = (a: { cPub: Uint8Array; sPub: Uint8Array; signature: Uint8Array }, w: { cPub: string; sPub: string; signature: string }): boolean => {
    const x = adToWire({ member: '', ...a });
    return x.cPub === w.cPub && x.sPub === w.sPub && x.signature === w.signature;
  };

  /** A member's signed `secagg-reveal` payload as the response @fedtwin/secagg unmasks with (handler and restart alike). */
  const revealResponse = (member: string, p: { bShares: Array<{ owner: string; y: string }>; sShares: Array<{ owner: string; y: string }> }, digest: Uint8Array): SecaggResponse => {
    const share = (r: { owner: string; y: string }) => ({ owner: r.owner, y: new Uint8Array(Buffer.from(r.y, 'base64')) });
    return { member, request: digest, bShares: p.bShares.map(share), sShares: p.sShares.map(share) };
  };

  /** The store's copy of what a restart needs beyond the ledger (written before the ledger entry it goes with). */
  async function saveSecaggSnapshot(s: SecaggRound, extraBundle?: SecaggSnapshot['bundles'][number]): Promise<void> {
    const bundles = [...s.bundles.values()].map((b) => ({ member: b.member, bCommit: Buffer.from(b.bCommit).toString('hex'), shares: b.shares.map(shareToWire) }));
    if (extraBundle && !s.bundles.has(extraBundle.member)) bundles.push(extraBundle);
    await store.saveSecagg({ round: s.cfg.round, keysClosed: s.phase !== 'keys', sharesClosed: s.agg !== undefined, bundles });
  }

  /**
   * Rebuilds the open masked round after a restart, phase by phase, exactly as it stood: the accepted keys and
   * the routed shares are recomputed from the same inputs (deterministic), the one recovery request is read
   * back from its ledger entry (its digest checked), never made again. Members' retries then carry on.
   */
  async function resumeSecagg(rec: RoundRecord): Promise<void> {
    const a = audit!;
    const s = new SecaggRound(sa!, SecaggRound.config(secaggConfig!, init.consortium, rec.round, init.modelValues), secaggPhaseMs, now());
    const snap = await store.getSecagg(rec.round);
    const memberEntries = async (type: 'secagg-keys' | 'secagg-shares' | 'secagg-reveal') => {
      const out: Array<{ index: number; author: string; payload: EntryPayload }> = [];
      for (const m of members) for (const i of await a.findAllByKey(type, rec.round, m)) out.push({ index: i, author: m, payload: (await a.entry(i)).payload });
      return out.sort((x, y) => x.index - y.index);
    };
    for (const e of await memberEntries('secagg-keys')) {
      const p = e.payload;
      if (p.type === 'secagg-keys') s.addAd(adFromWire(init.consortium, rec.round, { member: e.author, cPub: p.cPub, sPub: p.sPub, signature: p.signature }));
    }
    if (snap?.keysClosed) {
      s.closeKeys(now());
      if (s.failed) return failRound(s.failed);
      for (const e of await memberEntries('secagg-shares')) {
        const p = e.payload;
        const b = snap.bundles.find((x) => x.member === e.author);
        if (p.type !== 'secagg-shares' || !b || b.bCommit !== p.bCommit || sharesHash(b.shares) !== p.sharesHash) {
          return failRound(`the aggregator restarted and the share bundle of ${e.author} it stored does not match its ledger entry`);
        }
        s.addBundle({ member: e.author, bCommit: new Uint8Array(Buffer.from(b.bCommit, 'hex')), shares: b.shares.map(shareFromWire) });
      }
      if (snap.sharesClosed) {
        s.closeShares(now());
        if (s.failed) return failRound(s.failed);
        const reqs = await a.findAllByKey('secagg-recovery', rec.round);
        if (reqs.length > 0) {
          const p = (await a.entry(reqs[0]!)).payload;
          if (p.type !== 'secagg-recovery') return failRound('the recovery request entry of this round is not one');
          const req = s.makeRequest(p.survivors);
          const digest = sa!.requestDigest(req);
          if (Buffer.from(digest).toString('hex') !== p.digest || req.dropped.join(',') !== p.dropped.join(',')) {
            return failRound('the aggregator restarted and cannot rebuild the recovery request its ledger holds');
          }
          s.openRecovery(reqs[0]!, now());
          for (const e of await memberEntries('secagg-reveal')) {
            const r = e.payload;
            if (r.type === 'secagg-reveal' && r.digest === p.digest) s.addResponse(e.author, revealResponse(e.author, r, digest));
          }
        }
      }
    }
    secagg = s;
    log.info({ event: 'secagg-resume', round: rec.round, phase: s.phase, ads: s.ads.size, bundles: s.bundles.size, reveals: s.responses.size },
      `round ${rec.round}: masked round resumed in phase ${s.phase} (${s.ads.size} key(s), ${s.bundles.size} share bundle(s), ${s.responses.size} reveal(s))`);
    armSecaggTimer();
    wakeWaiters();
    if (s.phase === 'recovery') await finishRecovery(false);
    else if (s.phase === 'input' && everyoneAnswered(rec) && rec.contributions.length >= init.rounds.minParticipants) await aggregate('all-answered');
  }

  function endSecagg(): void {
    if (secaggTimer) clearTimeout(secaggTimer);
    secaggTimer = undefined;
    if (secagg) secagg.phase = 'done';
    secagg = undefined;
    // No wake-up here: the next round's opening wakes the long-polls (waking now would answer "idle" first).
  }

  /** Closes the current phase at its deadline (whoever made it in time goes on). */
  function armSecaggTimer(): void {
    if (secaggTimer) clearTimeout(secaggTimer);
    const s = secagg;
    if (!s || !Number.isFinite(s.phaseDeadline)) return;
    const phase = s.phase;
    secaggTimer = setTimeout(() => {
      void serial(async () => {
        if (stopped || secagg !== s || s.phase !== phase) return;
        if (phase === 'recovery') await finishRecovery(true);
        else await advanceSecagg(true);
      }).catch((err) => log.error({ event: 'secagg-deadline-error', err: String(err) }, 'secure-aggregation phase deadline handling failed'));
    }, Math.max(0, s.phaseDeadline - now()));
    secaggTimer.unref?.();
  }

  /** Members the keys and shares phases wait for: every active member with budget that has not declined. */
  function secaggExpected(): string[] {
    const out = new Set([...(state.exhausted ?? []), ...(state.excluded ?? []), ...(open?.refusals ?? []).map((r) => r.peer), ...(open?.sitOut ? [open.sitOut] : [])]);
    return [...members].filter((m) => !out.has(m));
  }

  /** Closes the keys or shares phase when everyone expected answered (or `force`: its deadline passed). */
  async function advanceSecagg(force: boolean): Promise<void> {
    const s = secagg;
    if (!s || !open) return;
    if (s.phase === 'keys' && (force || secaggExpected().every((m) => s.ads.has(m)))) {
      s.closeKeys(now());
      if (s.failed) return failRound(s.failed);
      await saveSecaggSnapshot(s);
      crashPoint('after-secagg-keys-closed');
      log.info({ event: 'secagg-keys', round: open.round, accepted: s.accepted!.length }, `round ${open.round}: ${s.accepted!.length} member(s) advertised masking keys`);
      armSecaggTimer();
      wakeWaiters();
      return; // the shares phase starts now: no bundle can be in yet
    }
    if (s.phase === 'shares' && (force || s.accepted!.every((a) => s.bundles.has(a.member)))) {
      s.closeShares(now());
      if (s.failed) return failRound(s.failed);
      await saveSecaggSnapshot(s);
      crashPoint('after-secagg-shares-closed');
      await audit?.checkpoint();
      log.info({ event: 'secagg-shares', round: open.round, sharers: s.sharers().size }, `round ${open.round}: ${s.sharers().size} member(s) shared their mask keys; masked inputs open`);
      armSecaggTimer();
      wakeWaiters();
      // Everyone may already have answered (members that did not share count as answered).
      if (everyoneAnswered(open) && open.contributions.length >= init.rounds.minParticipants) await aggregate('all-answered');
    }
  }

  /** Inputs closed: the one recovery request, recorded in the ledger (members answer only what they read there). */
  async function startRecovery(trigger: 'quorum' | 'deadline' | 'all-answered'): Promise<void> {
    const s = secagg!;
    if (s.phase !== 'input') return;
    const received = open!.contributions.map((c) => c.peer);
    const t = s.cfg.threshold;
    if (received.length < t) {
      await failRound(`${received.length} masked input(s) arrived, fewer than the threshold ${t}: a smaller sum is never unmasked`);
      return;
    }
    const req = s.makeRequest(received);
    const entry = await audit!.record({
      type: 'secagg-recovery', v: 1, round: req.round, consortium: req.consortium, threshold: t, ...(s.cfg.degree !== undefined ? { degree: s.cfg.degree } : {}),
      survivors: req.survivors, dropped: req.dropped, digest: Buffer.from(sa!.requestDigest(req)).toString('hex'),
    });
    await audit!.checkpoint();
    crashPoint('after-secagg-recovery-ledger');
    s.openRecovery(entry.index, now());
    recoveryTrigger = trigger;
    log.info({ event: 'secagg-recovery', round: req.round, survivors: req.survivors.length, dropped: req.dropped.length, ledgerIndex: entry.index },
      `round ${req.round}: recovery request (${req.survivors.length} survivor(s), ${req.dropped.length} dropped) at ledger leaf ${entry.index}`);
    armSecaggTimer();
    wakeWaiters();
  }
  let recoveryTrigger: 'quorum' | 'deadline' | 'all-answered' = 'quorum';

  /** Unmasks once enough reveals are in; at the reveal deadline (`final`) whatever is in decides. */
  async function finishRecovery(final: boolean): Promise<void> {
    const s = secagg;
    if (!s || s.phase !== 'recovery' || !open) return;
    // Fewer reveals than the threshold cannot unmask: do not read the round's masked inputs (4 bytes per value each) yet.
    if (!final && s.responses.size < s.cfg.threshold) return;
    const ups = await store.updatesOf(open.round);
    const masked = s.request!.survivors.map((m) => ({ member: m, values: maskedValues(ups.get(m)!) }));
    let total: Int32Array | undefined;
    try {
      total = s.tryUnmask(masked);
    } catch (err) {
      await failRound(`the masked sum could not be unmasked: ${(err as Error).message}`);
      return;
    }
    if (!total) {
      if (final) await failRound(`${s.responses.size} of ${s.request!.survivors.length} survivor(s) revealed shares by the deadline: too few to unmask (threshold ${s.cfg.threshold})`);
      return;
    }
    log.info({ event: 'secagg-unmasked', round: open.round, reveals: s.responses.size, survivors: s.request!.survivors.length, dropped: s.request!.dropped.length },
      `round ${open.round}: unmasked the sum of ${s.request!.survivors.length} input(s) from ${s.responses.size} reveal(s)`);
    const body = int32ToBytes(total);
    await publish(recoveryTrigger, async () => body);
  }

  async function maybeStart(): Promise<void> {
    if (state.status === 'waiting' && keyReady() && joined.size >= (init.rounds.startAfterJoined ?? init.rounds.quorum)) await openNextRound();
  }

  // A crash between closing a round and opening the next leaves a running federation with no open
  // round: nothing would ever open one (members only poll), so open it now.
  if (state.status === 'running' && !open && !state.investigating) {
    log.warn({ event: 'resume-reopen', round: state.round, version: state.version }, `round ${state.round} was closed but the next one not opened before a restart; opening it`);
    await serial(openNextRound);
  }

  // ---- Liveness under a bad contribution (docs/threat-model.md) --------------------------------------
  // A member that cannot use a published aggregate says so (a signed verdict). Every active member then
  // judges probes: subset sums of the round's stored updates, which members can decrypt and the aggregator
  // cannot. Decryption is deterministic, so honest members agree and the majority of answers decides.
  // If the full sum is fine, the reporters lied and are excluded. Otherwise bisection finds the
  // contributions that break it; their authors are excluded, the aggregate is replaced by the sum of the
  // others (or withdrawn if too few remain) and the federation goes on.
  interface Probe {
    id: string; round: number; set: string[]; body: Uint8Array; sumHash: string; deadline: number;
    votes: Map<string, { valid: boolean; leaf?: number }>; done: () => void;
  }
  let probe: Probe | undefined;
  let investigation: Promise<void> | undefined;
  const excluded = () => new Set(state.excluded ?? []);
  const activeMembers = () => [...members].filter((m) => !excluded().has(m));
  const probeSeconds = Math.max(5, Math.min(init.rounds.deadlineSeconds, 120));
  let probeCount = 0;

  async function runProbe(round: number, set: string[], body: Uint8Array, seed?: Map<string, { valid: boolean; leaf?: number }>): Promise<{ valid: boolean; votes: Map<string, { valid: boolean; leaf?: number }> }> {
    for (let attempt = 0; ; attempt++) {
      const p: Probe = {
        id: `${round}-${++probeCount}-${Date.now().toString(36)}`, round, set, body, sumHash: sha256Hex(body),
        deadline: now() + probeSeconds * 1000, votes: new Map(seed), done: () => undefined,
      };
      const finished = new Promise<void>((resolve) => { p.done = resolve; });
      probe = p;
      wakeWaiters();
      log.info({ event: 'probe-open', round, probe: p.id, participants: set.length }, `round ${round}: probe ${p.id} over ${set.length} contribution(s)`);
      const everyone = () => activeMembers().every((m) => p.votes.has(m));
      if (!everyone()) {
        const timer = setTimeout(p.done, probeSeconds * 1000);
        timer.unref?.();
        await finished;
        clearTimeout(timer);
      }
      probe = undefined;
      if (stopped) throw new FedtwinError('AGG_STOPPED', 'the aggregator stopped during an investigation');
      const votes = [...p.votes.values()];
      if (votes.length === 0 && attempt < 2) continue; // nobody answered: ask again, a few times
      const valid = votes.filter((v) => v.valid).length > votes.filter((v) => !v.valid).length;
      log.info({ event: 'probe-closed', round, probe: p.id, participants: set.length, valid, votes: votes.length }, `round ${round}: probe ${p.id}: ${valid ? 'valid' : 'invalid'} (${votes.length} verdicts)`);
      return { valid, votes: p.votes };
    }
  }

  /** The sum of `set`'s stored updates of round `rec` (a probe, or the replacement aggregate). */
  async function subsetSum(rec: RoundRecord, set: string[]): Promise<Uint8Array> {
    const acc = scheme.createAccumulator(init.modelValues);
    try {
      const ups = await store.updatesOf(rec.round);
      for (const peer of set) {
        const b = ups.get(peer);
        if (!b) throw new FedtwinError('STATE_CORRUPT', `round ${rec.round}: the update of ${peer} is no longer stored`);
        await acc.add(b, { round: rec.round, baseHash: rec.baseHash!, member: peer, ...(rec.keyId ? { keyId: rec.keyId } : {}) });
      }
      return await acc.result();
    } finally {
      await acc.dispose();
    }
  }

  const evidenceOf = (votes: Map<string, { leaf?: number }>) => [...votes.values()].map((v) => v.leaf).filter((i): i is number => i !== undefined).sort((a, b) => a - b);

  /** Whether the ledger already holds this round's exclusion entry matching `pred` (a restart repeats an investigation). */
  async function hasExclusion(round: number, pred: (p: { action: string; peerId?: string; aggregateHash?: string }) => boolean): Promise<boolean> {
    if (!audit) return false;
    for (const i of await audit.findAllByKey('exclusion', round)) {
      const p = (await audit.entry(i)).payload;
      if (p.type === 'exclusion' && pred(p)) return true;
    }
    return false;
  }

  // Ledger first, then state, each step idempotent: a crash between the two is finished by the repeated
  // investigation after the restart, with no duplicate entry.
  async function exclude(peer: string, round: number, reason: string, evidence: number[]): Promise<void> {
    if (excluded().has(peer)) return;
    if (!(await hasExclusion(round, (p) => p.action === 'exclude' && p.peerId === peer))) {
      await audit?.record({ type: 'exclusion', v: 1, round, action: 'exclude', peerId: peer, reason: reason.slice(0, 1000), evidence });
    }
    crashPoint('after-exclusion-ledger');
    state = { ...state, excluded: [...(state.excluded ?? []), peer] };
    await store.saveState(state);
    log.warn({ event: 'member-excluded', round, peer, reason }, `member ${peer} excluded: ${reason}`);
  }

  async function recordWithdrawal(round: number, aggregateHash: string, reason: string, evidence: number[]): Promise<void> {
    if (await hasExclusion(round, (p) => p.action === 'withdraw' && p.aggregateHash === aggregateHash)) return;
    await audit?.record({ type: 'exclusion', v: 1, round, action: 'withdraw', aggregateHash, reason: reason.slice(0, 1000), evidence });
    crashPoint('after-withdraw-ledger');
  }

  async function investigate(version: number, reports: Map<string, { valid: boolean; leaf?: number }>): Promise<void> {
    const agg = await store.getAggregate(version);
    const rec = agg ? await store.getRound(agg.record.round) : undefined;
    if (!agg || !rec) throw new FedtwinError('STATE_CORRUPT', `aggregate ${version} or its round is missing`);
    await serial(async () => {
      state = { ...state, investigating: { version, round: rec.round } };
      await store.saveState(state);
      if (open) await failRound(`aggregate ${version} (round ${rec.round}) is under investigation: members reported it unusable`, { reopen: false });
    });
    log.warn({ event: 'investigation-open', version, round: rec.round, reporters: reports.size }, `aggregate ${version} reported unusable; checking it with the members`);
    const all = agg.record.participants;
    const full = await runProbe(rec.round, all, agg.body, reports);
    await serial(async () => {
      if (full.valid) {
        // The published sum decrypts for the majority: whoever said otherwise reported falsely.
        for (const [peer, v] of full.votes) if (!v.valid) await exclude(peer, rec.round, `reported aggregate ${version} unusable; the other members decrypted it`, evidenceOf(full.votes));
        state = { ...state, investigating: undefined };
        await store.saveState(state);
        await audit?.checkpoint();
        log.info({ event: 'investigation-closed', version, outcome: 'aggregate-valid' }, `aggregate ${version} is valid; the federation continues`);
        await openNextRound();
        return;
      }
    });
    if (full.valid) return;
    if (secaggConfig) return discardMaskedSum(version, rec, agg, evidenceOf(full.votes));
    // Bisection over subset sums: a set that does not decrypt holds a culprit.
    const culprits: string[] = [];
    const evidence: number[] = [...evidenceOf(full.votes)];
    const bisect = async (set: string[]): Promise<void> => {
      if (set.length === 1) { culprits.push(set[0]!); return; }
      const half = Math.ceil(set.length / 2);
      const parts = [set.slice(0, half), set.slice(half)];
      const outcomes = [];
      for (const part of parts) {
        const r = await runProbe(rec.round, part, await subsetSum(rec, part));
        evidence.push(...evidenceOf(r.votes));
        outcomes.push(r.valid);
      }
      for (let i = 0; i < 2; i++) if (!outcomes[i]) await bisect(parts[i]!);
    };
    await bisect(all);
    await serial(async () => {
      const ev = [...new Set(evidence)].sort((a, b) => a - b);
      for (const c of culprits) await exclude(c, rec.round, `its contribution to round ${rec.round} made the aggregate undecryptable (bisection over subset sums)`, ev);
      await recordWithdrawal(rec.round, sha256Hex(agg.body), `aggregate ${version} could not be decrypted by the members${culprits.length ? `; culprit(s) ${culprits.join(', ')}` : '; no single culprit found'}`, ev);
      const honest = rec.contributions.filter((c) => !culprits.includes(c.peer));
      const withdrawnRec: RoundRecord = { ...rec, contributions: honest, withdrawn: [...(rec.withdrawn ?? []), ...rec.contributions.filter((c) => culprits.includes(c.peer))] };
      if (culprits.length > 0 && honest.length >= init.rounds.minParticipants) {
        const body = await subsetSum(rec, honest.map((c) => c.peer));
        const record: AggregateRecord = { ...agg.record, participants: honest.map((c) => c.peer), totalWeight: honest.reduce((a, c) => a + c.weight, 0), createdAt: now() };
        const aggregateHash = sha256Hex(body);
        const modelVersion = nextModelVersion(rec.baseHash!, aggregateHash);
        state = { ...state, version, modelVersion, investigating: undefined, status: 'running' };
        await store.replaceAggregate(withdrawnRec, state, version, { record, body });
        const leaves = honest.map((c) => c.ledgerIndex).filter((i): i is number => i !== undefined).sort((a, b) => a - b);
        await audit?.record({ type: 'aggregate', v: 1, round: rec.round, contributions: leaves, aggregateHash, modelVersion });
        log.warn({ event: 'aggregate-replaced', version, round: rec.round, participants: honest.length, excluded: culprits }, `aggregate ${version} replaced by the sum of the ${honest.length} other contribution(s)`);
      } else {
        await withdrawAggregate(version, withdrawnRec, culprits.length ? 'too few contributions left after excluding the culprit(s)' : 'no single culprit found', culprits);
      }
      await audit?.checkpoint();
      log.info({ event: 'investigation-closed', version, outcome: 'aggregate-invalid', culprits }, `investigation of aggregate ${version} closed`);
      await openNextRound();
    });
  }

  /**
   * Under masking no sum smaller than the round's may be revealed, so no bisection: the unusable sum is withdrawn
   * (nothing more revealed) and its inputs narrow the suspects; the next rounds sit suspects out (isolation.ts).
   * When one suspect is left, it is excluded. Ledger first, then state, each step idempotent (a restart repeats it).
   */
  async function discardMaskedSum(version: number, rec: RoundRecord, agg: { body: Uint8Array; record: AggregateRecord }, evidence: number[]): Promise<void> {
    await serial(async () => {
      const inputs = agg.record.participants;
      const isolation = afterWithdrawal(state.isolation, rec.round, inputs, evidence);
      const culprit = isolatedCulprit(isolation);
      await recordWithdrawal(rec.round, sha256Hex(agg.body), `masked sum ${version} (round ${rec.round}, ${inputs.length} inputs) could not be used by the members; discarded unopened, suspects: ${isolation.candidates.length}`, evidence);
      if (culprit) {
        await exclude(culprit, rec.round, `the one member that gave an input to every withdrawn masked sum (rounds ${isolation.rounds.join(', ')}); the rounds run without it were usable`, isolation.evidence);
      }
      state = { ...state, isolation: culprit ? undefined : isolation };
      await withdrawAggregate(version, rec, culprit ? `culprit ${culprit} isolated and excluded` : `suspects left: ${isolation.candidates.length}`, culprit ? [culprit] : []);
      await audit?.checkpoint();
      log.warn({ event: 'investigation-closed', version, outcome: 'aggregate-invalid', culprits: culprit ? [culprit] : [], suspects: isolation.candidates.length, rounds: isolation.rounds },
        `masked sum ${version} withdrawn; ${culprit ? `culprit ${culprit} excluded` : `${isolation.candidates.length} suspect(s) left, the next rounds sit them out in turn`}`);
      await openNextRound();
    });
  }

  /** Liveness when the investigation itself fails (e.g. the round's updates are gone): withdraw the aggregate, exclude nobody. */
  async function withdrawWithoutCulprit(version: number, why: string): Promise<void> {
    const agg = await store.getAggregate(version);
    const rec = agg ? await store.getRound(agg.record.round) : undefined;
    if (!agg || !rec || state.investigating?.version !== version) return;
    await recordWithdrawal(rec.round, sha256Hex(agg.body), `aggregate ${version} could not be decrypted by the members; ${why}`, []);
    await withdrawAggregate(version, rec, why, []);
    await audit?.checkpoint();
    await openNextRound();
  }

  /** Takes aggregate `version` back (its withdraw entry is already in the ledger): the round failed, the model is back at its base. */
  async function withdrawAggregate(version: number, rec: RoundRecord, why: string, excludedPeers: string[]): Promise<void> {
    state = { ...state, version: version - 1, modelVersion: rec.baseHash!, investigating: undefined, status: 'running' };
    await store.replaceAggregate({ ...rec, status: 'failed', reason: `aggregate withdrawn: ${why}` }, state, version, undefined);
    log.warn({ event: 'aggregate-withdrawn', version, round: rec.round, excluded: excludedPeers }, `aggregate ${version} withdrawn; round ${rec.round} failed (${why})`);
  }

  function startInvestigation(version: number, reports: Map<string, { valid: boolean; leaf?: number }>): void {
    if (investigation) return;
    investigation = investigate(version, reports)
      .catch(async (err) => {
        if (stopped) return;
        log.error({ event: 'investigation-error', err: String(err) }, `investigation of aggregate ${version} failed: ${(err as Error).message}`);
        await serial(() => withdrawWithoutCulprit(version, `the investigation failed: ${(err as Error).message}`))
          .catch((e) => log.error({ event: 'investigation-error', err: String(e) }, `could not withdraw aggregate ${version}: ${(e as Error).message}`));
      })
      .finally(() => { investigation = undefined; pendingReports.clear(); wakeWaiters(); });
  }
  const pendingReports = new Map<string, { valid: boolean; leaf?: number }>();

  const host = init.host;
  const requireMember = (peer: string) => {
    if (!members.has(peer)) throw new FedtwinError('AGG_NOT_MEMBER', `peer ${peer} is not a consortium member`, { hint: 'add its peer ID to the aggregator\'s members list' });
  };
  const requireActive = (peer: string) => {
    requireMember(peer);
    if (excluded().has(peer)) throw new FedtwinError('AGG_EXCLUDED', `member ${peer} was excluded from this federation (see its exclusion entry in the ledger)`, { hint: 'fedtwin ledger verify --dir <ledger> lists exclusions; the consortium must re-admit it with a new manifest' });
  };

  await host.handle(Protocols.join, {
    request: JoinRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireMember(peer);
      joined.add(peer);
      log.info({ event: 'member-joined', peer, nodeVersion: header.nodeVersion, backend: header.backend }, `member ${peer} joined`);
      const res: JoinResponse = {
        consortium: init.consortium, schema: init.schema, model: init.model, strategy: init.strategy,
        ...(init.manifest ? { manifest: init.manifest.manifest as Record<string, unknown>, manifestHash: init.manifest.hash } : {}),
        modelValues: init.modelValues, totalRounds: init.rounds.totalRounds, privacy, secureAggregation,
        ...(keyState ? { keyId: keyState.keyId } : {}),
      };
      await serial(async () => {
        await maybeStart();
      });
      return { header: res };
    },
  });

  await host.handle(Protocols.task, {
    request: TaskRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireActive(peer);
      const answer = (): TaskResponse | undefined => {
        if (probe && !probe.votes.has(peer)) return { status: 'probe', id: probe.id, round: probe.round };
        if (state.investigating) return undefined;
        if (state.status === 'finished') return { status: 'finished', version: state.version };
        // Under masking a round takes newcomers only while its keys are collected, each once.
        const secaggAdmits = !secagg || (secagg.phase === 'keys' && !secagg.ads.has(peer));
        if (open && open.round > header.afterRound && !open.contributions.some((c) => c.peer === peer) && secaggAdmits && open.sitOut !== peer) {
          return { status: 'open', round: open.round, baseVersion: open.baseVersion, baseHash: open.baseHash!, training: init.training, deadline: open.deadline, ...(open.keyId ? { keyId: open.keyId } : {}) };
        }
        return undefined;
      };
      let res = answer();
      if (!res && header.waitMs > 0 && !stopped) {
        await waitForChange(header.waitMs);
        res = answer();
      }
      // A suspect this round runs without is told so (it waits; it is not blamed for it).
      return { header: res ?? { status: 'idle', version: state.version, ...(open?.sitOut === peer ? { sitOut: open.round } : {}) } };
    },
  });

  await host.handle(Protocols.probe, {
    request: ProbeRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireActive(peer);
      const p = probe;
      if (!p || p.id !== header.id) throw new FedtwinError('AGG_NO_SUCH_PROBE', `probe ${header.id} is not open`, { hint: 'poll for the next task' });
      const rec = await store.getRound(p.round);
      const res: ProbeResponse = {
        id: p.id, round: p.round, participants: p.set, values: init.modelValues, encoding: scheme.encoding, baseHash: rec!.baseHash!,
        ...(rec?.keyId ? { keyId: rec.keyId } : {}),
      };
      return { header: res, body: p.body };
    },
  });

  await host.handle(Protocols.verdict, {
    request: VerdictRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireActive(peer);
      await serial(async () => {
        const bad = (why: string) => new FedtwinError('AGG_BAD_VERDICT', `verdict rejected: ${why}`);
        let subject: { sumHash: string; participants: number };
        if (header.probe !== undefined) {
          if (!probe || probe.id !== header.probe) throw new FedtwinError('AGG_NO_SUCH_PROBE', `probe ${header.probe} is not open`, { hint: 'poll for the next task' });
          if (probe.votes.has(peer)) return;
          subject = { sumHash: probe.sumHash, participants: probe.set.length };
        } else {
          // Only the latest aggregate can be reported (a member that used an earlier one has moved past it).
          if (header.valid) throw bad('a published aggregate is only reported when it cannot be used');
          if (header.version !== state.version && !(state.investigating && state.investigating.version === header.version)) {
            throw new FedtwinError('AGG_NO_SUCH_VERSION', `aggregate ${header.version} is not the latest (latest ${state.version})`);
          }
          if (pendingReports.has(peer) || (probe && probe.votes.has(peer))) return;
          const agg = await store.getAggregate(header.version!);
          if (!agg) throw new FedtwinError('AGG_NO_SUCH_VERSION', `no aggregate for version ${header.version}`);
          if (agg.record.round !== header.round) throw bad(`aggregate ${header.version} is round ${agg.record.round}, not ${header.round}`);
          subject = { sumHash: sha256Hex(agg.body), participants: agg.record.participants.length };
        }
        if (header.sumHash !== subject.sumHash) throw bad(`it judges a sum with hash ${header.sumHash.slice(0, 12)}…, not the one served (${subject.sumHash.slice(0, 12)}…)`);
        let leaf: number | undefined;
        if (audit) {
          const entry = await audit.checkVerdictEntry(Buffer.from(header.entry, 'base64'), {
            author: peer, round: header.round, sumHash: header.sumHash, participants: subject.participants, valid: header.valid,
            ...(header.version !== undefined ? { version: header.version } : {}), ...(header.probe !== undefined ? { probe: header.probe } : {}),
          });
          leaf = (await audit.appendChecked(entry)).index;
        }
        log.warn({ event: 'verdict', round: header.round, peer, version: header.version, probe: header.probe, valid: header.valid, reason: header.reason }, `round ${header.round}: ${peer.slice(-8)} judged ${header.probe ? `probe ${header.probe}` : `aggregate ${header.version}`} ${header.valid ? 'valid' : 'unusable'}${header.reason ? `: ${header.reason}` : ''}`);
        if (header.probe !== undefined) {
          probe!.votes.set(peer, { valid: header.valid, ...(leaf !== undefined ? { leaf } : {}) });
          if (activeMembers().every((m) => probe!.votes.has(m))) probe!.done();
          return;
        }
        if (probe && state.investigating?.version === header.version && probe.sumHash === header.sumHash) {
          probe.votes.set(peer, { valid: false, ...(leaf !== undefined ? { leaf } : {}) });
          if (activeMembers().every((m) => probe!.votes.has(m))) probe.done();
          return;
        }
        pendingReports.set(peer, { valid: false, ...(leaf !== undefined ? { leaf } : {}) });
        if (!investigation) {
          const reports = new Map(pendingReports);
          pendingReports.clear();
          startInvestigation(header.version!, reports);
        }
      });
      return { header: { recorded: true as const } };
    },
  });

  await host.handle(Protocols.update, {
    request: UpdateHeader,
    maxBodyBytes: scheme.updateBytes(init.modelValues),
    // Before any body byte is read: who may send one, and for the open round only.
    authorize: ({ peer, header }) => {
      requireActive(peer);
      if (!open || open.round !== header.round) throw new FedtwinError('AGG_ROUND_CLOSED', `round ${header.round} is not open (open: ${open?.round ?? 'none'})`, { hint: 'poll for the next task' });
    },
    handler: async ({ peer, header, body }) => {
      requireActive(peer);
      const ack = await serial(async (): Promise<UpdateAck> => {
        if (!open || open.round !== header.round) {
          throw new FedtwinError('AGG_ROUND_CLOSED', `round ${header.round} is not open (open: ${open?.round ?? 'none'})`, { hint: 'poll for the next task' });
        }
        if (header.baseVersion !== open.baseVersion) {
          throw new FedtwinError('AGG_VERSION_MISMATCH', `update trained from version ${header.baseVersion}, round ${open.round} is based on ${open.baseVersion}`, { hint: 'fetch the missing aggregates and retrain' });
        }
        if (open.contributions.some((c) => c.peer === peer)) {
          throw new FedtwinError('AGG_DUPLICATE', `member ${peer} already contributed to round ${open.round}`);
        }
        if (open.refusals?.some((r) => r.peer === peer)) {
          throw new FedtwinError('AGG_ALREADY_REFUSED', `member ${peer} declined round ${open.round}; it cannot also contribute to it`, { hint: 'poll for the next round' });
        }
        // The base was fixed when the round opened; an upload never moves it.
        if (header.baseHash !== open.baseHash) {
          throw new FedtwinError('AGG_BASE_HASH_MISMATCH', `member ${peer} trained from model version ${header.baseHash.slice(0, 12)}…, round ${open.round} is based on ${open.baseHash!.slice(0, 12)}…`, { hint: 'the member\'s global model diverged: let it catch up on the published aggregates' });
        }
        for (const [on, mode] of [[siteDp, 'site'], [recordDp, 'record']] as const) {
          if (on && !header.privacy.some((p) => p.mode === mode)) {
            throw new FedtwinError('AGG_PRIVACY_MISSING', `the consortium requires ${mode}-level DP but the update reports no ${mode} spending`, { hint: 'run a fedtwin node that applies the consortium\'s privacy policy' });
          }
        }
        // Under DP a member's record count is not accounted, so it must not leave the member: uniform FedAvg.
        // The message does not echo the weight (error messages reach this aggregator's logs).
        if (anyDp && header.weight !== 1) {
          throw new FedtwinError('AGG_BAD_UPDATE', `under differential privacy (mode ${privacy.mode}) updates are unweighted: weight must be 1 (uniform FedAvg), so no member's record count leaves it; this update declares another weight`, { hint: 'run a fedtwin node that applies the consortium\'s privacy policy' });
        }
        const maxWeight = maxWeightOf(peer);
        if (!anyDp && (!Number.isInteger(header.weight) || header.weight > maxWeight)) {
          throw new FedtwinError('AGG_BAD_WEIGHT', `weight ${header.weight} is not a record count between 1 and this member's maximum ${maxWeight}`, { hint: 'the consortium bounds each member\'s declared record count (aggregator config maxWeight)' });
        }
        // What the body sums to must be what the consortium's generator sends (the manifest pins it): a count
        // vector is never summed into a model's round, nor a model delta released as counts.
        const payload = header.payload ?? 'model-delta';
        // (a calibrating VAE consortium's first measurement, on version 0, is its column release: counts too)
        const wanted = init.model.kind === 'marginals' || (init.model.calibrate === true && open.baseVersion === 0) ? 'counts' : 'model-delta';
        if (payload !== wanted) {
          throw new FedtwinError('AGG_BAD_UPDATE', `update carries ${payload}, this consortium's ${init.model.kind} generator sums ${wanted}`, { hint: 'the member runs another generator than the consortium manifest names: check its manifest' });
        }
        if (header.encoding !== scheme.encoding) {
          throw new FedtwinError('AGG_BAD_UPDATE', `update is ${header.encoding}, the consortium aggregates ${scheme.encoding}`, { hint: 'the member and the aggregator disagree on secure aggregation: check both configs' });
        }
        if (open.keyId && header.keyId !== open.keyId) {
          throw new FedtwinError('AGG_KEY_MISMATCH', `update encrypted under key ${header.keyId ?? '(none)'}, round ${open.round} uses ${open.keyId}`, { hint: 'fetch that key from the key ceremony' });
        }
        if (secagg && (secagg.phase !== 'input' || !secagg.sharers().has(peer))) {
          throw new FedtwinError('AGG_SECAGG_NOT_IN_ROUND', `member ${peer} cannot send a masked input to round ${open.round} now (phase ${secagg.phase}${secagg.phase === 'input' ? '; it did not share its keys in time' : ''})`, { hint: 'poll for the next round' });
        }
        const expected = scheme.updateBytes(init.modelValues);
        if (header.values !== init.modelValues || !body || body.length !== expected) {
          throw new FedtwinError('AGG_BAD_UPDATE', `update has ${body?.length ?? 0} bytes for ${header.values} values, expected ${expected} for ${init.modelValues}`);
        }
        // Everything that can reject is checked before the update touches the sum: the signed entry first,
        // then the ciphertext (the accumulator validates before it adds and leaves the sum unchanged on reject).
        const entry = audit
          ? await audit.checkMemberEntry(Buffer.from(header.entry, 'base64'), { author: peer, type: 'contribution', round: header.round, body, keyId: open.keyId ?? (secagg ? 'secagg' : 'plaintext'), base: open.baseHash! })
          : undefined;
        // A signed entry cannot be trimmed, and the ledger is replicated to every member and kept: refuse it.
        if (anyDp && entry?.payload.type === 'contribution' && entry.payload.sampleCount !== undefined) {
          throw new FedtwinError('AGG_BAD_ENTRY', `under differential privacy (mode ${privacy.mode}) a contribution entry must not name the member's record count (sampleCount)`, { hint: 'run a fedtwin node that applies the consortium\'s privacy policy' });
        }
        // A DP count Ñ (issue 13 item 3) is public and charged; the q the entry records must be the one it gives, or
        // the member's ledger would not replay (and its q would again say something of N that Ñ does not).
        if (entry?.payload.type === 'contribution' && entry.payload.countEstimate !== undefined) {
          const q = Math.min(1, init.training.batchSize / entry.payload.countEstimate);
          // (a column release's counts are not sampled: its mechanism is the q = 1 Skellam of the counts it sums)
          const releaseOk = payload === 'counts' && entry.payload.mechanism?.kind === 'skellam' && entry.payload.mechanism.sampleRate === 1;
          if (!recordDp || (entry.payload.mechanism?.sampleRate !== q && !releaseOk)) {
            throw new FedtwinError('AGG_BAD_ENTRY', `the contribution entry names a record count estimate but its sampling rate ${entry.payload.mechanism?.sampleRate ?? '(none)'} is not min(1, batchSize / estimate) under privacy mode ${privacy.mode}`, { hint: 'run a fedtwin node that applies the consortium\'s privacy policy (record-level DP derives q from its DP count)' });
          }
          // Without its noise σ the count is not a DP release: only the count the manifest declares public for this member.
          if (entry.payload.countNoise === undefined && entry.payload.countEstimate !== publicCountOf(init.manifest?.manifest, peer)) {
            throw new FedtwinError('AGG_BAD_ENTRY', `the contribution entry names a record count ${entry.payload.countEstimate} without its noise, and the manifest declares no such public count for ${peer}`, { hint: 'a member releases a DP count (with countNoise) unless the manifest declares its count public (members[].publicCount)' });
          }
        }
        const stats = keptStats(header, anyDp);
        if (stats.dropped) {
          log.warn({ event: 'update-stats-dropped', round: header.round, peer }, `round ${header.round}: ${peer.slice(-8)} sent its training loss or time under differential privacy; discarded unread (never stored or logged): update that node`);
        }
        await sum!.add(body, { round: open.round, baseHash: open.baseHash!, member: peer, ...(header.keyId ? { keyId: header.keyId } : {}) });
        const rec: RoundRecord = {
          ...open,
          contributions: [...open.contributions, {
            peer, weight: header.weight, ...stats.kept, bytes: body.length, baseHash: header.baseHash,
            receivedAt: now(), privacy: header.privacy,
          }],
        };
        try {
          if (audit && entry) rec.contributions[rec.contributions.length - 1]!.ledgerIndex = (await audit.appendChecked(entry)).index;
          crashPoint('after-contribution-ledger');
          await store.addContribution(rec, peer, body);
        } catch (err) {
          // The sum already holds this update but it was not accepted: rebuild the sum from what is persisted.
          const persisted = open;
          await sum!.dispose();
          sum = await rebuildSum(persisted);
          throw err;
        }
        open = rec;
        log.info({ event: 'contribution', round: rec.round, peer, weight: header.weight, ...(stats.kept.loss !== undefined ? { loss: stats.kept.loss } : {}), count: rec.contributions.length },
          `round ${rec.round}: contribution ${rec.contributions.length}/${init.rounds.quorum} from ${peer.slice(-8)}`);
        const count = rec.contributions.length;
        if (count >= init.rounds.quorum) await aggregate('quorum');
        else if (everyoneAnswered(rec) && count >= init.rounds.minParticipants) await aggregate('all-answered');
        const ledgerIndex = rec.contributions.at(-1)!.ledgerIndex;
        return { accepted: true, round: rec.round, contributions: count, ...(ledgerIndex !== undefined ? { ledgerIndex } : {}) };
      });
      return { header: ack };
    },
  });

  await host.handle(Protocols.refuse, {
    request: RefuseRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireActive(peer);
      await serial(async () => {
        // A refusal is for the open round only, once, and never besides a contribution to it: anything
        // else would let a member write permanent replicated entries for rounds that never existed.
        if (!open || open.round !== header.round) {
          throw new FedtwinError('AGG_ROUND_CLOSED', `round ${header.round} is not open (open: ${open?.round ?? 'none'}); a refusal is only recorded for the open round`, { hint: 'poll for the next task and decline that one if the budget is still short' });
        }
        if (open.refusals?.some((r) => r.peer === peer)) return; // a retry of the same refusal
        if (open.contributions.some((c) => c.peer === peer)) {
          throw new FedtwinError('AGG_ALREADY_CONTRIBUTED', `member ${peer} already contributed to round ${open.round}; it cannot also decline it`);
        }
        if (audit) await audit.recordMemberEntry(Buffer.from(header.entry, 'base64'), { author: peer, type: 'refusal', round: header.round });
        const rec: RoundRecord = { ...open!, refusals: [...(open!.refusals ?? []), { peer, code: header.code, reason: header.reason, privacy: header.privacy, at: now() }] };
        if (header.code === 'NODE_BUDGET_EXHAUSTED' && !state.exhausted?.includes(peer)) {
          state = { ...state, exhausted: [...(state.exhausted ?? []), peer] };
          await store.openRound(state, rec); // round record and state in one batch
        } else {
          await store.saveRound(rec);
        }
        open = rec;
        log.warn({ event: 'refusal', round: rec.round, peer, code: header.code, reason: header.reason }, `round ${rec.round}: ${peer.slice(-8)} declined: ${header.reason}`);
        // Under masking the keys and shares phases wait for every member that has not declined: this may close one.
        if (secagg) await advanceSecagg(false);
        if (everyoneAnswered(rec)) {
          if (rec.contributions.length >= init.rounds.minParticipants) await aggregate('all-answered');
          else await failRound(`every member answered but only ${rec.contributions.length} contributed (${rec.refusals!.length} declined)`);
        }
      });
      return { header: { recorded: true as const } };
    },
  });

  if (secaggConfig) {
    const a = audit!;
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const closedRound = (round: number) => new FedtwinError('AGG_ROUND_CLOSED', `round ${round} is not open (open: ${open?.round ?? 'none'})`, { hint: 'poll for the next task' });
    const badEntry = (why: string) => new FedtwinError('AGG_BAD_ENTRY', `secagg entry rejected: ${why}`, { hint: 'the signed ledger entry must say what the message says' });
    await host.handle(Protocols.secaggKeys, {
      request: SecaggKeysRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireActive(peer);
        await serial(async () => {
          if (!secagg || !open || open.round !== header.round) throw closedRound(header.round);
          if (header.ad.member !== peer) throw new FedtwinError('AGG_SECAGG_BAD_KEYS', `member ${peer} sent keys in the name of ${header.ad.member}`);
          if (open.sitOut === peer) throw new FedtwinError('AGG_SECAGG_NOT_IN_ROUND', `round ${header.round} runs without member ${peer} (a suspect sat out while a withdrawn masked sum's culprit is isolated)`, { hint: 'poll for the next round' });
          // The same advertisement again (its acknowledgement was lost to a restart): already recorded.
          const had = secagg.ads.get(peer);
          if (had && sameAd(had, header.ad)) return;
          const entry = await a.checkSecaggEntry(Buffer.from(header.entry, 'base64'), { author: peer, type: 'secagg-keys', round: header.round });
          const p = entry.payload;
          if (p.type !== 'secagg-keys' || p.cPub !== header.ad.cPub || p.sPub !== header.ad.sPub || p.signature !== header.ad.signature) throw badEntry('its keys are not the ones advertised');
          secagg.addAd(adFromWire(init.consortium, header.round, header.ad));
          await a.appendChecked(entry);
          await advanceSecagg(false);
        });
        return { header: { recorded: true as const } satisfies z.infer<typeof SecaggAck> };
      },
    });
    await host.handle(Protocols.secaggShares, {
      request: SecaggSharesRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireActive(peer);
        await serial(async () => {
          if (!secagg || !open || open.round !== header.round) throw closedRound(header.round);
          const entry = await a.checkSecaggEntry(Buffer.from(header.entry, 'base64'), { author: peer, type: 'secagg-shares', round: header.round });
          const p = entry.payload;
          if (p.type !== 'secagg-shares' || p.bCommit !== header.bCommit || p.sharesHash !== sharesHash(header.shares) || p.recipients.join(',') !== header.shares.map((x) => x.to).join(',')) {
            throw badEntry('its commitment, shares hash or recipients are not the bundle\'s');
          }
          const had = secagg.bundles.get(peer);
          if (had && Buffer.from(had.bCommit).toString('hex') === header.bCommit && sharesHash(had.shares.map(shareToWire)) === p.sharesHash) return; // a re-send after a restart
          const bundle = { member: peer, bCommit: new Uint8Array(Buffer.from(header.bCommit, 'hex')), shares: header.shares.map(shareFromWire) };
          // Shares first in the store, then the ledger entry naming their hash: a restart can rebuild the phase.
          await saveSecaggSnapshot(secagg, { member: peer, bCommit: header.bCommit, shares: header.shares });
          secagg.addBundle(bundle);
          await a.appendChecked(entry);
          await advanceSecagg(false);
        });
        return { header: { recorded: true as const } satisfies z.infer<typeof SecaggAck> };
      },
    });
    await host.handle(Protocols.secaggRound, {
      request: SecaggRoundRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireActive(peer);
        const closed = (reason: string): SecaggRoundResponse => ({ status: 'closed', reason });
        const answer = (): SecaggRoundResponse | undefined => {
          const s = secagg;
          if (!s || !open || open.round !== header.round) return closed(`round ${header.round} is no longer open`);
          if (s.failed) return closed(s.failed);
          if (header.phase === 'keys') {
            if (s.phase === 'keys') return undefined;
            if (!s.accepted!.some((x) => x.member === peer)) return closed('this member\'s keys did not arrive in time');
            return { status: 'keys', ads: s.accepted!.map(adToWire) };
          }
          if (header.phase === 'shares') {
            if (s.phase === 'keys' || s.phase === 'shares') return undefined;
            if (!s.sharers().has(peer)) return closed('this member\'s shares did not arrive in time');
            return { status: 'shares', shares: (s.inboxes!.get(peer) ?? []).map(shareToWire) };
          }
          if (s.phase !== 'recovery') return s.phase === 'done' ? closed('the round is over') : undefined;
          if (!s.request!.survivors.includes(peer)) return closed('this member\'s masked input is not in the sum');
          return { status: 'recovery', ledgerIndex: s.requestIndex! };
        };
        let res = answer();
        if (!res && header.waitMs > 0 && !stopped) {
          await waitForChange(header.waitMs);
          res = answer();
        }
        return { header: res ?? { status: 'pending' as const } };
      },
    });
    await host.handle(Protocols.secaggReveal, {
      request: SecaggRevealRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireActive(peer);
        await serial(async () => {
          const s = secagg;
          if (!s || !open || open.round !== header.round || s.phase !== 'recovery') throw closedRound(header.round);
          const entry = await a.checkSecaggEntry(Buffer.from(header.entry, 'base64'), { author: peer, type: 'secagg-reveal', round: header.round });
          const p = entry.payload;
          const digest = sa!.requestDigest(s.request!);
          if (p.type !== 'secagg-reveal' || p.digest !== hex(digest)) throw badEntry('it answers another recovery request than the round\'s');
          if (s.responses.has(peer)) return; // a re-send after a restart: its reveal is in
          s.addResponse(peer, revealResponse(peer, p, digest));
          await a.appendChecked(entry);
          await finishRecovery(false);
        });
        return { header: { recorded: true as const } satisfies z.infer<typeof SecaggAck> };
      },
    });
  }

  if (secureAggregation.scheme === 'bfv') {
    const bfv = secureAggregation;
    await host.handle(Protocols.keyPublish, {
      request: KeyPublishHeader,
      maxBodyBytes: MAX_SEALED_KEYS_BYTES,
      maxInboundStreams: 1, // one publication at a time per connection: the holder never needs more
      // Only the key holder may send up to 64 MiB here: anyone else is refused before the body is read.
      authorize: ({ peer }) => {
        requireMember(peer);
        if (peer !== bfv.keyHolder) throw new FedtwinError('AGG_NOT_KEY_HOLDER', `member ${peer} is not the consortium's key holder`, { hint: `the key holder is ${bfv.keyHolder}` });
      },
      handler: async ({ peer, header, body }) => {
        requireMember(peer);
        if (peer !== bfv.keyHolder) throw new FedtwinError('AGG_NOT_KEY_HOLDER', `member ${peer} is not the consortium's key holder`, { hint: `the key holder is ${bfv.keyHolder}` });
        const he = await import('@fedtwin/he');
        let boxes: unknown;
        try {
          boxes = JSON.parse(new TextDecoder().decode(body ?? new Uint8Array()));
        } catch {
          throw new FedtwinError('AGG_BAD_KEY', 'sealed keys are not valid JSON');
        }
        if (!Array.isArray(boxes) || boxes.length !== header.boxes) throw new FedtwinError('AGG_BAD_KEY', `expected ${header.boxes} sealed keys`);
        const byPeer: Record<string, unknown> = {};
        for (const box of boxes) {
          // Public checks only: shape, key id, epoch and the holder's signature. Opening needs the recipient's key.
          const v = he.verifySealedKey(box, bfv.keyHolder);
          if (v.keyId !== header.keyId || v.epoch !== header.epoch) throw new FedtwinError('AGG_BAD_KEY', `a sealed key is for ${v.keyId}/${v.epoch}, not ${header.keyId}/${header.epoch}`);
          if (!members.has(v.recipient)) throw new FedtwinError('AGG_BAD_KEY', `a sealed key is for ${v.recipient}, who is not a member`);
          byPeer[v.recipient] = box;
        }
        const missing = [...members].filter((m) => m !== bfv.keyHolder && !(m in byPeer));
        if (missing.length) throw new FedtwinError('AGG_BAD_KEY', `no sealed key for ${missing.length} member(s): ${missing.slice(0, 3).join(', ')}`);
        await serial(async () => {
          if (keyState && keyState.keyId === header.keyId) return; // the holder re-publishing after a restart
          if (keyState && keyState.epoch >= header.epoch) {
            throw new FedtwinError('AGG_KEY_EXISTS', `key epoch ${keyState.epoch} (${keyState.keyId}) is already in force`, { hint: 'a rotation must use a higher epoch' });
          }
          const previousKeyId = keyState?.keyId;
          keyState = { keyId: header.keyId, epoch: header.epoch, boxes: byPeer };
          await store.saveKey(keyState);
          await audit?.record({ type: 'key', v: 1, event: header.epoch === 0 ? 'ceremony' : 'rotation', keyId: header.keyId, ...(previousKeyId ? { previousKeyId } : {}), holders: [bfv.keyHolder] });
          await audit?.checkpoint();
          log.info({ event: 'key-published', keyId: header.keyId, epoch: header.epoch, members: Object.keys(byPeer).length }, `HE key ${header.keyId.slice(0, 16)}… (epoch ${header.epoch}) published by the key holder`);
          wakeWaiters();
          await maybeStart();
        });
        return { header: { accepted: true as const, keyId: header.keyId } };
      },
    });

    await host.handle(Protocols.key, {
      request: KeyRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireMember(peer);
        if (!keyState && header.waitMs > 0) {
          await waitForChange(header.waitMs);
        }
        const res: KeyResponse = keyState
          ? { status: 'ready', keyId: keyState.keyId, epoch: keyState.epoch, sealed: keyState.boxes[peer] ?? null }
          : { status: 'pending' };
        return { header: res };
      },
    });
  }

  if (audit) {
    await host.handle(Protocols.ledger, {
      request: LedgerSyncRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireMember(peer);
        const latest = await audit.latestCheckpoint();
        if (latest && header.fromSize > latest.size) {
          // The member holds more than this log has: say so, and let the member judge (a rollback).
          const res: z.infer<typeof LedgerSyncResponse> = { size: latest.size, checkpoint: latest.note, origin: audit.origin };
          return { header: res };
        }
        const b = await audit.syncBundle(header.fromSize);
        const body = new TextEncoder().encode(JSON.stringify({
          entries: b.entries.map((e) => Buffer.from(e).toString('base64')),
          consistencyProof: b.consistencyProof.map((h) => Buffer.from(h).toString('hex')),
        }));
        if (body.length > MAX_LEDGER_SYNC_BYTES) throw new FedtwinError('AGG_SYNC_TOO_LARGE', 'ledger sync bundle too large', { hint: 'sync in steps' });
        const res: z.infer<typeof LedgerSyncResponse> = { size: header.fromSize + b.entries.length, checkpoint: b.checkpoint, origin: audit.origin };
        return { header: res, body };
      },
    });
    await host.handle(Protocols.cosign, {
      request: CosignRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireMember(peer);
        const n = await serial(() => audit.cosign(header.note, peer));
        return { header: { cosignatures: n } satisfies z.infer<typeof CosignAck> };
      },
    });
    // What a member waits for before it applies an aggregate: other members' cosignatures (issue 12 item 6).
    await host.handle(Protocols.witnesses, {
      request: WitnessesRequest,
      maxBodyBytes: 0,
      handler: async ({ peer, header }) => {
        requireMember(peer);
        const notes = await audit.witnessNotes(header.fromSize, MAX_WITNESS_NOTES);
        return { header: { notes } satisfies z.infer<typeof WitnessesResponse> };
      },
    });
  }

  await host.handle(Protocols.aggregate, {
    request: AggregateRequest,
    maxBodyBytes: 0,
    handler: async ({ peer, header }) => {
      requireMember(peer);
      const agg = await store.getAggregate(header.version);
      if (!agg) throw new FedtwinError('AGG_NO_SUCH_VERSION', `no aggregate for version ${header.version} (latest ${state.version})`);
      const res: AggregateResponse = {
        version: agg.record.version, round: agg.record.round, participants: agg.record.participants,
        totalWeight: agg.record.totalWeight, values: agg.record.values, encoding: agg.record.encoding ?? 'f32le', baseHash: agg.record.baseHash,
        ...(agg.record.keyId ? { keyId: agg.record.keyId } : {}),
      };
      return { header: res, body: agg.body };
    },
  });

  // A restart during an investigation starts it again (votes were in memory; the verdicts stay in the ledger).
  if (state.investigating) startInvestigation(state.investigating.version, new Map());

  return {
    peerId: host.peerId,
    state: async () => state,
    rounds: () => store.listRounds(),
    aggregates: () => store.listAggregates(),
    finished: () => finishedPromise,
    secureAggregation,
    keyId: async () => keyState?.keyId,
    ledger: async () => (audit ? audit.summary() : undefined),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (deadlineTimer) clearTimeout(deadlineTimer);
      wakeWaiters();
      probe?.done();
      await investigation;
      await queue.catch(() => undefined);
      await sum?.dispose().catch(() => undefined);
      await scheme.dispose().catch(() => undefined);
      await audit?.close();
      await store.close();
    },
  };
}


const DEFAULT_MAX_WEIGHT = 1_000_000;

/**
 * What the aggregator keeps of an update's training statistics: with DP off, the loss and training time (for
 * debugging); under DP nothing, since neither is accounted (the loss is a membership signal, the time reveals the
 * record count). `dropped`: a member sent them under DP anyway (a node that predates the rule).
 */
export function keptStats(header: Pick<UpdateHeader, 'loss' | 'trainSeconds'>, dp: boolean): { kept: { loss?: number; trainSeconds?: number }; dropped: boolean } {
  if (dp) return { kept: {}, dropped: header.loss !== undefined || header.trainSeconds !== undefined };
  return { kept: { ...(header.loss !== undefined ? { loss: header.loss } : {}), ...(header.trainSeconds !== undefined ? { trainSeconds: header.trainSeconds } : {}) }, dropped: false };
}

function validatePolicy(p: RoundPolicy, memberCount: number): void {
  const bad = (field: string, msg: string) => new FedtwinError('CONFIG_INVALID', `rounds.${field}: ${msg}`, { hint: 'fix the aggregator config' });
  if (!Number.isInteger(p.totalRounds) || p.totalRounds < 1) throw bad('total', 'must be an integer ≥ 1');
  if (!Number.isInteger(p.quorum) || p.quorum < 1) throw bad('quorum', 'must be an integer ≥ 1');
  if (!Number.isInteger(p.minParticipants) || p.minParticipants < 1 || p.minParticipants > p.quorum) throw bad('minParticipants', 'must be an integer between 1 and quorum');
  if (p.quorum > memberCount) throw bad('quorum', `is ${p.quorum} but only ${memberCount} members are listed`);
  if (!(p.deadlineSeconds > 0)) throw bad('deadlineSeconds', 'must be > 0');
}

/** The record count a manifest declares public for `peer` (members[].publicCount), if any. */
function publicCountOf(manifest: unknown, peer: string): number | undefined {
  const members = (manifest as { members?: Array<{ peerId?: string; publicCount?: number }> } | undefined)?.members;
  return members?.find((m) => m.peerId === peer)?.publicCount;
}
