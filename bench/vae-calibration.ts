// `node bench/vae-calibration.ts`: does a released 1-way distribution fix the DP-SGD VAE's columns? In process
// (central: the sim's centralized-baseline code, not a federation), per data set and seed on the sim's split:
//   plain       the VAE trained by DP-SGD at the whole ε (what `--generator vae` does today);
//   calibrated  the VAE trained by DP-SGD at a smaller ε, plus every numeric column's 1-way counts over the
//               marginals generator's fine bins released by the Gaussian mechanism (hierarchical levels, James–Stein,
//               as its round 1), and the VAE's columns mapped by rank onto them (calibrateColumns, post-processing).
// Both are (ε, δ)-DP at the same ε: the two mechanisms are composed on the RDP accountant and DP-SGD's noise is
// bisected until the composition reaches ε. Scored by the sim report's code against the held-out test rows.
//   node bench/vae-calibration.ts [--datasets breast_cancer_wdbc,pima_diabetes_na,lung_ncctg] [--seeds 3] [--eps 8]
//                                 [--hist-share 0.3] [--epochs 50] [--trees 30] [--fine-bins 1024]
// --hist-share: the histograms' share of the zCDP ρ that ε would buy alone (ρ from ε = ρ + 2√(ρ ln 1/δ)).
import { parseArgs } from 'node:util';
import {
  createPrng, createTwinVae, decodeRows, encodeTable, fidelityReport, forestUtility, initBackend, loadDatasetTable, membershipInferenceAuc,
  osNoise, subsetTable, trainTestSplit, type Table,
} from '@fedtwin/models';
import { RdpAccountant, noiseMultiplierFor } from '@fedtwin/dp';
import {
  DEFAULT_BRANCHING, DEFAULT_FINE_BINS, addNoise, calibrateColumns, columnSize, domainFromSchema, estimateLeaves, hierarchyOf, levelCounts, localCounts,
} from '@fedtwin/marginals';

const { values } = parseArgs({
  options: {
    datasets: { type: 'string', default: 'breast_cancer_wdbc,pima_diabetes_na,lung_ncctg' },
    seeds: { type: 'string', default: '3' },
    eps: { type: 'string', default: '8' },
    'hist-share': { type: 'string', default: '0.3' },
    epochs: { type: 'string', default: '50' },
    trees: { type: 'string', default: '30' },
    'fine-bins': { type: 'string', default: String(DEFAULT_FINE_BINS) },
  },
});
const TARGETS: Record<string, string> = { pima_diabetes_na: 'diabetes', lung_ncctg: 'status' };
const epsilon = Number(values.eps);
const delta = 1e-5;
const share = Number(values['hist-share']);
const epochs = Number(values.epochs);
const trees = Number(values.trees);
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => 42 + i);
const batchSize = 32;
if (!(epsilon > 0 && Number.isFinite(epsilon)) || !(share > 0 && share < 1)) throw new Error('--eps must be finite and > 0, --hist-share in (0, 1)');

/** zCDP ρ whose (ε, δ) conversion ε = ρ + 2√(ρ ln 1/δ) gives `eps`. */
const rhoFor = (eps: number): number => {
  const l = Math.log(1 / delta);
  const s = -Math.sqrt(l) + Math.sqrt(l + eps);
  return s * s;
};

/** DP-SGD's noise multiplier such that DP-SGD composed with the histograms' Gaussian (noise multiplier zh) is ε. */
function sgdNoiseWith(zh: number, q: number, steps: number): { z: number; total: number } {
  const total = (z: number) => new RdpAccountant().compose({ sampleRate: q, noiseMultiplier: z, steps }).compose({ sampleRate: 1, noiseMultiplier: zh, steps: 1 }).getEpsilon(delta).epsilon;
  let lo = noiseMultiplierFor({ epsilon, sampleRate: q, steps, delta }).noiseMultiplier; // alone: the smallest z
  let hi = lo * 2;
  while (total(hi) > epsilon) hi *= 2;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (total(mid) > epsilon) lo = mid;
    else hi = mid;
  }
  return { z: hi, total: total(hi) };
}

interface Row { fidelity: number; forest: number; recall: number | null; mia: number }
const meanCi = (xs: number[]): string => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return m.toFixed(3);
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  const t = [0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262][xs.length - 1] ?? 2;
  return `${m.toFixed(3)} ± ${(t * sd / Math.sqrt(xs.length)).toFixed(3)}`;
};

