// Local training loop for the twin VAE: shuffled minibatches with Adam, or DP-SGD on Poisson-
// sampled batches. Order and reparameterization noise derive from opts.seed (a run is reproducible
// on a given backend). DP-SGD's sampling masks and Gaussian noise come from the OS CSPRNG — the
// training seed is public in practice (default 1 on every node), and batches or noise derived from
// it would give no amplification and no noise against whoever knows it — unless dp.seeded asks
// for a reproducible simulation.

import * as tf from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';
import type { EncodedTable } from './types.ts';
import type { VaeCore } from './vae.ts';
import { createRng, deriveSeed } from './rng.ts';
import { secureNoise, seededNoise } from './noise.ts';
import { MIN_NOISE_MULTIPLIER } from './gaussian.ts';
import { dpSampleRate, groupUnits, osUniforms, poissonSample, seededUniforms } from './sampling.ts';
import type { Rng } from './rng.ts';
import { dpSgdStep } from './dpsgd.ts';
import { createFlatAdam } from './adam.ts';
import { forwardBackward, paramGrads } from './vae-grad.ts';
import type { FlatAdam } from './adam.ts';

export interface DpTrainOptions {
  /** L2 clipping bound C: of each example's gradient, or with `units` of each unit's summed gradient. */
  clip: number;
  /** Noise multiplier z ≥ MIN_NOISE_MULTIPLIER (0.5): Gaussian noise N(0, (zC)²) is added to the clipped sum. */
  noiseMultiplier: number;
  /** Simulation only: draw the sampling masks and the noise from `seed` (reproducible runs). Default
   *  false: both come from the OS CSPRNG. Seeded randomness voids the guarantee against anyone who
   *  knows the seed: they can regenerate every batch (no amplification by sampling) and subtract
   *  every noise draw. */
  seeded?: boolean;
  /** @deprecated `secureNoise: false` is `seeded: true` (kept for existing callers); both set and
   *  disagreeing is an error. */
  secureNoise?: boolean;
  /** Unit index of each row (e.g. a patient), 0..U−1 (extractUnitColumn): DP-SGD then Poisson-samples
   *  units at q = batchSize / U (batchSize = expected units per step) and clips each sampled unit's
   *  summed gradient to `clip` — user-level DP: the guarantee covers a whole unit, all its rows. */
  units?: Int32Array;
  /** The public population q is computed from: q = min(1, batchSize / population), and the noisy clipped sum
   *  is divided by q·population = min(batchSize, population). Under record-level DP this must not be the
   *  private row (unit) count, which q would disclose outside any ε: the node passes its DP count Ñ
   *  (docs/privacy.md, "The record count"). Absent: the rows (units), for callers whose N is public. */
  population?: number;
  /** The q the caller accounted for (optional): refused (MODELS_DP_INCONSISTENT) unless it is the trainer's. */
  sampleRate?: number;
}

export interface TrainOptions {
  epochs: number;
  /** Minibatch size; with `dp`, the expected batch size (sampling rate q = batchSize / dp.population, by default
   *  the rows, or expected units per batch with dp.units — see dpPlan). */
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Called after each epoch with its mean per-example loss (negative ELBO). */
  onEpoch?: (epoch: number, loss: number) => void;
  /** DP-SGD (per-example clipping + Gaussian noise, Poisson sampling). Off when absent. */
  dp?: DpTrainOptions;
}

export interface TrainResult {
  /** Mean per-example loss (negative ELBO, nats) per epoch. */
  losses: number[];
  /** Optimizer steps taken. */
  steps: number;
  /** Examples processed (sum of batch sizes). */
  examples: number;
  /** With dp: the Poisson sampling rate q used for every step (for the privacy accountant): of rows,
   *  or of units with dp.units (dpSampleRate gives the same number ahead of training). */
  sampleRate?: number;
}

/** Observation points for tests (not part of the package API). */
export interface TrainingProbe {
  /** Each DP-SGD step's sampled rows (a view, valid during the call). */
  onSample?(rows: Int32Array): void;
}

/** Whether the DP randomness is seeded (dp.seeded, or the older dp.secureNoise = false). */
function isSeeded(dp: DpTrainOptions): boolean {
  if (dp.seeded !== undefined && dp.secureNoise !== undefined && dp.seeded === dp.secureNoise) {
    throw bad(`dp.seeded = ${dp.seeded} contradicts dp.secureNoise = ${dp.secureNoise}`, 'set only dp.seeded (secureNoise is its deprecated inverse)');
  }
  return dp.seeded === true || dp.secureNoise === false;
}

