import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { formatEpsilon, formatLowerBound } from '../format.ts';
import type { SimOptions } from '@fedtwin/sim/options';
import type { SimReport } from '@fedtwin/sim';

import { DEFAULT_AUDIT_CANARIES, DEFAULT_SIM_OPTIONS } from '@fedtwin/sim/options';

const d: SimOptions = DEFAULT_SIM_OPTIONS;

export function registerSimCommand(program: Command): void {
  program.command('sim')
    .description('Run a federation of N nodes + an aggregator as separate processes on 127.0.0.1 and write synthetic twins and a report')
    .option('--dataset <name|file.csv>', 'built-in data set name or a CSV file', d.dataset)
    .option('--target <column>', 'label column to condition on and split by (default: the data set\'s own)')
    .option('--zero-missing <columns>', 'comma-separated numeric columns where 0 means "not measured" (modelled as missing, e.g. pima_diabetes: glucose,pressure,triceps,insulin,mass)')
    .option('--nodes <n>', 'number of hospital nodes', String(d.nodes))
    .option('--rounds <r>', 'federated rounds', String(d.rounds))
    .option('--out <dir>', 'output directory', d.out)
    .option('--seed <s>', 'seed for the split, the model and the sampling', String(d.seed))
    .option('--alpha <a>', 'Dirichlet concentration of the non-IID label split (small = more skewed)', String(d.alpha))
    .option('--test-fraction <f>', 'held-out real test fraction', String(d.testFraction))
    .option('--epochs <e>', 'local epochs per round', String(d.epochs))
    .option('--batch-size <b>', 'local batch size', String(d.batchSize))
    .option('--learning-rate <lr>', 'local learning rate', String(d.learningRate))
    .option('--hidden <h>', 'VAE hidden width', String(d.hidden))
    .option('--latent <z>', 'VAE latent dimension', String(d.latentDim))
    .option('--timeout <seconds>', 'give up on the federation after this long', String(d.timeoutSeconds))
    .option('--generator <kind>', `the synthesizer the consortium federates: marginals (federated MST: 3 rounds of noisy counts under BFV; --rounds, --epochs and the VAE options do not apply) | vae (DP-SGD); default ${d.generator}`)
    .option('--dp <mode>', 'differential privacy: record (DP-SGD) | site (DP-FedAvg) | both | off', d.dp)
    .option('--epsilon <e>', 'each member\'s privacy budget ε over the whole federation (inf = no DP)', String(d.epsilon))
    .option('--delta <d>', 'δ of the (ε, δ) guarantee', String(d.delta))
    .option('--clip <c>', 'record-level per-example gradient clip', String(d.clip))
    .option('--site-clip <c>', 'site-level update clip', String(d.siteClip))
    .option('--unit-column <col>', 'patient-level DP: the CSV column with each row\'s patient (unit) id; DP-SGD samples and clips per patient, ε is per patient, the id never enters the model or synthetic.csv, and the split keeps each patient\'s rows together (--dp record, or both for the vae; the marginals generator counts at most one row per patient)')
    .option('--epsilon-sweep <list>', 'run once per ε (e.g. 1,3,8,inf) into OUT/eps-<ε>/ and chart TSTR AUC against ε')
    .option('--seeds <K>', 'repeat the whole run with seeds --seed … --seed+K−1 (OUT/seed-<s>/) and report every figure as the mean with its 95 % confidence interval (OUT/report.json: means, seeds.ci95 beside them)')
    .option('--plaintext', 'baseline: aggregate plaintext updates instead of BFV ciphertexts')
    .option('--aggregation <scheme>', 'secure aggregation: secagg (pairwise masking, no key anywhere, the default; docs/he.md §9) | bfv (one consortium HE key) | plaintext', d.secureAggregation)
    .option('--seeded-noise', 'draw DP sampling masks and noise from the seed, so runs are reproducible (then ε holds only against whoever does not know --seed); default: the OS CSPRNG')
    .option('--secure-noise', 'the default (OS CSPRNG noise); kept for older scripts')
    .option('--audit', `empirical privacy audit (one run, Steinke et al. 2023): canaries into node 0, each kept with probability 1/2; reports ε_lower next to the claimed ε (docs/privacy-audit.md); both generators`)
    .option('--audit-canaries <m>', `canaries for --audit (implies it; default ${DEFAULT_AUDIT_CANARIES}; more raise the attainable bound and node 0's training time)`)
    .option('--no-calibrate', 'vae with --dp record or off: skip the count round that releases the numeric columns\' 1-way counts and the calibration of the twins onto them (docs/models.md, "Column calibration")')
    .option('--forest-trees <n>', 'trees of the random forest that scores the release (TSTR/TRTR, rarest-class recall): fewer score faster and noisier', String(d.forestTrees))
    .option('--progress <mode>', 'auto | lines | none', d.progress)
    .option('--json', 'print report.json to stdout at the end')
    .option('--serve <host:port>', 'for the whole run, serve the aggregator\'s dashboard at / and its Prometheus metrics at /metrics (e.g. 127.0.0.1:8080; another address than loopback needs FEDTWIN_SERVE_TOKEN)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const opts: SimOptions = {
        ...d,
        dataset: String(o.dataset), target: o.target === undefined ? undefined : String(o.target),
        ...(o.unitColumn === undefined ? {} : { unitColumn: String(o.unitColumn) }),
        ...(o.zeroMissing === undefined ? {} : { zeroIsMissing: String(o.zeroMissing).split(',').map((c) => c.trim()).filter(Boolean) }),
        nodes: int(o.nodes, 'nodes'), rounds: int(o.rounds, 'rounds'), out: String(o.out), seed: int(o.seed, 'seed'),
        alpha: num(o.alpha, 'alpha'), testFraction: num(o.testFraction, 'test-fraction'), epochs: int(o.epochs, 'epochs'),
        batchSize: int(o.batchSize, 'batch-size'), learningRate: num(o.learningRate, 'learning-rate'),
        hidden: int(o.hidden, 'hidden'), latentDim: int(o.latent, 'latent'), timeoutSeconds: num(o.timeout, 'timeout'),
        // --audit audits whichever generator runs (the marginals generator by its released counts, the VAE by its loss).
        progress: mode(o.progress), generator: o.generator === undefined ? d.generator : generatorKind(o.generator),
        secureAggregation: o.plaintext ? 'plaintext' : aggregationScheme(o.aggregation), secureNoise: o.seededNoise !== true,
        dp: dpMode(o.dp), epsilon: eps(o.epsilon, 'epsilon'), delta: num(o.delta, 'delta'), clip: num(o.clip, 'clip'), siteClip: num(o.siteClip, 'site-clip'),
        forestTrees: int(o.forestTrees, 'forest-trees'), calibrate: o.calibrate !== false,
        ...(o.audit || o.auditCanaries !== undefined ? { audit: { canaries: o.auditCanaries === undefined ? DEFAULT_AUDIT_CANARIES : int(o.auditCanaries, 'audit-canaries') } } : {}),
      };
      if (o.epsilonSweep !== undefined) {
        const list = String(o.epsilonSweep).split(',').map((x) => eps(x.trim(), 'epsilon-sweep'));
        const { runEpsilonSweep } = await import('@fedtwin/sim');
        const sweep = await runEpsilonSweep(opts, list);
        if (o.json) process.stdout.write(`${JSON.stringify(sweep)}\n`);
        else {
          // With --audit, each run's ε_lower beside the ε it spent.
          const audited = opts.audit !== undefined;
          process.stdout.write(`epsilon  TSTR federated  local-only  centralized  spent ε (max member)${audited ? '  audit ε_lower' : ''}\n`);
          for (const r of sweep.points) process.stdout.write(`${(r.epsilon === 'inf' ? '∞' : formatEpsilon(r.epsilon)).padStart(7)}  ${r.federated.toFixed(3).padStart(14)}  ${r.localOnly.toFixed(3).padStart(10)}  ${r.centralized.toFixed(3).padStart(11)}  ${audited ? formatEpsilon(r.spentEpsilon).padStart(20) : formatEpsilon(r.spentEpsilon)}${audited ? `  ${formatLowerBound(r.epsilonLower)}` : ''}\n`);
          process.stdout.write(`wrote ${sweep.outDir}/sweep.json and sweep.html\n`);
        }
        return;
      }
      if (o.seeds !== undefined) {
        if (o.serve !== undefined) throw new FedtwinError('CLI_BAD_ARGUMENT', '--seeds and --serve do not go together', { hint: 'serve one run at a time' });
        const { runSeeds, HEADLINE_FIGURES, at } = await import('@fedtwin/sim');
        const { report, outDir } = await runSeeds(opts, int(o.seeds, 'seeds'));
        if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else {
          process.stdout.write(`fedtwin sim: ${report.seeds.count} runs (seeds ${report.seeds.values.join(', ')}), mean [95 % CI]\n`);
          for (const { path, label } of HEADLINE_FIGURES) {
            const iv = at(report.seeds.ci95, path) as { mean: number; lo: number; hi: number } | null | undefined;
            if (iv && Number.isFinite(iv.mean)) process.stdout.write(`  ${label.padEnd(46)} ${iv.mean.toFixed(3)} [${iv.lo.toFixed(3)}, ${iv.hi.toFixed(3)}]\n`);
          }
          process.stdout.write(`  wrote ${outDir}/report.json and report.html (each run in ${outDir}/seed-<s>/)\n`);
        }
        return;
      }
      const { runSimulation } = await import('@fedtwin/sim');
      const serving = o.serve === undefined ? undefined : await serveRun(String(o.serve), opts.out);
      let run: Awaited<ReturnType<typeof runSimulation>>;
      try {
        run = await runSimulation({ ...opts, ...(serving ? { aggregatorHttp: true } : {}) });
      } finally {
        await serving?.close();
      }
      const { report, outDir } = run;
      const t = report.utility.tstrAuc;
      if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        process.stdout.write([
          `fedtwin sim done in ${report.wallSeconds.toFixed(1)} s (${report.generator} generator, ${report.nodes} nodes, ${report.rounds} rounds, ${report.dataset}, seed ${report.seed}, backend ${report.backend})`,
          `  TSTR AUC  federated ${t.federated.toFixed(3)}  local-only ${t.localOnly.toFixed(3)}  centralized ${t.centralized.toFixed(3)}  (TRTR ${report.utility.trtrAuc.toFixed(3)})`,
          `  privacy   ${report.privacy.mode === 'off' ? 'off' : `${report.privacy.mode}-level DP, ε = ${formatEpsilon(report.privacy.epsilon)} of budget ${formatEpsilon(report.privacy.budget)} (δ = ${report.privacy.delta}), noise z = ${formatLowerBound(report.privacy.noiseMultiplier)}, clip ${report.privacy.clip}${report.privacy.unit ? `, per patient (unit column ${report.privacy.unit.column}: ${report.privacy.unit.unitsPerNode.join('/')} units per node)` : ''}`}`,
          `  secure aggregation  ${report.secureAggregation.scheme}${report.secureAggregation.polyModulusDegree ? ` N=${report.secureAggregation.polyModulusDegree}` : ''}, each member's upload is ${report.secureAggregation.bytesPerValue.toFixed(2)} bytes per model value (mean per contribution ÷ values in the shared model; ${report.secureAggregation.ratioToFloat32.toFixed(2)}× sending them as float32)`,
          `  forest    TSTR ${report.utility.forest.tstrAuc.toFixed(3)} (TRTR ${report.utility.forest.trtrAuc.toFixed(3)})${report.utility.forest.minorityClass === null ? '' : `, recall of the rarest class "${report.utility.forest.minorityClass}" ${report.utility.forest.minorityRecall.federated?.toFixed(3) ?? '—'} (real ${report.utility.forest.minorityRecall.trtr?.toFixed(3) ?? '—'})`}`,
          `  fidelity  ${report.fidelity.mean.toFixed(3)} mean column score vs the held-out test rows, correlation distance ${report.fidelity.correlationDistance.toFixed(3)}`,
          ...(report.fidelity.missingness ? [`  missing   ${report.fidelity.missingness.mean.toFixed(3)} missingness-rate score (1 − |rate real − rate synthetic|, mean over ${report.fidelity.missingness.columns.length} columns): ${report.fidelity.missingness.columns.map((c) => `${c.name} ${(100 * c.real).toFixed(1)}/${(100 * c.synthetic).toFixed(1)} %`).join(', ')}`] : []),
          `  release   DCR ratio ${report.release.dcr.ratio.toFixed(3)} (≈ 1: not closer to training rows than to unseen ones), membership inference AUC ${report.release.membershipInferenceAuc.toFixed(3)} (0.5 = chance)`,
          ...(report.privacy.audit ? [auditLine(report.privacy.audit)] : []),
          `  wrote ${outDir}/synthetic.csv, report.json, report.html`,
          '',
        ].join('\n'));
      }
    });
}

