// Train: local training (DP-SGD when the plan says record-level DP) from the current global weights;
// returns the change of the shared sub-model, the only part that leaves the site.
import { FedtwinError } from '@fedtwin/errors';
import type { TaskResponse } from '@fedtwin/protocol';
import type { NodeContext } from '../context.ts';
import { modelPart, vaeOf } from '../member-model.ts';
import type { RoundPlan } from '../privacy.ts';
import { cpuMsBetween } from '../util.ts';
import { dpPopulation } from './budget.ts';

type OpenTask = Extract<TaskResponse, { status: 'open' }>;

export interface Trained {
  /** Loss per epoch. */
  losses: number[];
  trainSeconds: number;
  trainCpuMs: number;
  /** local − global, shared sub-model only. */
  delta: Float32Array;
  /** Counts: the same update as whole HE quanta (integers), which BFV encrypts as they are. */
  quanta?: Int32Array;
  /** A count vector (the marginals generator's rounds, a VAE consortium's column release), not a model delta. */
  counts?: boolean;
}

/**
 * Starts training synchronously (no await before vae.trainEpochs): the HE offline phase posted just
 * before must be on its workers while this thread trains.
 */
export async function trainLocal(ctx: NodeContext, task: OpenTask, plan: RoundPlan): Promise<Trained> {
  const { init } = ctx;
  const vae = vaeOf(ctx.model);
  const cpuTrain = process.cpuUsage(); // process-wide: the HE workers' offline phase counts here too
  const t0 = performance.now();
  const weights = modelPart(ctx.model, ctx.global);
  vae.setSharedWeights(weights);
  // DP-SGD's sampling masks and noise come from the OS CSPRNG; only a simulation's seededNoise makes
  // them follow the (public) seed. The seed below drives only the non-private randomness (eps, order).
  // With a unit column the trainer samples and clips per unit (patient), at the q the plan charged for.
  const dp = plan.record
    ? {
      clip: plan.record.clip, noiseMultiplier: plan.record.noiseMultiplier, seeded: init.seededNoise === true, ...(ctx.units ? { units: ctx.units } : {}),
      // q from the public population the plan used (the DP count Ñ), never the private N; the trainer checks they agree.
      population: dpPopulation(ctx), sampleRate: plan.record.sampleRate,
    }
    : undefined;
  const trained = await vae.trainEpochs(ctx.data, { ...task.training, seed: (init.seed ?? 1) * 1_000_003 + task.round, dp });
  if (plan.record && (trained.steps !== plan.record.steps || trained.sampleRate !== plan.record.sampleRate)) {
    throw new FedtwinError('NODE_PRIVACY_MISMATCH', `trainer took ${trained.steps} steps at q=${trained.sampleRate}, the accountant planned ${plan.record.steps} at q=${plan.record.sampleRate}`);
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  const trainCpuMs = cpuMsBetween(cpuTrain);
  return { losses: trained.losses, trainSeconds, trainCpuMs, delta: sharedDelta(vae.getSharedWeights(), weights, ctx.global.length) };
}

/** local − global over the model's values; a column release's counts behind them are unchanged by training (zeros). */
function sharedDelta(local: Float32Array, global: Float32Array, length: number): Float32Array {
  const delta = new Float32Array(length);
  for (let i = 0; i < local.length; i++) delta[i] = local[i]! - global[i]!;
  return delta;
}
