// Finish: once the federation is over, generate the synthetic records (if asked) and write result.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { decodeRows, toCsv } from '@fedtwin/models';
import type { NodeRunResult, SyntheticOutput } from '../api.ts';
import type { NodeContext } from '../context.ts';
import { openBudgets, releaseUsesPrivateLayers } from '../privacy.ts';
import { spentSummary } from '../util.ts';
import { dpOn } from './encode.ts';
import { genesisPrivateWeights } from './join.ts';

/**
 * Generates synthetic records from the final global model and, where its DP covers them, this site's private
 * layers (releaseUsesPrivateLayers); returns how many.
 */
export async function writeSynthetic(ctx: NodeContext, synthetic: SyntheticOutput): Promise<number> {
  const { vae, init } = ctx;
  vae.setSharedWeights(ctx.global);
  const trainedPrivate = releaseUsesPrivateLayers(ctx.privacy.policy.mode) ? undefined : useGenesisPrivateLayers(ctx);
  const mix = syntheticClassMix(ctx.data.classes, ctx.data.cond, {
    operator: synthetic.classProbs, consortium: ctx.consortium.manifest.training.classMix, dp: dpOn(ctx.privacy.policy.mode),
  });
  let gen: ReturnType<typeof vae.generate>;
  try {
    gen = vae.generate(synthetic.rows, { classProbs: mix.probs, seed: (init.seed ?? 1) + 7 });
  } finally {
    if (trainedPrivate) vae.setPrivateWeights(trainedPrivate);
  }
  const synthRows = decodeRows(ctx.schema, gen.x, gen.cond);
  await mkdir(dirname(synthetic.out), { recursive: true });
  await writeFile(synthetic.out, toCsv(ctx.schema.columns.map((c) => c.name), synthRows));
  ctx.log.info({ event: 'synthetic-written', rows: synthRows.length, out: synthetic.out, classMix: mix.source }, `wrote ${synthRows.length} synthetic records to ${synthetic.out} (class mix: ${mix.source})`);
  return synthRows.length;
}

/**
 * Site-level DP only: the private layers trained on the site's records without DP, so the release is made
 * from the shared layers alone, the private ones set to their seeded initial values (identical on every
 * member, independent of any record; for the default split the zero adapter, i.e. exactly the global model).
 * Returns the trained private weights, to put back afterwards.
 */
function useGenesisPrivateLayers(ctx: NodeContext): Float32Array {
  const trained = ctx.vae.getPrivateWeights();
  ctx.vae.setPrivateWeights(genesisPrivateWeights(ctx.join, ctx.data));
  const other = ctx.vae.privateLayers.filter((l) => l !== 'site.adapter');
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
export type ClassMixSource = 'operator' | 'consortium' | 'uniform' | 'site-labels';

/**
 * The class mix of this site's synthetic records, in `classes` order, and where it came from. First the mix this
 * member's operator declares (`synthetic.classProbs`), then the consortium's (manifest `training.classMix`): both
 * are public choices and cost no privacy. Otherwise, under DP, the uniform mix: the site's label frequencies are a
 * histogram of its records, and releasing them exactly (they drive the CSV's class counts) is an unaccounted
 * release. Only with DP off does the mix default to those frequencies.
 */
export function syntheticClassMix(classes: readonly string[], cond: ArrayLike<number>, opts: { operator?: Record<string, number> | undefined; consortium?: Record<string, number> | undefined; dp: boolean }): { probs: number[]; source: ClassMixSource } {
  if (opts.operator) return { probs: declaredMix(classes, opts.operator, 'CONFIG_INVALID', 'this node\'s synthetic.classProbs'), source: 'operator' };
  if (opts.consortium) return { probs: declaredMix(classes, opts.consortium, 'CONSORTIUM_INVALID', 'the consortium manifest\'s training.classMix'), source: 'consortium' };
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
