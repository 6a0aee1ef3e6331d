import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
// tfjs loads only when the benchmark runs.
let M: typeof import('@fedtwin/models');
import type { EncodedTable, Segment, DpTrainOptions } from '@fedtwin/models';

// `fedtwin bench models`: twin-VAE training throughput, every figure beside its baseline from the
// same run: wasm with vs without the transposed-matmul fix, pure-JS cpu, DP-SGD vs plain, and
// (--rows-per-unit k) user-level DP-SGD, which clips each unit's summed gradient.
// Shared 2-core machines are noisy, so configurations are interleaved and the best rep is kept.

interface BenchOpts { hidden: string; latent: string; batch: string; rows: string; features: string; seconds: string; reps: string; rowsPerUnit: string; json?: boolean; dp: boolean; cpu: boolean }

interface Row { config: string; backend: string; detail: string; samplesPerSec: number; reps: number[] }

function int(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new FedtwinError('CLI_BAD_ARGUMENT', `${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`, { hint: `e.g. ${flag} ${min}` });
  }
  return v;
}

/** Random rows shaped like the breast-cancer table: `features` numeric columns in [0,1], 2 classes. */
function randomTable(rows: number, features: number, seed: number): EncodedTable {
  const rng = M.createRng(seed);
  const segments: Segment[] = Array.from({ length: features }, (_, j) => ({ column: `f${j}`, kind: 'numeric', offset: j, width: 1 }));
  const x = new Float32Array(rows * features);
  const cond = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    cond[i] = rng.uniform() < 0.37 ? 1 : 0;
    for (let j = 0; j < features; j++) x[i * features + j] = rng.uniform();
  }
  return { x, rows, width: features, segments, cond, classes: ['benign', 'malignant'] };
}

async function measure(data: EncodedTable, o: { hidden: number; latent: number; batch: number; seconds: number; dp?: DpTrainOptions }): Promise<number> {
  const m = M.createTwinVae({ width: data.width, segments: data.segments, classes: data.classes, latentDim: o.latent, hidden: o.hidden, seed: 1 });
  try {
    // With units, batchSize counts units: the same expected rows per step as the per-record row.
    const perUnit = o.dp?.units ? data.rows / (o.dp.units.reduce((a, u) => Math.max(a, u), 0) + 1) : 1;
    const opts = { epochs: 1, batchSize: Math.max(1, Math.round(o.batch / perUnit)), learningRate: 1e-3, seed: 1, dp: o.dp };
    await m.trainEpochs(data, opts); // warm-up: kernel setup, XNNPACK operator caches, Adam state
    let examples = 0, epoch = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < o.seconds * 1000) {
      examples += (await m.trainEpochs(data, { ...opts, seed: ++epoch })).examples;
    }
    return examples / ((performance.now() - t0) / 1000);
  } finally {
    m.dispose();
  }
}

