// Round loop: sets a member up (join, key, witness, resume, budget), then takes part in rounds until the
// federation finishes — each task is a probe, the end, or a round: catch up, check, plan, train, encode, deliver.
import { MAX_TASK_WAIT_MS, Protocols, TaskResponse } from '@fedtwin/protocol';
import { createStrategy } from '@fedtwin/strategy';
import type { NodeInit, NodeRunResult } from './api.ts';
import type { AggregatorLink } from './call.ts';
import { checkTaskTraining, warnPrivacyOff } from './consortium-check.ts';
import type { NodeContext } from './context.ts';
import type { MemberModel } from './member-model.ts';
import type { RoundPlan } from './privacy.ts';
import type { MemberScheme } from './scheme.ts';
import type { NodeStore } from './store.ts';
import { cpuMsBetween, sleep } from './util.ts';
import type { Witness } from './witness.ts';
import { AggregateUnusable, catchUp, requireHeldBase, requireHeldVersion } from './phases/apply.ts';
import { ensureCountEstimate, openPrivacy, planOrRefuse, recordSpend, trainingRounds, type Affordability } from './phases/budget.ts';
import { vaeReleaseOf } from './member-model.ts';
import { deliver, persistPending, resendPending } from './phases/deliver.ts';
import { siteSkellamOf, siteSkellamStep } from './site-noise.ts';
import { declaredPublicCount } from './privacy.ts';
import { prepareUpdateMasks, roundRefOf, sealUpdate, sitOutIfAlreadyEncrypted, strategyUpdate } from './phases/encode.ts';
import { modelPathFor, runResult, saveReleasedModel, writeResult, writeSynthetic } from './phases/finish.ts';
import { buildMemberModel, checkModelSize, checkOwnAgreement, joinConsortium, loadData, readRecords } from './phases/join.ts';
import { openScheme } from './phases/key.ts';
import { answerProbe } from './phases/probe.ts';
import { resumeState } from './phases/resume.ts';
import { trainLocal } from './phases/train.ts';
import { countLocal, isReleaseRound, releaseLocal } from './phases/count.ts';
import { openMemberWitness, syncLedger } from './phases/witness-sync.ts';
import { isSecagg, secaggAfterSending, secaggBeforeTraining } from './phases/secagg.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

/** What createNode() hands the run: its store, its link to the aggregator and its stop signal. */
export interface RunDeps {
  init: NodeInit;
  store: NodeStore;
  link: AggregatorLink;
  giveUpMs: number;
  signal: AbortSignal;
  stopped(): boolean;
}

/** What stop() releases, set as soon as each is opened. */
export interface Resources {
  model?: MemberModel;
  scheme?: MemberScheme;
  witness?: Witness;
}

export async function runNode(deps: RunDeps, res: Resources): Promise<NodeRunResult> {
  const ctx = await setUp(deps, res);
  await takePartInRounds(ctx);
  return finish(ctx);
}

async function setUp(deps: RunDeps, res: Resources): Promise<NodeContext> {
  const { init, link } = deps;
  const csv = await readRecords(init);
  checkOwnAgreement(init);
  const join = await joinConsortium(init, link);
  const { schema, table, data, units, unitCount } = loadData(init, join, csv);
  const strategy = createStrategy(join.strategy);
  const model = res.model = await buildMemberModel(join, data, table, units);
  checkModelSize(model.weights, join);
  const scheme = res.scheme = await openScheme(init, join, link.call, deps.giveUpMs);
  const witness = res.witness = await openMemberWitness(init, join);
  const scheduled = model.kind === 'marginals' ? model.marginals.schedule.plan.mechanisms : undefined;
  // The VAE's site-level DP: the integer Skellam mechanism (same on every member), before the rebuild replays it.
  const siteSkellam = await siteSkellamOf(init.consortium.manifest, join);
  const siteStep = siteSkellam ? siteSkellamStep(siteSkellam) : undefined;
  const publicCount = declaredPublicCount(init.consortium.manifest, join.privacy, init.host.peerId);
  // A calibrating VAE consortium's column release: replayed once by a rebuild, before its DP-SGD rounds (one fewer).
  const releaseStep = vaeReleaseOf(model)?.release.mechanism;
  const resumed = await resumeState(init, deps.store, join, model.weights, { witness, call: link.call, rows: data.rows, unitCount, scheduled, siteStep, publicCount, releaseStep, trainingRounds: trainingRounds({ model, join }) });
  const privacy = openPrivacy(init, join, resumed.state, siteSkellam, { rows: data.rows, unitCount, publicCount });
  const ctx: NodeContext = {
    init, host: init.host, log: init.logger, store: deps.store, call: link.call, signal: deps.signal, stopped: deps.stopped,
    consortium: init.consortium, join, schema, data, units, unitCount, strategy, model, scheme, witness, privacy,
    resumedPending: resumed.pending, state: resumed.state, global: resumed.global,
  };
  // After the aggregator was unreachable (a restart), re-verify its log before the next request to it.
  link.checkAfterReconnect(() => syncLedger(ctx), [Protocols.ledger, Protocols.cosign]);
  await ensureCountEstimate(ctx); // before the first round: calibration leaves room for it
  return ctx;
}

