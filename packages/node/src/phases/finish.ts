// Finish: once the federation is over, generate the synthetic records (if asked), save the model they come from
// (model.json: beside them, or beside the state directory; for `fedtwin generate`) and write result.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join as joinPath } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { createPrng, decodeRows, tableToCsv, vaeGenerator, vaeState, type Generator, type SavedPrivacy, type Table } from '@fedtwin/models';
import { applyCalibration, fitCalibration, releasedColumns, type CalibrationMap } from '@fedtwin/marginals';
import type { NodeRunResult, SyntheticOutput } from '../api.ts';
import type { NodeContext } from '../context.ts';
import { modelPart, vaeOf, vaeReleaseOf } from '../member-model.ts';
import { releasedGenerator, sampleRelease } from '../marginals/release.ts';
import { openBudgets, releaseUsesPrivateLayers } from '../privacy.ts';
import { spentSummary } from '../util.ts';
import { dpOn } from './encode.ts';
import { genesisPrivateWeights } from './join.ts';

/** The saved model's file: `model.json` beside the synthetic CSV, or beside the state directory without one. */
export function modelPathFor(init: { dataDir: string; synthetic?: SyntheticOutput | undefined }): string {
  return joinPath(dirname(init.synthetic ? init.synthetic.out : init.dataDir), 'model.json');
}

/**
 * Generates synthetic records from the final global model and, where its DP covers them, this site's private
 * layers (releaseUsesPrivateLayers) — or, for the marginals generator, from the tree fitted to the released
 * counts — and writes them; returns how many rows.
 */
export async function writeSynthetic(ctx: NodeContext, synthetic: SyntheticOutput): Promise<number> {
  if (ctx.model.kind === 'marginals') return writeMarginalsSynthetic(ctx, synthetic);
  const { init } = ctx;
  const vae = vaeOf(ctx.model);
  vae.setSharedWeights(modelPart(ctx.model, ctx.global));
  const trainedPrivate = releaseUsesPrivateLayers(ctx.privacy.policy.mode) ? undefined : useGenesisPrivateLayers(ctx);
  const calibration = columnCalibration(ctx);
  const mix = syntheticClassMix(ctx.data.classes, ctx.data.cond, {
    operator: synthetic.classProbs, consortium: ctx.consortium.manifest.training.classMix, released: calibration?.classMix, dp: dpOn(ctx.privacy.policy.mode),
  });
  let table: Table;
  try {
    const gen = vae.generate(synthetic.rows, { classProbs: mix.probs, seed: (init.seed ?? 1) + 7 });
    table = { schema: ctx.schema, rows: decodeRows(ctx.schema, gen.x, gen.cond) };
  } finally {
    if (trainedPrivate) vae.setPrivateWeights(trainedPrivate);
  }
  if (calibration) table = applyCalibration(table, vaeReleaseOf(ctx.model)!.release.fine, calibration.map, uniformFor(init.seed));
  await mkdir(dirname(synthetic.out), { recursive: true });
  await writeFile(synthetic.out, tableToCsv(table));
  ctx.log.info({ event: 'synthetic-written', rows: table.rows.length, out: synthetic.out, classMix: mix.source, calibrated: calibration ? calibration.map.columns.length : 0 },
    `wrote ${table.rows.length} synthetic records to ${synthetic.out} (class mix: ${mix.source}${calibration ? `; ${calibration.map.columns.length} numeric column(s) calibrated to the released counts` : ''})`);
  return table.rows.length;
}

/** Rows of the VAE's own sample a calibration map is fitted on (its knots are quantiles of it). */
const REFERENCE_ROWS = 20_000;
const calibrations = new WeakMap<NodeContext, { map: CalibrationMap; classMix: number[] }>();

/**
 * A calibrating VAE consortium's map from the VAE's columns onto the released 1-way counts, and the released class mix
 * (undefined without model.calibrate). Fitted once, on a reference sample drawn at the released class mix from the
 * final global weights and the trained private layers (a calibrating consortium is never site-level: vaeModel refuses
 * it). Post-processing of two DP releases: no ε. The same map serves the CSV and model.json.
 */
