// `fedtwin sim --audit`: an empirical privacy audit in the loop (one run; docs/privacy-audit.md).
// Canaries go into one member's records, each with probability 1/2 by an OS CSPRNG coin; after the federation
// each canary is scored under the model that member released from, and @fedtwin/audit turns the guesses into
// ε_lower. The coins live only in this process's memory until the scoring: no node, file or baseline sees them.
import { randomInt } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { FedtwinError } from '@fedtwin/errors';
import { auditOneRun, type OneRunAudit } from '@fedtwin/audit';
import { createPrng, createTwinVae, encodeTable, type Cell, type Table, type TableSchema } from '@fedtwin/models';
import { memberCounts, roundRequest, type MstSchedule } from '@fedtwin/marginals';
// @fedtwin/models exports no per-row loss; its own DP-SGD tests reach getVaeCore the same way. Scoring with
// exactly the objective the member trained on beats a re-implementation that could drift from it.
import { getVaeCore } from '../../models/src/vae.ts';

type Row = Cell[];

export interface Canaries {
  rows: Row[];
  /** included[i]: canary i is among the member's records. */
  included: boolean[];
}

/**
 * m canaries: valid under the schema but far from any patient, so that memorising one is visible. Every numeric
 * feature sits at its declared min or max (an independent fair choice per feature: a corner of the feature box,
 * 2^features of them, so canaries are distinct and unlike each other), categorical features and the class are
 * uniform. The values come from the seed (they are public, like the attack); only the coins must be secret.
 */
export function makeCanaryRows(schema: TableSchema, m: number, seed: number): Row[] {
  const rng = createPrng(`audit-canaries-${seed}`);
  return Array.from({ length: m }, () => schema.columns.map((c) => (c.kind === 'numeric' ? (rng.int(2) === 0 ? c.min : c.max) : c.categories[rng.int(c.categories.length)]!)));
}

/**
 * m canaries for the marginals generator: every numeric feature uniform over its declared range (at its declared
 * precision), categorical features and the class uniform. Why not the VAE's corners: the generator releases binned
 * counts, and corner canaries share the 4 corner cells of every 2-way table (≈ m/8 included ones per cell), so one
 * canary's count is drowned by the others'. Uniform values over correlated features fall, on most tree edges, in a
 * cell of their own that real records leave empty: an included canary puts a 1 there, an excluded one nothing.
 */
export function makeMarginalsCanaryRows(schema: TableSchema, m: number, seed: number): Row[] {
  const rng = createPrng(`audit-canaries-marginals-${seed}`);
  return Array.from({ length: m }, () => schema.columns.map((c) => {
    if (c.kind !== 'numeric') return c.categories[rng.int(c.categories.length)]!;
    const x = c.min + rng.next() * (c.max - c.min);
    const p = 10 ** (c.integer ? 0 : c.decimals ?? 6);
    return Math.min(c.max, Math.max(c.min, Math.round(x * p) / p));
  }));
}

/**
 * Membership scores under the marginals generator's release: over the three rounds' released (noisy, summed) count
 * vectors — each column's 1-way hierarchy on the fine bins, the selection round's pairs, the tree's 2-way tables —
 * the canary's cell in each counted table, its count clamped to [0, 1], summed. The requests, bins and tree are what
 * every member derives from the release (the global it holds and fits its model from): the score is post-processing.
 * The clamp is the point: a cell real records fill (count ≫ 1) says nothing about one canary, an empty fine bin or
 * 2-way cell does — an included canary puts a 1 in it, an excluded one leaves 0. Uniform canaries land in such cells
 * on many tables, so without DP the included ones score highest on every table.
 */
export function marginalsCanaryScores(rows: Row[], schedule: MstSchedule, released: ArrayLike<number>): Float64Array {
  const scores = new Float64Array(rows.length);
  for (const round of [1, 2, 3]) {
    const req = roundRequest(schedule, round, released);
    const off = req.segment.offset;
    rows.forEach((row, i) => {
      const one = memberCounts(schedule, req, { schema: schedule.schema, rows: [row] });
      for (let j = 0; j < req.used; j++) if (one[j] !== 0) scores[i]! += one[j]! * Math.min(1, Math.max(0, released[off + j]!));
    });
  }
  return scores;
}