/** --serve: the dashboard and /metrics for the whole run (sim-serve.ts); says where on stderr. */
async function serveRun(listen: string, out: string): Promise<{ close(): Promise<void> }> {
  const { resolve } = await import('node:path');
  const { serveSim } = await import('../sim-serve.ts');
  const token = process.env.FEDTWIN_SERVE_TOKEN || undefined;
  const server = await serveSim({ listen, ...(token ? { token } : {}), outDir: resolve(out) });
  process.stderr.write(`fedtwin sim: dashboard on ${server.url}/ , metrics on ${server.url}/metrics${token ? ' (bearer token from FEDTWIN_SERVE_TOKEN; open the page as /#token=…)' : ''}\n`);
  return server;
}

/** One line: ε_lower against the claim, with what it rests on. */
function auditLine(a: NonNullable<SimReport['privacy']['audit']>): string {
  const claim = a.epsilonClaimed === null ? 'no claim (DP off)' : `claimed ε = ${formatEpsilon(a.epsilonClaimed)}`;
  return `  audit     ε_lower = ${formatLowerBound(a.epsilonLower)} at ${Math.round(a.confidence * 100)} % confidence vs ${claim} (δ = ${a.delta}); ${a.correct}/${a.guesses} guesses right on ${a.canaries} canaries (${a.included} in), ceiling ${formatEpsilon(a.maxAttainable)}`;
}

