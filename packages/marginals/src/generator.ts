// The `marginals` Generator (the interface is @fedtwin/models' generator.ts): a fitted tree model that
// samples, conditions on any categorical column exactly (by re-rooting the tree there), saves and loads.
// Also the loader of saved models of both kinds, since this package sees both.
import { FedtwinError } from '@fedtwin/errors';
import {
  SAVED_MODEL_FORMAT, checkSampleRows, checkSavedModel, createPrng, describeSchema, resolveCondition, vaeGenerator,
  type FederatedFit, type Generator, type SavedModel, type VaeState,
} from '@fedtwin/models';
import { MST_ROUNDS, fitReleased, memberCounts, roundRequest, type MstSchedule } from './federated.ts';
import { columnSize, domainFromSchema } from './domain.ts';
import { applyCalibration, checkCalibrationMap, type CalibrationMap } from './calibrate.ts';
import { checkTreeModel, sampleTable } from './sample.ts';
import type { TreeModel } from './fit.ts';

/**
 * The same joint distribution as `model`, as a tree rooted at `root`: each edge on the path from an old root
 * to `root` is reversed with Bayes' rule (P(parent | child) ∝ P(parent)·P(child | parent), with P(parent) the
 * model's own marginal, propagated from its root). Then `root` can be pinned to a bin and its descendants —
 * every column of its tree — follow from the conditionals: exact conditional sampling, no rejection.
 */
export function rerootTree(model: TreeModel, root: number): TreeModel {
  checkTreeModel(model);
  const d = model.domain.columns.length;
  if (!Number.isInteger(root) || root < 0 || root >= d) throw new FedtwinError('MARGINALS_BAD_ARGUMENT', `root ${root} is not a column index`);
  const size = (c: number) => columnSize(model.domain.columns[c]);
  // Marginals under the model, from its roots down.
  const marg: number[][] = new Array(d);
  for (const c of model.order) {
    const p = model.parent[c];
    if (p < 0) {
      const w = model.oneWay[c];
      const t = w.reduce((s, x) => s + Math.max(0, x), 0) || 1;
      marg[c] = w.map((x) => Math.max(0, x) / t);
      continue;
    }
    const nc = size(c);
    const np = size(p);
    const cond = model.conditional[c]!;
    const m = new Array<number>(nc).fill(0);
    for (let a = 0; a < np; a++) {
      let rowT = 0;
      for (let b = 0; b < nc; b++) rowT += Math.max(0, cond[a * nc + b]);
      if (!(rowT > 0)) continue;
      for (let b = 0; b < nc; b++) m[b] += (marg[p][a] * Math.max(0, cond[a * nc + b])) / rowT;
    }
    marg[c] = m;
  }
  // The joint of every edge (parent, child) as the model defines it.
  const joint = new Map<string, { a: number; b: number; p: number[] }>();
  const key = (x: number, y: number) => (x < y ? `${x},${y}` : `${y},${x}`);
  for (let c = 0; c < d; c++) {
    const p = model.parent[c];
    if (p < 0) continue;
    const nc = size(c);
    const np = size(p);
    const cond = model.conditional[c]!;
    const j = new Array<number>(np * nc).fill(0);
    for (let a = 0; a < np; a++) {
      let rowT = 0;
      for (let b = 0; b < nc; b++) rowT += Math.max(0, cond[a * nc + b]);
      if (!(rowT > 0)) continue;
      for (let b = 0; b < nc; b++) j[a * nc + b] = (marg[p][a] * Math.max(0, cond[a * nc + b])) / rowT;
    }
    joint.set(key(p, c), { a: p, b: c, p: j });
  }
  // Breadth first from the new root over the same undirected edges; other components keep their roots.
  const adj: number[][] = Array.from({ length: d }, () => []);
  for (let c = 0; c < d; c++) if (model.parent[c] >= 0) { adj[c].push(model.parent[c]); adj[model.parent[c]].push(c); }
  const parent = new Array<number>(d).fill(-2);
  const order: number[] = [];
  const starts = [root, ...model.order.filter((c) => model.parent[c] < 0 && c !== root)];
  for (const s of starts) {
    if (parent[s] !== -2) continue;
    parent[s] = -1;
    const queue = [s];
    while (queue.length) {
      const x = queue.shift()!;
      order.push(x);
      for (const y of adj[x]) if (parent[y] === -2) { parent[y] = x; queue.push(y); }
    }
  }
  const conditional = parent.map((p, c) => {
    if (p < 0) return null;
    const e = joint.get(key(p, c))!;
    const np = size(p);
    const nc = size(c);
    const out = new Array<number>(np * nc).fill(0);
    for (let a = 0; a < np; a++) {
      // rows: this parent's bin a; the stored joint is [e.a bin][e.b bin]
      let t = 0;
      for (let b = 0; b < nc; b++) t += e.a === p ? e.p[a * nc + b] : e.p[b * np + a];
      for (let b = 0; b < nc; b++) {
        const v = e.a === p ? e.p[a * nc + b] : e.p[b * np + a];
        out[a * nc + b] = t > 0 ? v / t : 1 / nc; // a bin the model gives no mass: never drawn as a parent
      }
    }
    return out;
  });
  const oneWay = model.oneWay.map((w, c) => (parent[c] === -1 ? marg[c] : [...w]));
  const edges = parent.flatMap((p, c): Array<[number, number]> => (p >= 0 ? [[p, c]] : []));
  return { ...model, order, parent, conditional, oneWay, edges };
}

