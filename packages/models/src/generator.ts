// The Generator interface (issue 14 item 1): a fitted synthetic-data model that samples rows in the
// schema's formats, saves to a self-describing JSON file and says what it is. Two kinds: `vae` (this
// package, the DP-SGD twin) and `marginals` (@fedtwin/marginals, federated MST). How each is *fitted*
// differs too much to share one method (DP-SGD epochs on model deltas vs three rounds of count vectors):
// a member runs the kind's federated rounds (packages/node) and ends with a Generator. Sampling is
// post-processing of a DP release: it costs no ε, and a seeded stream is fine.
import { FedtwinError } from '@fedtwin/errors';
import { decodeRows, encodedLayout } from './encode.ts';
import { createTwinVae, type TwinVae } from './vae.ts';
import { validateSchema, targetIndex } from './schema.ts';
import type { Table, TableSchema } from './types.ts';

export type GeneratorKind = 'vae' | 'marginals';
export const GENERATOR_KINDS: readonly GeneratorKind[] = ['vae', 'marginals'];

/** Format tag of a saved model file (`model.json`). */
export const SAVED_MODEL_FORMAT = 'fedtwin-model';
/** The most rows one sample call (and `fedtwin generate`) produces. */
export const MAX_SAMPLE_ROWS = 10_000_000;

/** What a saved model records about the privacy of the release it came from. */
export interface SavedPrivacy {
  /** The consortium's DP mode ('off': no guarantee). */
  mode: 'off' | 'record' | 'site' | 'both';
  /** ε the member that saved it had spent (null: DP off), at `delta`. */
  epsilon: number | null;
  delta: number | null;
}

/** model.json: everything needed to sample again later, and where it came from. */
export interface SavedModel {
  format: typeof SAVED_MODEL_FORMAT;
  version: 1;
  generator: GeneratorKind;
  schema: TableSchema;
  privacy: SavedPrivacy;
  createdAt: string;
  /** Provenance (free-form, e.g. consortium, member peer id, rounds). */
  source?: Record<string, unknown>;
  /** The kind's own state: VaeState for 'vae', a TreeModel for 'marginals'. */
  model: unknown;
}

/** Condition a sample on one categorical column (the target: a class) taking one value. */
export interface Condition {
  column: string;
  value: string;
}

export interface SampleOptions {
  /** Seed of the sampling stream (post-processing, so seeding costs no privacy). Default: random. */
  seed?: number;
  condition?: Condition;
}

export interface GeneratorDescription {
  kind: GeneratorKind;
  columns: number;
  target: string;
  classes: string[];
  /** Columns a sample can be conditioned on (categorical ones). */
  conditionable: string[];
  details: Record<string, unknown>;
}

export interface Generator {
  readonly kind: GeneratorKind;
  readonly schema: TableSchema;
  /** `rows` rows with the schema's columns and formats; with `condition`, every row has that value. */
  sample(rows: number, opts?: SampleOptions): Table;
  describe(): GeneratorDescription;
  save(privacy: SavedPrivacy, source?: Record<string, unknown>): SavedModel;
  dispose(): void;
}

/**
 * Fitting from federated rounds of summed vectors (what a member runs, packages/node): each round a member
 * contributes its exact statistics for the request the earlier releases imply, the consortium sums them (with
 * noise, under encryption), and the generator is a function of the released sums. The marginals generator
 * implements it (`marginalsFit`); the VAE's federated fit is DP-SGD between model averages (the node's training
 * phase: clipping, HE masks prepared while it trains), not sums of statistics, so it does not.
 */
export interface FederatedFit {
  readonly kind: GeneratorKind;
  /** Measurement rounds. */
  readonly rounds: number;
  /** Length of the summed vector (every round's update has this many values). */
  readonly values: number;
  /**
   * A member's exact contribution to `round` given the sums released so far (zeros where none yet): the values
   * for `[offset, offset + values.length)`, the noise the sum must carry per cell (σ; 0 without DP) and the
   * mechanism to account ({ sampleRate: 1, noiseMultiplier: σ/Δ, steps }; undefined without DP).
   */
  contribution(round: number, released: ArrayLike<number>, table: Table): {
    values: Float64Array; offset: number; sigma: number;
    mechanism: { sampleRate: number; noiseMultiplier: number; steps: number } | undefined;
    /** Request size, for the member's own log. */
    marginals: number; cells: number;
  };
  /** The generator fitted to the released sums: post-processing, no ε. */
  finish(released: ArrayLike<number>): Generator;
}

// --- shared checks ---------------------------------------------------------------------------------