function int(v: unknown, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new FedtwinError('CLI_BAD_ARGUMENT', `--${name} must be an integer, got "${String(v)}"`);
  return n;
}
function num(v: unknown, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new FedtwinError('CLI_BAD_ARGUMENT', `--${name} must be a number, got "${String(v)}"`);
  return n;
}
function eps(v: unknown, name: string): number {
  const t = String(v).toLowerCase();
  if (t === 'inf' || t === 'infinity') return Infinity;
  const n = Number(v);
  if (!(n > 0)) throw new FedtwinError('CLI_BAD_ARGUMENT', `--${name} must be a number > 0 or inf, got "${String(v)}"`);
  return n;
}
function dpMode(v: unknown): SimOptions['dp'] {
  if (v === 'off' || v === 'record' || v === 'site' || v === 'both') return v;
  throw new FedtwinError('CLI_BAD_ARGUMENT', `--dp must be record, site, both or off, got "${String(v)}"`);
}
function generatorKind(v: unknown): SimOptions['generator'] {
  if (v === 'vae' || v === 'marginals') return v;
  throw new FedtwinError('CLI_BAD_ARGUMENT', `--generator must be vae or marginals, got "${String(v)}"`);
}
function mode(v: unknown): SimOptions['progress'] {
  if (v === 'auto' || v === 'lines' || v === 'none') return v;
  throw new FedtwinError('CLI_BAD_ARGUMENT', `--progress must be auto, lines or none, got "${String(v)}"`);
}

function aggregationScheme(v: unknown): SimOptions['secureAggregation'] {
  const s = String(v ?? DEFAULT_SIM_OPTIONS.secureAggregation);
  if (s !== 'bfv' && s !== 'secagg' && s !== 'plaintext') throw new FedtwinError('CLI_BAD_ARGUMENT', `--aggregation must be bfv, secagg or plaintext, got ${JSON.stringify(s)}`);
  return s;
}
