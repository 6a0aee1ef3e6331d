// Finish: once the federation is over, generate the synthetic records (if asked) and write result.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { decodeRows, toCsv, type EncodedTable } from '@fedtwin/models';
import type { NodeRunResult, SyntheticOutput } from '../api.ts';
import type { NodeContext } from '../context.ts';
import { openBudgets } from '../privacy.ts';
import { spentSummary } from '../util.ts';

/** Generates synthetic records from the final global model and this site's private sub-model; returns how many. */
export async function writeSynthetic(ctx: NodeContext, synthetic: SyntheticOutput): Promise<number> {
  const { vae, init } = ctx;
  vae.setSharedWeights(ctx.global);
  const probs = classProbabilities(ctx.data, synthetic.classProbs);
  const gen = vae.generate(synthetic.rows, { classProbs: probs, seed: (init.seed ?? 1) + 7 });
  const synthRows = decodeRows(ctx.schema, gen.x, gen.cond);
  await mkdir(dirname(synthetic.out), { recursive: true });
  await writeFile(synthetic.out, toCsv(ctx.schema.columns.map((c) => c.name), synthRows));
  ctx.log.info({ event: 'synthetic-written', rows: synthRows.length, out: synthetic.out }, `wrote ${synthRows.length} synthetic records to ${synthetic.out}`);
  return synthRows.length;
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