/** rows must be an integer in [1, MAX_SAMPLE_ROWS]: GENERATE_BAD_ROWS. */
export function checkSampleRows(rows: number): void {
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_SAMPLE_ROWS) {
    throw new FedtwinError('GENERATE_BAD_ROWS', `rows must be a whole number from 1 to ${MAX_SAMPLE_ROWS}, got ${rows}`, { hint: 'e.g. --rows 1000' });
  }
}

/**
 * The column index and category index a condition names: GENERATE_UNKNOWN_COLUMN, GENERATE_BAD_CONDITION
 * (a numeric column: only categories can be pinned), GENERATE_UNKNOWN_VALUE.
 */
export function resolveCondition(schema: TableSchema, cond: Condition): { column: number; category: number } {
  const k = schema.columns.findIndex((c) => c.name === cond.column);
  if (k < 0) {
    throw new FedtwinError('GENERATE_UNKNOWN_COLUMN', `the model has no column "${cond.column}"`, { hint: `columns: ${schema.columns.map((c) => c.name).join(', ')}`, details: { column: cond.column } });
  }
  const c = schema.columns[k]!;
  if (c.kind !== 'categorical') {
    throw new FedtwinError('GENERATE_BAD_CONDITION', `column "${c.name}" is numeric: only a categorical column can be conditioned on a value`, { hint: `categorical columns: ${schema.columns.filter((x) => x.kind === 'categorical').map((x) => x.name).join(', ')}` });
  }
  const v = c.categories.indexOf(cond.value);
  if (v < 0) {
    throw new FedtwinError('GENERATE_UNKNOWN_VALUE', `"${cond.value}" is not a category of column "${c.name}"`, { hint: `its categories: ${c.categories.join(', ')}`, details: { column: c.name, value: cond.value } });
  }
  return { column: k, category: v };
}

export function describeSchema(schema: TableSchema): Omit<GeneratorDescription, 'kind' | 'details'> {
  const t = schema.columns[targetIndex(schema)]!;
  return {
    columns: schema.columns.length, target: schema.target,
    classes: t.kind === 'categorical' ? [...t.categories] : [],
    conditionable: schema.columns.filter((c) => c.kind === 'categorical').map((c) => c.name),
  };
}

/**
 * Rows matching `cond` by rejection: draws batches from `draw` until `rows` match. A value the model gives
 * (almost) no mass cannot be produced this way: after `maxDraws` candidates GENERATE_CONDITION_TOO_RARE.
 */
export function rejectionSample(rows: number, column: number, value: string, draw: (n: number, round: number) => Table['rows'], maxDraws = Math.max(100_000, 200 * rows)): Table['rows'] {
  const out: Table['rows'] = [];
  let drawn = 0;
  for (let round = 0; out.length < rows; round++) {
    if (drawn >= maxDraws) {
      throw new FedtwinError('GENERATE_CONDITION_TOO_RARE', `only ${out.length} of ${drawn} sampled rows had ${value} in that column; stopped after ${maxDraws} draws`, { hint: 'the model gives this value very little mass; ask for fewer rows or another value' });
    }
    const n = Math.min(maxDraws - drawn, Math.max(1024, 2 * (rows - out.length)));
    drawn += n;
    for (const r of draw(n, round)) {
      if (String(r[column]) === value) out.push(r);
      if (out.length === rows) break;
    }
  }
  return out;
}

/** Reads a saved model's header (not the kind's state): GENERATE_BAD_MODEL when it is not one. */
export function checkSavedModel(json: unknown): SavedModel {
  const m = json as Partial<SavedModel> | null;
  const badModel = (why: string) => new FedtwinError('GENERATE_BAD_MODEL', `not a fedtwin model file: ${why}`, { hint: 'use the model.json a node or `fedtwin sim` wrote (nodes/<i>/model.json)' });
  if (m === null || typeof m !== 'object') throw badModel('not a JSON object');
  if (m.format !== SAVED_MODEL_FORMAT) throw badModel(`format is ${JSON.stringify(m.format)}, expected "${SAVED_MODEL_FORMAT}"`);
  if (m.version !== 1) throw badModel(`version ${JSON.stringify(m.version)} is not supported (this fedtwin reads version 1)`);
  if (!GENERATOR_KINDS.includes(m.generator as GeneratorKind)) throw badModel(`unknown generator ${JSON.stringify(m.generator)}`);
  try {
    validateSchema(m.schema as TableSchema);
  } catch (err) {
    throw badModel(`its schema is invalid: ${(err as Error).message}`);
  }
  if (!m.privacy || typeof m.privacy !== 'object') throw badModel('it records no privacy section');
  return m as SavedModel;
}