/** One fair OS-CSPRNG coin per canary: the Bernoulli(1/2) inclusions the one-run theorem is about. */
export function flipCoins(m: number): boolean[] {
  return Array.from({ length: m }, () => randomInt(2) === 1);
}

/** The member's records with the included canaries, in a seeded shuffled order (position says nothing). */
export function recordsWithCanaries(rows: Row[], canaries: Canaries, seed: number): Row[] {
  const out = [...rows, ...canaries.rows.filter((_, i) => canaries.included[i])];
  return createPrng(`audit-order-${seed}`).shuffle(out);
}

/** A member's final model as its dataDir/state holds it: the last global (shared) weights and its private layers. */
export async function loadMemberModel(stateDir: string): Promise<{ global: Float32Array; private: Float32Array | undefined }> {
  const { NodeStore } = await import('@fedtwin/node');
  const store = await NodeStore.open(stateDir);
  try {
    const saved = await store.load();
    if (!saved) throw new FedtwinError('SIM_AUDIT_NO_MODEL', `${stateDir} holds no model`, { hint: 'the audited member did not finish a round; see its node.log' });
    const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    return { global: f32(saved.global), private: saved.private ? f32(saved.private) : undefined };
  } finally {
    await store.close();
  }
}

/**
 * Membership scores: the negative of each canary's per-example loss (the VAE's negative ELBO, the objective
 * DP-SGD clips the gradient of) under the released model, with the latent at the posterior mean (ε = 0 in the
 * reparameterisation: no sampling noise in the score). Higher = fitted better = more likely trained on.
 * `privateWeights` undefined = the layers' seeded initial values (site-level DP releases from the shared layers).
 */
export function canaryScores(rows: Row[], schema: TableSchema, model: { latentDim: number; hidden: number; seed: number }, weights: { global: Float32Array; private: Float32Array | undefined }): Float64Array {
  const enc = encodeTable({ schema, rows } satisfies Table);
  const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, latentDim: model.latentDim, hidden: model.hidden, seed: model.seed });
  try {
    vae.setSharedWeights(weights.global.subarray(0, vae.sharedSize)); // a column release's counts follow the model (model.calibrate)
    if (weights.private) vae.setPrivateWeights(weights.private);
    const core = getVaeCore(vae);
    const loss = tf.tidy(() => {
      const y = tf.cast(tf.oneHot(tf.tensor1d(enc.cond, 'int32'), enc.classes.length), 'float32') as tf.Tensor2D;
      const x = tf.tensor2d(enc.x, [enc.rows, enc.width]);
      return core.lossPerExample(x, y, tf.zeros([enc.rows, core.latentDim]));
    });
    const values = loss.dataSync();
    loss.dispose();
    return Float64Array.from(values, (l) => -l);
  } finally {
    vae.dispose();
  }
}

/** report.json `privacy.audit`. */
export interface SimAuditReport extends OneRunAudit {
  /** The member's own ε (record-level; site-level in site mode) at `delta`; null with DP off (nothing claimed). */
  epsilonClaimed: number | null;
  /** The member that held the canaries, how many went in, and what the score was. */
  node: number;
  included: number;
  score: string;
}

export function auditReport(scores: ArrayLike<number>, canaries: Canaries, o: { delta: number; epsilonClaimed: number | null; node: number; score: string }): SimAuditReport {
  const a = auditOneRun({ scores, included: canaries.included, delta: o.delta });
  return {
    epsilonLower: a.epsilonLower, epsilonClaimed: o.epsilonClaimed, method: a.method,
    confidence: a.confidence, delta: a.delta, canaries: a.canaries, node: o.node, included: canaries.included.filter(Boolean).length,
    score: o.score, kPlus: a.kPlus, kMinus: a.kMinus, guesses: a.guesses, correct: a.correct, maxAttainable: a.maxAttainable, candidates: a.candidates,
  };
}