export function registerModelsBench(bench: Command): void {
  bench
    .command('models')
    .description('Twin-VAE training samples/s: wasm with vs without the matmul fix, cpu, DP-SGD vs plain')
    .option('--hidden <n>', 'hidden units', '128')
    .option('--latent <n>', 'latent dimensions', '16')
    .option('--batch <n>', 'batch size (expected batch size for DP-SGD)', '64')
    .option('--rows <n>', 'rows of random data', '1024')
    .option('--features <n>', 'numeric features (breast cancer: 30)', '30')
    .option('--seconds <s>', 'seconds per measurement', '2')
    .option('--reps <n>', 'interleaved repetitions per configuration (best kept)', '3')
    .option('--rows-per-unit <k>', 'also time user-level DP-SGD with k rows per unit (e.g. visits per patient); 1 = skip', '1')
    .option('--no-dp', 'skip the DP-SGD rows')
    .option('--no-cpu', 'skip the cpu row')
    .option('--json', 'print one JSON object')
    .action(async (opts: BenchOpts) => {
      M = await import('@fedtwin/models');
      const hidden = int('--hidden', opts.hidden, 1, 4096);
      const latent = int('--latent', opts.latent, 1, 1024);
      const batch = int('--batch', opts.batch, 1, 8192);
      const rows = int('--rows', opts.rows, 1, 1_000_000);
      const features = int('--features', opts.features, 1, 10_000);
      const seconds = int('--seconds', opts.seconds, 1, 600);
      const reps = int('--reps', opts.reps, 1, 20);
      const rowsPerUnit = int('--rows-per-unit', opts.rowsPerUnit, 1, 1024);
      const data = randomTable(rows, features, 7);
      const dp: DpTrainOptions = { clip: 1, noiseMultiplier: 1.1 };

      const configs: Array<{ config: string; backend: 'wasm' | 'cpu'; fix: boolean; dp?: DpTrainOptions }> = [
        { config: 'wasm + matmul fix', backend: 'wasm', fix: true },
        { config: 'wasm, stock kernels', backend: 'wasm', fix: false },
      ];
      if (opts.cpu) configs.push({ config: 'cpu (pure JS)', backend: 'cpu', fix: false });
      if (opts.dp) configs.push({ config: 'wasm + fix, DP-SGD', backend: 'wasm', fix: true, dp });
      const unitConfig = `DP-SGD, ${rowsPerUnit} rows/unit`;
      if (opts.dp && rowsPerUnit > 1) {
        const units = Int32Array.from({ length: rows }, (_, i) => Math.floor(i / rowsPerUnit));
        configs.push({ config: unitConfig, backend: 'wasm', fix: true, dp: { ...dp, units } });
      }
      const results: Row[] = configs.map((c) => ({ config: c.config, backend: c.backend, detail: '', samplesPerSec: 0, reps: [] }));
      for (let r = 0; r < reps; r++) {
        for (const [i, c] of configs.entries()) {
          const info = await M.initBackend(c.backend, { matmulFix: c.fix });
          results[i].detail = info.detail;
          const sps = await measure(data, { hidden, latent, batch, seconds, dp: c.dp });
          results[i].reps.push(Math.round(sps));
          results[i].samplesPerSec = Math.max(results[i].samplesPerSec, Math.round(sps));
          if (!opts.json) process.stderr.write(`  rep ${r + 1}/${reps} ${c.config}: ${Math.round(sps)} samples/s\n`);
        }
      }
      await M.initBackend('auto'); // leave the process on the default backend (fix on)
      const by = (name: string): number | undefined => results.find((x) => x.config === name)?.samplesPerSec;
      const fixOn = by('wasm + matmul fix')!;
      const ratios: Record<string, number> = { fixSpeedup: round2(fixOn / by('wasm, stock kernels')!) };
      const cpu = by('cpu (pure JS)');
      if (cpu !== undefined) ratios.wasmOverCpu = round2(fixOn / cpu);
      const dpSps = by('wasm + fix, DP-SGD');
      if (dpSps !== undefined) ratios.dpOverPlain = round2(dpSps / fixOn);
      const unitSps = by(unitConfig);
      if (unitSps !== undefined) ratios.unitDpOverPlain = round2(unitSps / fixOn);
      const setup = { hidden, latent, batch, rows, features, classes: 2, seconds, reps, dp: opts.dp ? dp : null, rowsPerUnit };
      if (opts.json) {
        process.stdout.write(JSON.stringify({ setup, results, ratios }) + '\n');
        return;
      }
      const lines = [
        `twin VAE training, ${features} numeric features, 2 classes, hidden ${hidden}, latent ${latent}, batch ${batch}, ${rows} rows (best of ${reps} × ${seconds}s)`,
        '',
        `${'configuration'.padEnd(24)} ${'samples/s'.padStart(10)}  backend`,
        ...results.map((x) => `${x.config.padEnd(24)} ${String(x.samplesPerSec).padStart(10)}  ${x.detail}`),
        '',
        `matmul fix speed-up (wasm):   ${ratios.fixSpeedup}×`,
        ...(ratios.wasmOverCpu !== undefined ? [`wasm (fix) over cpu:          ${ratios.wasmOverCpu}×`] : []),
        ...(ratios.dpOverPlain !== undefined ? [`DP-SGD / plain (wasm, fix):   ${ratios.dpOverPlain}×  (clip ${dp.clip}, noise ${dp.noiseMultiplier}, Poisson sampling)`] : []),
        ...(ratios.unitDpOverPlain !== undefined ? [`per-unit DP-SGD / plain:      ${ratios.unitDpOverPlain}×  (${rowsPerUnit} rows per unit, same expected rows per step)`] : []),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