function columnCalibration(ctx: NodeContext): { map: CalibrationMap; classMix: number[] } | undefined {
  const r = vaeReleaseOf(ctx.model);
  if (!r) return undefined;
  const cached = calibrations.get(ctx);
  if (cached) return cached;
  const released = releasedColumns(r.release, ctx.global.subarray(r.offset));
  const vae = vaeOf(ctx.model);
  vae.setSharedWeights(modelPart(ctx.model, ctx.global));
  const gen = vae.generate(REFERENCE_ROWS, { classProbs: released.classMix, seed: (ctx.init.seed ?? 1) + 11 });
  const reference: Table = { schema: ctx.schema, rows: decodeRows(ctx.schema, gen.x, gen.cond) };
  const out = { map: fitCalibration(reference, r.release.fine, released.oneWays, r.release.fineBins), classMix: released.classMix };
  calibrations.set(ctx, out);
  return out;
}

/** The calibration's tie-breaking draws: post-processing, seeded for reproducible twins. */
function uniformFor(seed: number | undefined): () => number {
  const rng = createPrng(((seed ?? 1) * 7919 + 3) >>> 0);
  return () => rng.next();
}

async function writeMarginalsSynthetic(ctx: NodeContext, synthetic: SyntheticOutput): Promise<number> {
  if (ctx.model.kind !== 'marginals') throw new FedtwinError('NODE_MODEL_MISMATCH', 'not a marginals consortium');
  const g = releasedGenerator(ctx.model.marginals, ctx.global);
  const classes = g.describe().classes;
  const declared = synthetic.classProbs ?? ctx.consortium.manifest.training.classMix;
  const probs = declared ? syntheticClassMix(classes, [], { operator: synthetic.classProbs, consortium: ctx.consortium.manifest.training.classMix, dp: true }).probs : undefined;
  const table = sampleRelease(g, synthetic.rows, (ctx.init.seed ?? 1) + 7, probs);
  await mkdir(dirname(synthetic.out), { recursive: true });
  await writeFile(synthetic.out, tableToCsv({ schema: ctx.schema, rows: table.rows }));
  const source = declared ? (synthetic.classProbs ? 'operator' : 'consortium') : 'released-counts';
  ctx.log.info({ event: 'synthetic-written', rows: table.rows.length, out: synthetic.out, classMix: source, generator: 'marginals' }, `wrote ${table.rows.length} synthetic records to ${synthetic.out} (marginals generator; class mix: ${source})`);
  return table.rows.length;
}

/**
 * model.json: the generator this member releases from — the VAE with the final global weights and its private
 * layers as released (their seeded start under site-level DP), or the tree fitted to the released counts — with
 * the schema and the ε this member spent. `fedtwin generate` samples more from it at no further privacy cost.
 */
export async function saveReleasedModel(ctx: NodeContext, path: string): Promise<void> {
  let g: Generator;
  if (ctx.model.kind === 'marginals') g = releasedGenerator(ctx.model.marginals, ctx.global);
  else {
    if (ctx.join.model.kind !== 'vae') throw new FedtwinError('NODE_MODEL_MISMATCH', 'the member holds a VAE, the consortium names another generator');
    const priv = releaseUsesPrivateLayers(ctx.privacy.policy.mode) ? vaeOf(ctx.model).getPrivateWeights() : genesisPrivateWeights(ctx.join, ctx.data);
    const calibration = columnCalibration(ctx);
    g = vaeGenerator(ctx.schema, vaeState(ctx.join.model, modelPart(ctx.model, ctx.global), priv, calibration));
  }
  try {
    await saveModel(ctx, g, path);
  } finally {
    g.dispose();
  }
}

async function saveModel(ctx: NodeContext, g: Generator, path: string): Promise<void> {
  const mode = ctx.privacy.policy.mode;
  const main = ctx.privacy.budgets.record ?? ctx.privacy.budgets.site;
  const privacy: SavedPrivacy = { mode, epsilon: mode === 'off' || !main ? null : main.spent().epsilon, delta: mode === 'off' || !main ? null : main.delta };
  await mkdir(dirname(path), { recursive: true });
  const saved = g.save(privacy, { consortium: ctx.join.consortium, member: ctx.host.peerId, version: ctx.state.version, modelVersion: ctx.state.base ?? null });
  await writeFile(path, `${JSON.stringify(saved)}\n`, { mode: 0o600 });
  ctx.log.info({ event: 'model-saved', out: path, generator: g.kind }, `saved the ${g.kind} model to ${path} (fedtwin generate --model ${path} … samples more, at no further privacy cost)`);
}

/**
 * Site-level DP only: the private layers trained on the site's records without DP, so the release is made
 * from the shared layers alone, the private ones set to their seeded initial values (identical on every
 * member, independent of any record; for the default split the zero adapter, i.e. exactly the global model).
 * Returns the trained private weights, to put back afterwards.
 */