/** A Generator over a fitted tree model. */
export function marginalsGenerator(model: TreeModel): Generator {
  checkTreeModel(model);
  const schema = model.schema;
  const rerooted = new Map<number, TreeModel>();
  return {
    kind: 'marginals',
    schema,
    sample(rows, opts = {}) {
      checkSampleRows(rows);
      const prng = createPrng(opts.seed ?? ((Math.random() * 2 ** 31) >>> 0));
      const uniform = () => prng.next();
      if (!opts.condition) return sampleTable(model, rows, uniform);
      const { column, category } = resolveCondition(schema, opts.condition);
      let m = model;
      if (model.parent[column] !== -1) {
        m = rerooted.get(column) ?? rerootTree(model, column);
        rerooted.set(column, m);
      }
      const mass = m.oneWay[column][category] ?? 0;
      if (!(mass > 0)) {
        throw new FedtwinError('GENERATE_CONDITION_TOO_RARE', `the model gives "${opts.condition.value}" in column "${opts.condition.column}" no mass: it cannot generate such rows`, { hint: 'the noisy counts put this value at zero; pick another value' });
      }
      return sampleTable(m, rows, uniform, { column, bin: category });
    },
    describe: () => ({
      kind: 'marginals', ...describeSchema(schema),
      details: { estimatedRecords: Math.round(model.total), edges: model.edges.length, coarseBins: model.domain.columns.map((c) => columnSize(c)) },
    }),
    save: (privacy, source) => ({
      format: SAVED_MODEL_FORMAT, version: 1, generator: 'marginals', schema, privacy, createdAt: new Date().toISOString(), ...(source ? { source } : {}), model,
    }),
    dispose: () => undefined,
  };
}

/** The federated fit of a schedule: three rounds of count vectors, then the tree fitted to their sums. */
export function marginalsFit(schedule: MstSchedule): FederatedFit {
  return {
    kind: 'marginals',
    rounds: MST_ROUNDS,
    values: schedule.values,
    contribution(round, released, table) {
      const req = roundRequest(schedule, round, released);
      return { values: memberCounts(schedule, req, table), offset: req.segment.offset, sigma: req.sigma, mechanism: req.mechanism, marginals: req.marginals.length, cells: req.used };
    },
    finish: (released) => marginalsGenerator(fitReleased(schedule, released)),
  };
}

/** A Generator from a saved model file's JSON (either kind): GENERATE_BAD_MODEL if it is not one. */
export function openSavedModel(json: unknown): { saved: SavedModel; generator: Generator } {
  const saved = checkSavedModel(json);
  try {
    if (saved.generator === 'marginals') {
      const model = saved.model as TreeModel;
      if (JSON.stringify(model?.schema) !== JSON.stringify(saved.schema)) throw new FedtwinError('GENERATE_BAD_MODEL', 'the tree model\'s schema differs from the file\'s');
      return { saved, generator: marginalsGenerator(model) };
    }
    const state = saved.model as VaeState;
    const g = vaeGenerator(saved.schema, state);
    if (state.calibration === undefined) return { saved, generator: g };
    try {
      return { saved, generator: calibratedGenerator(g, state.calibration as CalibrationMap) };
    } catch (err) {
      g.dispose();
      throw err;
    }
  } catch (err) {
    if (err instanceof FedtwinError && err.code === 'GENERATE_BAD_MODEL') throw err;
    throw new FedtwinError('GENERATE_BAD_MODEL', `the ${saved.generator} model in this file cannot be read: ${(err as Error).message}`, { cause: err, hint: 'the file may be truncated or edited; use the model.json a node or `fedtwin sim` wrote' });
  }
}

/**
 * A VAE generator whose every sample is moved onto the released 1-way counts by its saved map (model.calibrate): the
 * same post-processing a member applied to its synthetic CSV, with draws seeded by the sample's seed.
 */
function calibratedGenerator(g: Generator, map: CalibrationMap): Generator {
  if (typeof map !== 'object' || map === null || !Number.isInteger(map.fineBins)) throw new FedtwinError('GENERATE_BAD_MODEL', 'the VAE\'s calibration is not a calibration map (no fineBins)');
  const domain = domainFromSchema(g.schema, { bins: map.fineBins });
  checkCalibrationMap(map, domain); // now, not at the first sample (openSavedModel reports it as GENERATE_BAD_MODEL)
  return {
    ...g,
    sample(rows, opts = {}) {
      const seed = opts.seed ?? (Math.random() * 2 ** 31) >>> 0;
      const rng = createPrng(((seed * 7919) + 3) >>> 0);
      return applyCalibration(g.sample(rows, { ...opts, seed }), domain, map, () => rng.next());
    },
  };
}