function bad(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MODELS_BAD_ARGUMENT', message, { hint });
}

function checkOptions(o: TrainOptions): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > 100_000) throw bad(`epochs must be an integer in [1, 100000], got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 65_536) throw bad(`batchSize must be an integer in [1, 65536], got ${o.batchSize}`);
  if (!(o.learningRate > 0 && o.learningRate <= 10)) throw bad(`learningRate must be in (0, 10], got ${o.learningRate}`);
  if (!Number.isFinite(o.seed)) throw bad(`seed must be finite, got ${o.seed}`);
  if (o.dp) {
    if (!(o.dp.clip > 0 && Number.isFinite(o.dp.clip))) throw bad(`dp.clip must be > 0, got ${o.dp.clip}`);
    const z = o.dp.noiseMultiplier;
    if (!(Number.isFinite(z) && z >= MIN_NOISE_MULTIPLIER)) {
      // The sampler's support ends at |Z| ≈ 41.5 (gaussian.ts); at z ≥ 0.5 that costs < 1e-330 of δ per step.
      throw new FedtwinError('MODELS_NOISE_TOO_SMALL', `dp.noiseMultiplier must be a number ≥ ${MIN_NOISE_MULTIPLIER}, got ${z}`, {
        hint: `set the noise multiplier to at least ${MIN_NOISE_MULTIPLIER}, or lower the ε target it was calibrated from (z < ${MIN_NOISE_MULTIPLIER} means an ε too large to defend)`,
        details: { noiseMultiplier: z, min: MIN_NOISE_MULTIPLIER },
      });
    }
    isSeeded(o.dp);
    const p = o.dp.population;
    if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 2 ** 40)) {
      throw new FedtwinError('MODELS_DP_INCONSISTENT', `dp.population must be an integer in [1, 2^40], got ${p}`, { hint: 'pass the public (DP) count the accountant used for q, e.g. the node\'s count estimate', details: { population: p } });
    }
  }
}

/**
 * DP-SGD's q and the public divisor of the noisy sum, from the public population when given (else the private
 * count `own`, which the caller then treats as public). A caller's accounted q that differs is refused: the
 * accountant would charge another mechanism than the one that runs.
 */
export function dpPlan(batchSize: number, dp: Pick<DpTrainOptions, 'population' | 'sampleRate'>, own: number): { sampleRate: number; expectedBatch: number } {
  const population = dp.population ?? own;
  const sampleRate = dpSampleRate(batchSize, population);
  if (dp.sampleRate !== undefined && dp.sampleRate !== sampleRate) {
    throw new FedtwinError('MODELS_DP_INCONSISTENT', `dp.sampleRate = ${dp.sampleRate} is not min(1, batchSize / population) = ${sampleRate} (batchSize ${batchSize}, population ${population})`, {
      hint: 'compute q with dpSampleRate(batchSize, population) from the same public population you pass as dp.population',
      details: { sampleRate: dp.sampleRate, expected: sampleRate, batchSize, population },
    });
  }
  // q·population = min(batchSize, population): public whenever the population is.
  return { sampleRate, expectedBatch: Math.min(batchSize, population) };
}

function ensureOptimizer(core: VaeCore, lr: number): FlatAdam {
  if (core.optimizer === null || core.optimizer.learningRate !== lr) {
    core.optimizer?.dispose();
    core.optimizer = createFlatAdam(core.vars, lr);
  }
  return core.optimizer;
}

/** Copy rows `idx[from..to)` into batch buffers (x, one-hot y) and draw eps. */
function fillBatch(core: VaeCore, data: EncodedTable, idx: ArrayLike<number>, from: number, to: number, rng: Rng,
  xb: Float32Array, yb: Float32Array, eb: Float32Array): number {
  const W = core.width, C = core.classCount, Z = core.latentDim;
  const m = to - from;
  yb.fill(0, 0, m * C);
  for (let i = 0; i < m; i++) {
    const r = idx[from + i];
    xb.set(data.x.subarray(r * W, (r + 1) * W), i * W);
    yb[i * C + data.cond[r]] = 1;
  }
  for (let i = 0; i < m * Z; i++) eb[i] = rng.normal();
  return m;
}

/** `isDisposed` is polled after each epoch's yield: dispose() may run while training awaits. */
export async function runTraining(core: VaeCore, data: EncodedTable, opts: TrainOptions, isDisposed: () => boolean = () => false, probe?: TrainingProbe): Promise<TrainResult> {
  checkOptions(opts);
  const opt = ensureOptimizer(core, opts.learningRate);
  const W = core.width, C = core.classCount, Z = core.latentDim;
  const N = data.rows;
  const dp = opts.dp;
  const units = dp?.units ? groupUnits(dp.units, N) : undefined;
  const population = units?.count ?? N; // what Poisson sampling draws: units, or rows (private)
  if (dp && units) dpSampleRate(opts.batchSize, N, units.count); // checks the unit count
  // q and the divisor come from the public population (dp.population), never from the private count when one is given.
  const planned = dp ? dpPlan(opts.batchSize, dp, population) : undefined;
  const q = planned?.sampleRate;
  const seeded = dp ? isSeeded(dp) : false;
  const osCoins = dp && !seeded ? osUniforms() : undefined;
  // With Poisson sampling a batch can exceed its expectation; cap the buffers well above it.
  let cap = dp && !units ? Math.min(N, Math.ceil(opts.batchSize + 6 * Math.sqrt(opts.batchSize) + 16)) : Math.min(N, opts.batchSize);
  let xb = new Float32Array(cap * W), yb = new Float32Array(cap * C), eb = new Float32Array(cap * Z);
  const losses: number[] = [];
  let steps = 0, examples = 0;

  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const rng = createRng(deriveSeed(opts.seed, epoch));
    const costs: tf.Scalar[] = [];
    let epochExamples = 0;
    if (!dp) {
      const order = rng.shuffle(Int32Array.from({ length: N }, (_, i) => i));
      for (let from = 0; from < N; from += opts.batchSize) {
        const m = fillBatch(core, data, order, from, Math.min(N, from + opts.batchSize), rng, xb, yb, eb);
        const { grads, lossSum } = tf.tidy(() => {
          const x = tf.tensor2d(xb.subarray(0, m * W), [m, W]);
          const y = tf.tensor2d(yb.subarray(0, m * C), [m, C]);
          const e = tf.tensor2d(eb.subarray(0, m * Z), [m, Z]);
          // Gradient of the batch-mean loss (scale 1/m); explicit backward, see vae-grad.ts.
          const fb = forwardBackward(core, x, y, e, 1 / m);
          return { grads: paramGrads(core, fb), lossSum: fb.lossSum };
        });
        opt.applyGradients(grads);
        tf.dispose(Object.values(grads));
        costs.push(lossSum);
        steps++; epochExamples += m;
      }
    } else {
      // One "epoch" of DP-SGD = round(1/q) steps, each on an independent Poisson sample.
      const stepsPerEpoch = Math.max(1, Math.round(1 / q!));
      const coins = osCoins ?? seededUniforms(rng);
      const u = new Float64Array(population), picked = new Int32Array(N), groups = new Int32Array(N + 1);
      const noise = seeded ? seededNoise(rng) : secureNoise(core.vars.reduce((a, v) => a + v.size, 0));
      for (let s = 0; s < stepsPerEpoch; s++) {
        const { rows: m, groups: g } = poissonSample(coins.fill(u), q!, units, picked, groups);
        probe?.onSample?.(picked.subarray(0, m));
        if (m > cap) {
          xb = new Float32Array(m * W); yb = new Float32Array(m * C); eb = new Float32Array(m * Z);
          cap = m;
        }
        fillBatch(core, data, picked, 0, m, rng, xb, yb, eb);
        const lossSum = dpSgdStep(core, opt, {
          x: xb.subarray(0, m * W), y: yb.subarray(0, m * C), eps: eb.subarray(0, m * Z), rows: m,
        }, {
          clip: dp.clip, noiseMultiplier: dp.noiseMultiplier, expectedBatch: planned!.expectedBatch, noise,
          ...(units ? { groups: groups.subarray(0, g + 1) } : {}),
        });
        costs.push(lossSum);
        steps++; epochExamples += m;
      }
    }
    const total = tf.tidy(() => (costs.length ? tf.addN(costs) : tf.scalar(0)));
    const loss = (total.dataSync()[0] ?? NaN) / Math.max(1, epochExamples);
    total.dispose();
    for (const c of costs) c.dispose();
    losses.push(loss);
    examples += epochExamples;
    opts.onEpoch?.(epoch, loss);
    // Let a daemon's event loop breathe between epochs.
    await new Promise<void>((r) => setImmediate(r));
    if (isDisposed()) {
      throw new FedtwinError('MODELS_DISPOSED', `the model was disposed during training (after epoch ${epoch + 1})`, { hint: 'do not dispose a model while trainEpochs runs' });
    }
  }
  return q === undefined ? { losses, steps, examples } : { losses, steps, examples, sampleRate: q };
}
