import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import type { SchemeFigures } from '@fedtwin/he';
import { DEFAULT_SECURE_AGGREGATION_SCHEME } from '@fedtwin/consortium';
import { runSecaggBench, type GuardedFigures } from '../bench-secagg.ts';

// `fedtwin bench he`: fedtwin's secure aggregation — packed single-key BFV and pairwise masking (secagg) —
// beside CKKS with NVIDIA FLARE's defaults, same data, same run. `fedtwin` holds the default scheme's figures
// with what it withstands (collusionThreshold, dropoutTolerance); `singleKey` and `secagg` hold both schemes'.
// JSON mode prints one object on stdout and nothing else.

interface BenchHeOpts { values: string; updates: string; threads?: string; json?: boolean }

function int(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new FedtwinError('CLI_BAD_ARGUMENT', `${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`, { hint: `e.g. ${flag} ${min}` });
  }
  return v;
}

const ROWS: Array<[keyof SchemeFigures, string]> = [
  ['bytesPerValue', 'bytes per value'],
  ['ratioToFloat32', 'ratio to float32'],
  ['encryptMsPerMillion', 'encrypt ms / 1M values'],
  ['aggregateMsPerUpdatePerMillion', 'aggregate ms / update / 1M'],
  ['decryptMsPerMillion', 'decrypt ms / 1M values'],
  ['maxAbsError', 'max |error| of the sum'],
];

interface BenchHeJson {
  values: number;
  updates: number;
  /** The default scheme (`mode`), with what it withstands. */
  fedtwin: GuardedFigures & { mode: 'bfv' | 'secagg' };
  baseline: SchemeFigures;
  singleKey: GuardedFigures;
  secagg: GuardedFigures;
}

function table(r: BenchHeJson): string {
  const w0 = Math.max(...ROWS.map(([, l]) => l.length), 'members the aggregator needs to read one update'.length);
  const lines = [
    `Secure aggregation: ${r.values.toLocaleString('en-US')} values x ${r.updates} updates (default scheme: ${r.fedtwin.mode})`,
    `  single key: ${r.singleKey.scheme}`,
    `  secagg    : ${r.secagg.scheme}`,
    `  baseline  : ${r.baseline.scheme}`,
    '',
    `${''.padEnd(w0)}  ${'single key'.padStart(12)}  ${'secagg'.padStart(12)}  ${'baseline'.padStart(12)}  ${'baseline/single key'.padStart(19)}`,
  ];
  for (const [k, label] of ROWS) {
    const a = r.singleKey[k] as number;
    const b = r.baseline[k] as number;
    const ratio = a === 0 ? '-' : `${(b / a).toFixed(1)}x`;
    lines.push(`${label.padEnd(w0)}  ${String(a).padStart(12)}  ${String(r.secagg[k]).padStart(12)}  ${String(b).padStart(12)}  ${ratio.padStart(19)}`);
  }
  lines.push(`${'members the aggregator needs to read one update'.padEnd(w0)}  ${String(r.singleKey.collusionThreshold).padStart(12)}  ${String(r.secagg.collusionThreshold).padStart(12)}`);
  lines.push(`${'members that may drop'.padEnd(w0)}  ${String(r.singleKey.dropoutTolerance).padStart(12)}  ${String(r.secagg.dropoutTolerance).padStart(12)}`);
  lines.push('', 'secagg timings: "encrypt" is a member\'s whole part (keys, shares, mask, reveal), "aggregate" the aggregator\'s whole part per update (unmasking included), "decrypt" a member reading the sum.');
  return lines.join('\n') + '\n';
}

export function registerHeBench(bench: Command): void {
  bench
    .command('he')
    .description('secure aggregation: bytes/value, encrypt/aggregate/decrypt time, error, collusion threshold and dropout tolerance; single-key BFV and secagg masking vs FLARE-default CKKS')
    .option('--values <n>', 'values per update', '1000000')
    .option('--updates <k>', 'updates summed', '10')
    .option('--threads <n>', 'worker threads for both schemes (default: all cores)')
    .option('--json', 'print one JSON object')
    .action(async (opts: BenchHeOpts) => {
      const values = int('--values', opts.values, 1, 1 << 26);
      const updates = int('--updates', opts.updates, 1, 1024);
      const threads = opts.threads === undefined ? undefined : int('--threads', opts.threads, 1, 64);
      const { runHeBench } = await import('@fedtwin/he');
      const onProgress = opts.json ? undefined : (line: string) => process.stderr.write(`${line}\n`);
      const he = await runHeBench({ values, updates, threads, onProgress });
      const secagg = await runSecaggBench({ values, members: updates, onProgress });
      // Single key: the aggregator with any one member (each holds the consortium key) reads every update; the
      // sum is over whoever sent, so all but one may drop.
      const singleKey: GuardedFigures = { ...he.fedtwin, collusionThreshold: 1, dropoutTolerance: updates - 1 };
      const mode = DEFAULT_SECURE_AGGREGATION_SCHEME;
      const result: BenchHeJson = {
        values: he.values, updates: he.updates,
        fedtwin: { ...(mode === 'secagg' ? secagg : singleKey), mode },
        baseline: he.baseline, singleKey, secagg,
      };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : table(result));
    });
}
