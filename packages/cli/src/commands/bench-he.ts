import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import type { runHeBench as RunHeBench } from '@fedtwin/he';
import type { SchemeFigures } from '@fedtwin/he';

// `fedtwin bench he`: fedtwin's packed BFV aggregation beside CKKS with NVIDIA FLARE's defaults,
// same data, same worker pool, same run. JSON mode prints one object on stdout and nothing else.

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

function table(r: Awaited<ReturnType<typeof RunHeBench>>): string {
  const w0 = Math.max(...ROWS.map(([, l]) => l.length));
  const lines = [
    `HE secure aggregation: ${r.values.toLocaleString('en-US')} values x ${r.updates} updates`,
    `  fedtwin : ${r.fedtwin.scheme}`,
    `  baseline: ${r.baseline.scheme}`,
    '',
    `${''.padEnd(w0)}  ${'fedtwin'.padStart(12)}  ${'baseline'.padStart(12)}  ${'baseline/fedtwin'.padStart(16)}`,
  ];
  for (const [k, label] of ROWS) {
    const a = r.fedtwin[k] as number;
    const b = r.baseline[k] as number;
    const ratio = a === 0 ? '-' : `${(b / a).toFixed(1)}x`;
    lines.push(`${label.padEnd(w0)}  ${String(a).padStart(12)}  ${String(b).padStart(12)}  ${ratio.padStart(16)}`);
  }
  return lines.join('\n') + '\n';
}

export function registerHeBench(bench: Command): void {
  bench
    .command('he')
    .description('HE aggregation: bytes/value, encrypt/aggregate/decrypt time, error; fedtwin BFV vs FLARE-default CKKS')
    .option('--values <n>', 'values per update', '1000000')
    .option('--updates <k>', 'updates summed', '10')
    .option('--threads <n>', 'worker threads for both schemes (default: all cores)')
    .option('--json', 'print one JSON object')
    .action(async (opts: BenchHeOpts) => {
      const values = int('--values', opts.values, 1, 1 << 26);
      const updates = int('--updates', opts.updates, 1, 1024);
      const threads = opts.threads === undefined ? undefined : int('--threads', opts.threads, 1, 64);
      const { runHeBench } = await import('@fedtwin/he');
      const result = await runHeBench({
        values, updates, threads,
        onProgress: opts.json ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : table(result));
    });
}