// --- the VAE ---------------------------------------------------------------------------------------

/** The VAE's saved state: its consortium config and weights (base64 of little-endian float32). */
export interface VaeState {
  latentDim: number;
  hidden: number;
  sharedLayers?: string[];
  seed: number;
  shared: string;
  private: string;
  /**
   * A calibrating consortium's (model.calibrate) map of the numeric columns onto the released 1-way counts, applied to
   * every sample by @fedtwin/marginals' openSavedModel (its shape: marginals' CalibrationMap; opaque here).
   */
  calibration?: unknown;
  /** The released class mix (model.calibrate): the default mix of an unconditioned sample (uniform without one). */
  classMix?: number[];
}

const f32ToB64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function b64ToF32(s: string, what: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  if (b.length % 4 !== 0) throw new FedtwinError('GENERATE_BAD_MODEL', `the VAE's ${what} weights are not float32 values`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/**
 * A VAE generator from its config and weights. Class conditioning is the model's own (its condition input);
 * another categorical column is conditioned by rejection.
 */
export function vaeGenerator(schema: TableSchema, state: VaeState): Generator {
  const layout = encodedLayout(schema);
  const vae: TwinVae = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: state.latentDim, hidden: state.hidden, sharedLayers: state.sharedLayers, seed: state.seed });
  try {
    vae.setSharedWeights(b64ToF32(state.shared, 'shared'));
    vae.setPrivateWeights(b64ToF32(state.private, 'private'));
  } catch (err) {
    vae.dispose();
    if (err instanceof FedtwinError && err.code === 'GENERATE_BAD_MODEL') throw err;
    throw new FedtwinError('GENERATE_BAD_MODEL', `the VAE's weights do not fit its config and schema: ${(err as Error).message}`, { cause: err });
  }
  const t = targetIndex(schema);
  const classes = layout.classes;
  const defaultMix = state.classMix ?? classes.map(() => 1 / classes.length);
  if (defaultMix.length !== classes.length || defaultMix.some((p) => !(p >= 0) || !Number.isFinite(p)) || !(defaultMix.reduce((a, b) => a + b, 0) > 0)) {
    vae.dispose();
    throw new FedtwinError('GENERATE_BAD_MODEL', `the VAE's class mix must be ${classes.length} finite weights ≥ 0 with a positive sum`);
  }
  const draw = (n: number, seed: number, classProbs: number[]) => {
    const gen = vae.generate(n, { classProbs, seed }); // categories come out sampled (one-hot), as a node's release
    return decodeRows(schema, gen.x, gen.cond);
  };
  return {
    kind: 'vae',
    schema,
    sample(rows, opts = {}) {
      checkSampleRows(rows);
      const seed = opts.seed ?? (Math.random() * 2 ** 31) >>> 0;
      if (!opts.condition) return { schema, rows: draw(rows, seed, defaultMix) };
      const { column, category } = resolveCondition(schema, opts.condition);
      if (column === t) return { schema, rows: draw(rows, seed, classes.map((_, i) => (i === category ? 1 : 0))) };
      return { schema, rows: rejectionSample(rows, column, opts.condition.value, (n, round) => draw(n, (seed + round * 7919) % 2 ** 31, defaultMix)) };
    },
    describe: () => ({ kind: 'vae', ...describeSchema(schema), details: { latentDim: state.latentDim, hidden: state.hidden, classMix: state.classMix ? 'released counts unless conditioned' : 'uniform unless conditioned', calibrated: state.calibration !== undefined } }),
    save: (privacy, source) => ({
      format: SAVED_MODEL_FORMAT, version: 1, generator: 'vae', schema, privacy, createdAt: new Date().toISOString(), ...(source ? { source } : {}),
      model: { ...state, shared: f32ToB64(vae.getSharedWeights()), private: f32ToB64(vae.getPrivateWeights()) } satisfies VaeState,
    }),
    dispose: () => vae.dispose(),
  };
}

/** The VaeState of a model a member holds (its config, the global shared weights and its private ones). */
export function vaeState(config: { latentDim: number; hidden: number; sharedLayers?: string[]; seed: number }, shared: Float32Array, priv: Float32Array, calibration?: { map: unknown; classMix: number[] }): VaeState {
  return {
    latentDim: config.latentDim, hidden: config.hidden, ...(config.sharedLayers ? { sharedLayers: config.sharedLayers } : {}), seed: config.seed, shared: f32ToB64(shared), private: f32ToB64(priv),
    ...(calibration ? { calibration: calibration.map, classMix: calibration.classMix } : {}),
  };
}