async function takePartInRounds(ctx: NodeContext): Promise<void> {
  let satOut: number | undefined; // the round this member was last told it sits out (logged once)
  while (!ctx.stopped()) {
    const { header: task } = await ctx.call(Protocols.task, { afterRound: ctx.state.lastRound, waitMs: MAX_TASK_WAIT_MS }, TaskResponse, { timeoutMs: MAX_TASK_WAIT_MS + 30_000 });
    if (ctx.stopped()) break;
    if (task.status === 'idle') {
      if (task.sitOut !== undefined && task.sitOut !== satOut) {
        satOut = task.sitOut;
        ctx.log.warn({ event: 'secagg-sitting-out', round: task.sitOut }, `round ${task.sitOut} runs without this member: the aggregator is isolating the culprit of a withdrawn masked sum (docs/he.md §9); waiting for the next round`);
      }
      continue;
    }
    if (task.status === 'probe') {
      await answerProbe(ctx, task.id);
      continue;
    }
    if (task.status === 'finished') {
      if (!(await caughtUp(ctx, task.version))) continue; // syncs and co-signs the final checkpoint first
      ctx.log.info({ event: 'federation-finished', version: ctx.state.version, hash: ctx.state.hash }, `federation finished at global version ${ctx.state.version}`);
      break;
    }
    await takePartInRound(ctx, task);
  }
}

/**
 * Catches up to `target`; false if an aggregate was unusable: the verdict is in, the aggregator opens
 * probes next, so wait a moment and poll again.
 */
async function caughtUp(ctx: NodeContext, target: number): Promise<boolean> {
  try {
    await catchUp(ctx, target);
    return true;
  } catch (err) {
    if (!(err instanceof AggregateUnusable)) throw err;
    await sleep(1000, ctx.signal);
    return false;
  }
}

async function takePartInRound(ctx: NodeContext, task: OpenTask): Promise<void> {
  if (await resendPending(ctx, task)) return;
  const cpuAtStart = process.cpuUsage(); // this process, its HE worker threads included
  // Masking: the round's keys are agreed while this member catches up (neither needs the other), so the two
  // extra phases cost no waiting of their own (measured: bench/round.ts --secure all). Nothing is spent on
  // them; a member that then refuses the round or cannot catch up is named dropped, its input never sent.
  const keysAgreed = isSecagg(ctx.scheme) && !(await alreadyEncrypted(ctx, task)) ? secaggBeforeTraining(ctx, task) : undefined;
  keysAgreed?.catch(() => undefined); // awaited below on every path; this only keeps it from counting as unhandled meanwhile
  const tCatchUp = performance.now();
  if (!(await caughtUp(ctx, task.baseVersion))) { await keysAgreed; return; }
  const catchUpMs = Math.round(performance.now() - tCatchUp);
  try {
    checkRound(ctx, task);
  } catch (err) {
    await keysAgreed?.catch(() => undefined);
    throw err;
  }
  // Budget check before any training: refuse (and say why) rather than overspend.
  const planned = await planOrRefuse(ctx, task);
  if (!planned) { await keysAgreed; return; }
  await contribute(ctx, task, planned, { cpuAtStart, catchUpMs }, keysAgreed);
}

