// fedtwin generate: more synthetic rows from a saved model (model.json, written by a node or `fedtwin sim`),
// for a chosen class or category, without retraining. Sampling a DP model is post-processing: it spends no ε,
// and the guarantee stays the one the model was released under (recorded in the file).
import { createWriteStream } from 'node:fs';
import { readFile, stat, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { FedtwinError } from '@fedtwin/errors';
import type { Condition, SavedModel } from '@fedtwin/models';

/** Largest model file read (a VAE's weights or a tree's tables are far smaller). */
export const MAX_MODEL_FILE_BYTES = 256 * 1024 * 1024;
/** Rows sampled (and written) per step: bounds memory for any --rows. */
const CHUNK_ROWS = 100_000;

export interface GenerateRequest {
  model: string;
  rows: number;
  out: string;
  condition?: Condition;
  seed?: number;
}

export interface GenerateSummary {
  model: string;
  generator: SavedModel['generator'];
  rows: number;
  out: string;
  condition: Condition | null;
  privacy: SavedModel['privacy'];
  /** Always 0: sampling is post-processing. */
  extraEpsilon: 0;
}

/** `--condition COL=VALUE` (the value may contain '='); `--class VALUE` is the target column. */
export function parseCondition(opts: { class?: string; condition?: string }): { column?: string; value: string } | undefined {
  if (opts.class !== undefined && opts.condition !== undefined) {
    throw new FedtwinError('CLI_BAD_ARGUMENT', 'give --class or --condition, not both', { hint: '--class VALUE pins the target column; --condition COL=VALUE any categorical column' });
  }
  if (opts.class !== undefined) return { value: opts.class };
  if (opts.condition === undefined) return undefined;
  const eq = opts.condition.indexOf('=');
  if (eq <= 0) throw new FedtwinError('CLI_BAD_ARGUMENT', `--condition must be COL=VALUE, got "${opts.condition}"`, { hint: 'e.g. --condition diagnosis=M' });
  return { column: opts.condition.slice(0, eq), value: opts.condition.slice(eq + 1) };
}

/** --rows: a whole number in [1, MAX_SAMPLE_ROWS] (GENERATE_BAD_ROWS otherwise). */
export function parseRows(v: string, max: number): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new FedtwinError('GENERATE_BAD_ROWS', `--rows must be a whole number from 1 to ${max}, got "${v}"`, { hint: 'e.g. --rows 1000' });
  }
  return n;
}

async function readModelJson(path: string): Promise<unknown> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new FedtwinError('GENERATE_MODEL_UNREADABLE', `cannot read the model file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'pass --model with the model.json a node or `fedtwin sim` wrote (out/sim/nodes/<i>/model.json)', cause: err });
  }
  if (size > MAX_MODEL_FILE_BYTES) throw new FedtwinError('GENERATE_BAD_MODEL', `${path} is ${size} bytes, more than a model file can be (${MAX_MODEL_FILE_BYTES})`);
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FedtwinError('GENERATE_BAD_MODEL', `${path} is not JSON: ${(err as Error).message}`, { hint: 'the file may be truncated; use the model.json a node or `fedtwin sim` wrote', cause: err });
  }
}

/** Samples `rows` rows into `out` (CSV in the model's schema: same columns and formats as the consortium's data). */
export async function generateFromModel(req: GenerateRequest): Promise<GenerateSummary> {
  const [{ openSavedModel }, { tableToCsv, initBackend }] = await Promise.all([import('@fedtwin/marginals'), import('@fedtwin/models')]);
  const json = await readModelJson(req.model);
  // The VAE runs on tfjs: its backend set up as the daemons do (the marginals model needs none).
  if ((json as { generator?: unknown } | null)?.generator === 'vae') await initBackend();
  const { saved, generator } = openSavedModel(json);
  try {
    const condition = req.condition ? { column: req.condition.column || saved.schema.target, value: req.condition.value } : undefined;
    // Validate before creating the output file: a typo leaves nothing half-written behind.
    generator.sample(1, { seed: 0, ...(condition ? { condition } : {}) });
    await mkdir(dirname(req.out), { recursive: true });
    const file = createWriteStream(req.out);
    const write = async (s: string) => { if (!file.write(s)) await once(file, 'drain'); };
    const seed = req.seed ?? ((Math.random() * 2 ** 31) >>> 0);
    let header = true;
    for (let done = 0, k = 0; done < req.rows; k++) {
      const n = Math.min(CHUNK_ROWS, req.rows - done);
      const t = generator.sample(n, { seed: (seed + k * 1_000_003) % 2 ** 31, ...(condition ? { condition } : {}) });
      const csv = tableToCsv(t);
      await write(header ? csv : csv.slice(csv.indexOf('\n') + 1));
      header = false;
      done += n;
    }
    file.end();
    await once(file, 'finish');
    return { model: req.model, generator: saved.generator, rows: req.rows, out: req.out, condition: condition ?? null, privacy: saved.privacy, extraEpsilon: 0 };
  } finally {
    generator.dispose();
  }
}