const backend = await initBackend();
console.log(`vae-calibration: Node ${process.version}, tfjs ${backend.name}; ε = ${epsilon}, δ = ${delta}, histograms' share of ρ ${share}, ${epochs} epochs, batch ${batchSize}, seeds ${seeds.join(',')}, central (in process), OS-CSPRNG noise`);
for (const name of values.datasets.split(',')) {
  const full = await loadDatasetTable(name, TARGETS[name] ? { target: TARGETS[name] } : {});
  const schema = full.schema;
  const fine = domainFromSchema(schema, { bins: Number(values['fine-bins']) });
  const numeric = fine.columns.map((c, k) => (c.kind === 'numeric' && c.name !== schema.target ? k : -1)).filter((k) => k >= 0);
  const hierarchies = new Map(numeric.map((k) => [k, hierarchyOf(columnSize(fine.columns[k]!), DEFAULT_BRANCHING)]));
  const levels = [...hierarchies.values()].reduce((s, h) => s + h.spans.length, 0);
  const zh = Math.sqrt(1 / (2 * share * rhoFor(epsilon))); // one record moves one node per level per column: L2 sensitivity √levels
  const results: Record<'plain' | 'calibrated', Row[]> = { plain: [], calibrated: [] };
  let spent = '';
  const trtr: number[] = [];
  const cond = encodeTable(full).cond;
  for (const seed of seeds) {
    const { train, test } = trainTestSplit(full.rows.length, 0.2, seed, Array.from(cond));
    const tr = subsetTable(full, train);
    const te = subsetTable(full, test);
    const enc = encodeTable(tr);
    trtr.push(forestUtility(tr, te, { seed, trees }).auc);
    const q = Math.min(1, batchSize / enc.rows);
    const steps = epochs * Math.max(1, Math.round(1 / q));
    const classCounts = enc.classes.map(() => 0);
    for (const c of enc.cond) classCounts[c]!++;
    const vaeAt = async (z: number): Promise<Table> => {
      const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, latentDim: 8, hidden: 64, seed });
      try {
        await vae.trainEpochs(enc, { epochs, batchSize, learningRate: 0.003, seed, dp: { clip: 1, noiseMultiplier: z, secureNoise: true } });
        const gen = vae.generate(enc.rows, { classProbs: classCounts, seed: seed + 7 });
        return { schema, rows: decodeRows(schema, gen.x, gen.cond) };
      } finally {
        vae.dispose();
      }
    };
    const score = (synth: Table): Row => {
      const f = forestUtility(synth, te, { seed, trees });
      return { fidelity: fidelityReport(te, synth).mean, forest: f.auc, recall: f.minorityRecall, mia: membershipInferenceAuc(synth, tr, te, createPrng(seed * 31 + 5)).auc };
    };
    results.plain.push(score(await vaeAt(noiseMultiplierFor({ epsilon, sampleRate: q, steps, delta }).noiseMultiplier)));
    const sgd = sgdNoiseWith(zh, q, steps);
    spent = `DP-SGD z ${sgd.z.toFixed(3)} + histograms z ${zh.toFixed(3)} (σ ${(zh * Math.sqrt(levels)).toFixed(1)} per count, ${levels} levels) = ε ${sgd.total.toFixed(3)}`;
    const synth = await vaeAt(sgd.z);
    // The release: every numeric column's hierarchical 1-way counts with Gaussian noise, leaves by James–Stein.
    const noise = osNoise();
    const leafCounts = localCounts(fine, tr, fine.columns.map((_, k) => [k]));
    const oneWays = fine.columns.map((_, k) => {
      const h = hierarchies.get(k);
      if (!h) return undefined;
      const sigma = zh * Math.sqrt(levels);
      return estimateLeaves(h, addNoise(levelCounts(h, leafCounts[k]!), sigma, noise), sigma);
    });
    results.calibrated.push(score(calibrateColumns(synth, fine, oneWays)));
  }
  console.log(`\n${name}: ${full.rows.length} rows, ${numeric.length} numeric columns; calibrated: ${spent}; forest TRTR ${meanCi(trtr)}`);
  console.log(`${'VAE'.padEnd(12)} ${'fidelity vs test'.padEnd(17)} ${'forest TSTR'.padEnd(15)} ${'minority recall'.padEnd(15)} MIA AUC`);
  for (const k of ['plain', 'calibrated'] as const) {
    const r = results[k];
    console.log(`${k.padEnd(12)} ${meanCi(r.map((x) => x.fidelity)).padEnd(17)} ${meanCi(r.map((x) => x.forest)).padEnd(15)} ${meanCi(r.map((x) => x.recall ?? 0)).padEnd(15)} ${meanCi(r.map((x) => x.mia))}`);
  }
}
