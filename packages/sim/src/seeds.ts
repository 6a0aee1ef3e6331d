// `fedtwin sim --seeds K` (issue 14 item 4): one seed is one split, one initialisation and one set of noise
// draws; a figure from one run says little about the next. K whole runs (seeds s, s+1, …, s+K−1, each in
// OUT/seed-<s>/), then one report whose every number is the mean over the runs, with a mirror tree of 95 %
// confidence intervals (Student's t, K − 1 degrees of freedom) beside it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { runSimulation, type SimOptions, type SimReport } from './sim.ts';

/** Two-sided 97.5 % quantiles of Student's t for 1…30 degrees of freedom; beyond 30 the normal 1.96 is within 2 %. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export const MAX_SEEDS = 100;

export interface Interval {
  mean: number;
  /** 95 % confidence interval of the mean; equal to [mean, mean] when every run gave the same value. */
  lo: number;
  hi: number;
  sd: number;
  n: number;
}

/** Mean and 95 % CI of the mean (t interval). Non-finite values are left out; none left gives NaN. */
export function meanInterval(values: readonly number[]): Interval {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN, sd: Number.NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, lo: Number.NaN, hi: Number.NaN, sd: Number.NaN, n };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (T975[n - 2] ?? 1.96) * sd / Math.sqrt(n);
  return { mean, lo: mean - half, hi: mean + half, sd, n };
}

type Tree = unknown;

/**
 * Walks K reports of one shape: a number becomes the mean over the runs (and an Interval in the mirror tree),
 * arrays of equal length are walked element by element, objects key by key (the first run's keys); strings,
 * booleans, null and arrays whose lengths differ keep the first run's value (and null in the mirror).
 */
export function summarise(runs: readonly Tree[]): { mean: Tree; ci95: Tree } {
  const first = runs[0];
  if (typeof first === 'number') {
    const iv = meanInterval(runs.map((r) => (typeof r === 'number' ? r : Number.NaN)));
    return { mean: iv.mean, ci95: iv };
  }
  if (Array.isArray(first)) {
    if (!runs.every((r) => Array.isArray(r) && r.length === first.length)) return { mean: first, ci95: null };
    const parts = first.map((_, i) => summarise(runs.map((r) => (r as unknown[])[i])));
    return { mean: parts.map((p) => p.mean), ci95: parts.map((p) => p.ci95) };
  }
  if (first !== null && typeof first === 'object') {
    const mean: Record<string, Tree> = {};
    const ci95: Record<string, Tree> = {};
    for (const key of Object.keys(first)) {
      const p = summarise(runs.map((r) => (r !== null && typeof r === 'object' ? (r as Record<string, unknown>)[key] : undefined)));
      mean[key] = p.mean;
      ci95[key] = p.ci95;
    }
    return { mean, ci95 };
  }
  return { mean: first, ci95: null };
}

export interface SeedsSummary {
  /** Every figure of SimReport as its mean over the runs (strings and the like from the first run). */
  report: SimReport & { seeds: { count: number; values: number[]; dirs: string[]; ci95: unknown } };
  outDir: string;
}

/** K whole simulations with seeds base.seed … base.seed + K − 1, then OUT/report.json (means + ci95) and OUT/report.html. */
export async function runSeeds(base: SimOptions, count: number): Promise<SeedsSummary> {
  if (!Number.isInteger(count) || count < 2 || count > MAX_SEEDS) {
    throw new FedtwinError('SIM_BAD_ARGUMENT', `--seeds must be an integer from 2 to ${MAX_SEEDS}, got ${count}`, { hint: 'e.g. --seeds 5 (one run needs no interval: leave --seeds out)' });
  }
  const outDir = resolve(base.out);
  await mkdir(outDir, { recursive: true });
  const reports: SimReport[] = [];
  const seeds: number[] = [];
  const dirs: string[] = [];
  for (let k = 0; k < count; k++) {
    const seed = base.seed + k;
    const dir = join(outDir, `seed-${seed}`);
    const { report } = await runSimulation({ ...base, seed, out: dir });
    reports.push(report);
    seeds.push(seed);
    dirs.push(dir);
  }
  const { mean, ci95 } = summarise(reports);
  const report = { ...(mean as SimReport), seed: base.seed, seeds: { count, values: seeds, dirs, ci95 } };
  await writeFile(join(outDir, 'report.json'), JSON.stringify(report, null, 2));
  await writeFile(join(outDir, 'report.html'), renderSeeds(report));
  return { report, outDir };
}

/** The headline figures with their intervals; each run's own report.html has the plots. */
export const HEADLINE_FIGURES: ReadonlyArray<{ path: string; label: string }> = [
  { path: 'utility.tstrAuc.federated', label: 'TSTR AUC federated (logistic regression)' },
  { path: 'utility.tstrAuc.localOnly', label: 'TSTR AUC local-only' },
  { path: 'utility.tstrAuc.centralized', label: 'TSTR AUC centralized' },
  { path: 'utility.trtrAuc', label: 'TRTR AUC (real training rows)' },
  { path: 'utility.forest.tstrAuc', label: 'TSTR AUC federated (random forest)' },
  { path: 'utility.forest.trtrAuc', label: 'TRTR AUC (random forest)' },
  { path: 'utility.forest.minorityRecall.federated', label: 'rarest class recall, trained on the release' },
  { path: 'fidelity.mean', label: 'fidelity vs test rows (mean column score)' },
  { path: 'fidelity.correlationDistance', label: 'correlation distance' },
  { path: 'fidelity.missingness.mean', label: 'missingness-rate score (1 − |rate real − rate synthetic|)' },
  { path: 'release.dcr.ratio', label: 'DCR ratio (train ÷ test)' },
  { path: 'release.membershipInferenceAuc', label: 'membership inference AUC' },
  { path: 'privacy.epsilon', label: 'ε spent (largest member)' },
  { path: 'wallSeconds', label: 'wall time per run (s)' },
];

export function at(tree: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((t, k) => (t !== null && typeof t === 'object' ? (t as Record<string, unknown>)[k] : undefined), tree);
}

function renderSeeds(r: SeedsSummary['report']): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  const f = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '—');
  const rows = HEADLINE_FIGURES.map(({ path, label }) => {
    const iv = at(r.seeds.ci95, path) as Interval | null | undefined;
    if (!iv || typeof iv !== 'object') return '';
    return `<tr><td>${esc(label)}</td><td>${f(iv.mean)}</td><td>[${f(iv.lo)}, ${f(iv.hi)}]</td><td>${f(iv.sd)}</td></tr>`;
  }).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>fedtwin sim: ${r.seeds.count} seeds</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}td,th{padding:.25em .8em;text-align:left}tr:nth-child(even){background:#f4f4f4}</style></head><body>
<h1>fedtwin sim — ${esc(r.dataset)}, ${r.nodes} nodes, ${r.seeds.count} seeds (${r.seeds.values.join(', ')})</h1>
<p>Mean over the runs and 95 % confidence interval of the mean (Student's t, ${r.seeds.count - 1} degrees of freedom). Each run's own report (plots, per-column fidelity, ledger) is in <code>seed-&lt;s&gt;/report.html</code>.</p>
<table><tr><th>figure</th><th>mean</th><th>95 % CI</th><th>sd</th></tr>${rows}</table>
</body></html>
`;
}