function useGenesisPrivateLayers(ctx: NodeContext): Float32Array {
  const vae = vaeOf(ctx.model);
  const trained = vae.getPrivateWeights();
  vae.setPrivateWeights(genesisPrivateWeights(ctx.join, ctx.data));
  const other = vae.privateLayers.filter((l) => l !== 'site.adapter');
  if (other.length > 0) {
    ctx.log.warn({ event: 'synthetic-shared-only', layers: other }, `site-level DP: the synthetic records come from the shared layers only; the private layers ${other.join(', ')} are at their untrained initial values in them`);
  }
  return trained;
}

export function runResult(ctx: NodeContext, syntheticRows: number): NodeRunResult {
  const { state } = ctx;
  return { version: state.version, hash: state.hash, contributions: state.contributions.length, losses: state.losses, syntheticRows };
}

/** result.json: the run's result with the contributions, the privacy spent (from the persisted budgets), bytes moved. */
export async function writeResult(ctx: NodeContext, resultPath: string, result: NodeRunResult): Promise<void> {
  const { init, join, state } = ctx;
  await mkdir(dirname(resultPath), { recursive: true });
  await writeFile(resultPath, JSON.stringify({ peerId: ctx.host.peerId, modelValues: join.modelValues, ...result, contributionsDetail: state.contributions, privacy: { mode: join.privacy.mode, spent: spentSummary(openBudgets(state.privacy, join.privacy, init.privacy ?? {})), refused: state.privacy?.refused ?? null }, bytes: init.bytes?.(), backend: init.backend, nodeVersion: process.version }, null, 2));
}

/** Where a synthetic CSV's class mix came from (logged with it). */
export type ClassMixSource = 'operator' | 'consortium' | 'uniform' | 'site-labels' | 'released-counts';

/**
 * The class mix of this site's synthetic records, in `classes` order, and where it came from. First the mix this
 * member's operator declares (`synthetic.classProbs`), then the consortium's (manifest `training.classMix`): both
 * are public choices and cost no privacy. Then the pooled mix the consortium released under DP (`released`: a
 * calibrating VAE consortium's class counts), already paid for. Otherwise, under DP, the uniform mix: the site's label
 * frequencies are a histogram of its records, and releasing them exactly (they drive the CSV's class counts) is an
 * unaccounted release. Only with DP off does the mix default to those frequencies.
 */
export function syntheticClassMix(classes: readonly string[], cond: ArrayLike<number>, opts: { operator?: Record<string, number> | undefined; consortium?: Record<string, number> | undefined; released?: number[] | undefined; dp: boolean }): { probs: number[]; source: ClassMixSource } {
  if (opts.operator) return { probs: declaredMix(classes, opts.operator, 'CONFIG_INVALID', 'this node\'s synthetic.classProbs'), source: 'operator' };
  if (opts.consortium) return { probs: declaredMix(classes, opts.consortium, 'CONSORTIUM_INVALID', 'the consortium manifest\'s training.classMix'), source: 'consortium' };
  if (opts.released) return { probs: opts.released, source: 'released-counts' };
  if (opts.dp) return { probs: classes.map(() => 1 / classes.length), source: 'uniform' };
  const counts = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < cond.length; i++) counts[cond[i]!]!++;
  return { probs: counts.map((c) => c / Math.max(1, cond.length)), source: 'site-labels' };
}

/** A declared mix over the target's categories, normalised; a name that is not a category is a typo, not a zero. */
function declaredMix(classes: readonly string[], declared: Record<string, number>, code: string, where: string): number[] {
  const unknown = Object.keys(declared).filter((k) => !classes.includes(k));
  const hint = `name the target's categories: ${classes.join(', ')}`;
  if (unknown.length) throw new FedtwinError(code, `${where} names ${unknown.map((k) => `"${k}"`).join(', ')}, not a category of the target`, { hint });
  const p = classes.map((c) => declared[c] ?? 0);
  if (p.some((x) => !(x >= 0) || !Number.isFinite(x))) throw new FedtwinError(code, `${where} gives a class a weight that is not a finite number ≥ 0`, { hint });
  const s = p.reduce((a, b) => a + b, 0);
  if (!(s > 0)) throw new FedtwinError(code, `${where} gives no class a positive weight`, { hint });
  return p.map((x) => x / s);
}