/** Whether this member already encrypted an update for the round before a restart (it sits the round out then). */
async function alreadyEncrypted(ctx: NodeContext, task: OpenTask): Promise<boolean> {
  return ctx.scheme.canContribute ? !(await ctx.scheme.canContribute(roundRefOf(ctx, task))) : false;
}

/** The round builds on what this member holds, under the manifest's training config. */
function checkRound(ctx: NodeContext, task: OpenTask): void {
  requireHeldVersion(ctx, task);
  checkTaskTraining(ctx.consortium, task.training);
  if (ctx.privacy.policy.mode === 'off') warnPrivacyOff(ctx.log, task.round);
  requireHeldBase(ctx, task);
}

/** Train, encode, persist (the spend and the update), deliver. */
async function contribute(ctx: NodeContext, task: OpenTask, { plan, check }: { plan: RoundPlan; check: Affordability }, timing: { cpuAtStart: NodeJS.CpuUsage; catchUpMs: number }, keysAgreed?: Promise<boolean>): Promise<void> {
  const ref = roundRefOf(ctx, task);
  if (await sitOutIfAlreadyEncrypted(ctx, ref)) { await keysAgreed; return; }
  // Masking: the round's keys are agreed before training (nothing is spent if this member misses a phase).
  if (isSecagg(ctx.scheme) && !(await (keysAgreed ?? secaggBeforeTraining(ctx, task)))) return;
  // Posted synchronously, right before training: the HE workers make the masks while this thread trains.
  prepareUpdateMasks(ctx, ref);
  // The VAE trains and sends its (clipped, noised) change; the marginals generator counts and sends noisy counts.
  // A calibrating VAE consortium's first measurement is its column release: counts as well.
  const counts = ctx.model.kind === 'marginals' || isReleaseRound(ctx, task);
  const trained = ctx.model.kind === 'marginals' ? await countLocal(ctx, task, plan) : counts ? await releaseLocal(ctx, task, plan) : await trainLocal(ctx, task, plan);
  // Counts under BFV or masking go as integers (exact sum of counts + Skellam shares); in plaintext as float32 (exact below 2^24).
  const update = counts ? { values: ctx.scheme.encoding !== 'f32le' && trained.quanta ? trained.quanta : trained.delta, weight: 1 } : strategyUpdate(ctx, trained.delta, plan, task.round);
  recordSpend(ctx.privacy, plan);
  const tEncode = performance.now();
  const cEncode = process.cpuUsage();
  const sealed = await sealUpdate(ctx, task, ref, update, trained, check.spends);
  const tPersist = performance.now();
  const cPersist = process.cpuUsage();
  await persistPending(ctx, task.round, sealed);
  const phases = { catchUpMs: timing.catchUpMs, trainMs: Math.round(trained.trainSeconds * 1000), trainCpuMs: trained.trainCpuMs, encodeMs: Math.round(tPersist - tEncode), persistMs: Math.round(performance.now() - tPersist),
    encodeCpuMs: cpuMsBetween(cEncode, cPersist), persistCpuMs: cpuMsBetween(cPersist),
    ...(ctx.scheme.lastMaskWaitMs !== undefined ? { maskWaitMs: ctx.scheme.lastMaskWaitMs } : {}) };
  await deliver(ctx, sealed.header, sealed.body, trained, phases, timing.cpuAtStart);
  if (isSecagg(ctx.scheme)) await secaggAfterSending(ctx, task);
}

async function finish(ctx: NodeContext): Promise<NodeRunResult> {
  const { init } = ctx;
  let syntheticRows = 0;
  if (init.synthetic && !ctx.stopped()) syntheticRows = await writeSynthetic(ctx, init.synthetic);
  if (!ctx.stopped()) await saveReleasedModel(ctx, modelPathFor(init));
  const result = runResult(ctx, syntheticRows);
  if (init.resultPath) await writeResult(ctx, init.resultPath, result);
  return result;
}
