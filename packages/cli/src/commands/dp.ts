import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { DEFAULT_ORDERS, MAX_ORDER, epsilonFor, noiseMultiplierFor } from '@fedtwin/dp';
import type { Conversion, FractionalSeries } from '@fedtwin/dp';
import { formatEpsilon } from '../format.ts';

// `fedtwin dp epsilon|noise`: thin over @fedtwin/dp. Every flag is validated here so the error names the
// flag; bad values throw DP_BAD_ARGUMENT (exit 2), missing flags are commander errors (exit 2 too).

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const MAX_CLI_ORDERS = 10_000;

function bad(flag: string, message: string, hint: string): FedtwinError {
  return new FedtwinError('DP_BAD_ARGUMENT', `${flag} ${message}`, { hint, details: { argument: flag } });
}

function parseNumber(flag: string, raw: unknown): number {
  const s = typeof raw === 'string' ? raw.trim() : '';
  const v = NUMBER_RE.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v)) throw bad(flag, `must be a number, got ${JSON.stringify(raw)}`, `e.g. ${flag} 0.01`);
  return v;
}

function parseSampleRate(raw: unknown): number {
  const q = parseNumber('--sample-rate', raw);
  if (!(q > 0 && q <= 1)) throw bad('--sample-rate', `must be in (0, 1], got ${q}`, 'The Poisson sampling probability, e.g. batch size / dataset size (1 = no sampling).');
  return q;
}

function parseNoise(raw: unknown): number {
  const z = parseNumber('--noise-multiplier', raw);
  if (!(z > 0)) throw bad('--noise-multiplier', `must be > 0, got ${z}`, 'Noise standard deviation divided by the clipping norm, e.g. 1.1.');
  return z;
}

function parseSteps(raw: unknown): number {
  const t = parseNumber('--steps', raw);
  if (!Number.isSafeInteger(t) || t < 1) throw bad('--steps', `must be an integer >= 1, got ${JSON.stringify(raw)}`, 'The number of sampled Gaussian steps (training steps or rounds).');
  return t;
}

function parseDelta(raw: unknown): number {
  const d = parseNumber('--delta', raw);
  if (!(d > 0 && d < 1)) throw bad('--delta', `must be in (0, 1), got ${d}`, 'e.g. --delta 1e-5 (below 1/number of records).');
  return d;
}

function parseEpsilon(raw: unknown): number {
  const e = parseNumber('--epsilon', raw);
  if (!(e > 0)) throw bad('--epsilon', `must be > 0, got ${e}`, 'The target ε, e.g. --epsilon 1.');
  return e;
}

function parseOrders(raw: unknown): readonly number[] {
  if (raw === undefined) return DEFAULT_ORDERS;
  const parts = typeof raw === 'string' ? raw.split(',') : [];
  if (parts.length === 0 || parts.length > MAX_CLI_ORDERS) throw bad('--orders', `must be a comma-separated list of 1 to ${MAX_CLI_ORDERS} numbers`, 'e.g. --orders 2,3,4.5,8,16,32');
  return parts.map((p) => {
    const a = parseNumber('--orders', p);
    if (!(a > 1 && a <= MAX_ORDER)) throw bad('--orders', `entries must be > 1 and <= ${MAX_ORDER}, got ${a}`, 'RDP orders α must exceed 1.');
    return a;
  });
}

function parseConversion(raw: unknown): Conversion {
  if (raw === undefined) return 'improved';
  if (raw !== 'improved' && raw !== 'classic') throw bad('--conversion', `must be "improved" or "classic", got ${JSON.stringify(raw)}`, 'improved (default) is never looser than classic.');
  return raw;
}

function parseSeries(raw: unknown): FractionalSeries {
  if (raw === undefined) return 'signed';
  if (raw !== 'absolute' && raw !== 'signed') throw bad('--fractional-series', `must be "absolute" or "signed", got ${JSON.stringify(raw)}`, 'signed = the exact series of TF Privacy compute_rdp / Opacus (default); absolute = the upper bound of Google dp_accounting >= 0.5.');
  return raw;
}

interface CommonOpts {
  fractionalSeries?: unknown;
  sampleRate?: unknown;
  steps?: unknown;
  delta?: unknown;
  orders?: unknown;
  conversion?: unknown;
  json?: boolean;
}

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The options both subcommands share, after their own (help lists them in this order). */
function withAccountingOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--steps <T>', 'number of steps (integer >= 1)')
    .requiredOption('--delta <d>', 'target δ in (0, 1)')
    .option('--orders <list>', 'comma-separated RDP orders > 1 (default: 1.1..10.9, 11..63, 128, 256, 512, 1024)')
    .option('--conversion <kind>', 'improved | classic', 'improved')
    .option('--fractional-series <kind>', 'signed (exact, as TF Privacy / Opacus) | absolute (upper bound, as dp_accounting >= 0.5) series at fractional orders', 'signed')
    .option('--json', 'print one JSON object');
}

/** Parses the shared options in the order a bad one is reported. */
function parseAccounting(opts: CommonOpts) {
  return {
    steps: parseSteps(opts.steps),
    delta: parseDelta(opts.delta),
    orders: parseOrders(opts.orders),
    conversion: parseConversion(opts.conversion),
    fractionalSeries: parseSeries(opts.fractionalSeries),
  };
}

export function registerDpCommands(program: Command): void {
  const dp = program.command('dp').description('Differential privacy accounting (RDP of the Poisson-sampled Gaussian mechanism)');

  const epsilonCmd = dp.command('epsilon')
    .description('ε spent by `steps` applications of the sampled Gaussian mechanism')
    .requiredOption('--sample-rate <q>', 'Poisson sampling rate q in (0, 1]')
    .requiredOption('--noise-multiplier <z>', 'noise std / L2 sensitivity, > 0');
  withAccountingOptions(epsilonCmd)
    .action((opts: CommonOpts & { noiseMultiplier?: unknown }) => {
      const sampleRate = parseSampleRate(opts.sampleRate);
      const noiseMultiplier = parseNoise(opts.noiseMultiplier);
      const { steps, delta, orders, conversion, fractionalSeries } = parseAccounting(opts);
      const r = epsilonFor({ sampleRate, noiseMultiplier, steps, delta, orders, conversion, fractionalSeries });
      if (opts.json) {
        write(JSON.stringify({ epsilon: r.epsilon, order: r.order, conversion, delta, steps, sampleRate, noiseMultiplier }));
      } else {
        write(`epsilon = ${formatEpsilon(r.epsilon)} at delta = ${delta} (optimal order ${r.order}, ${conversion} conversion; q = ${sampleRate}, z = ${noiseMultiplier}, ${steps} steps; --json prints full precision)`);
      }
    });

  const noiseCmd = dp.command('noise')
    .description('smallest noise multiplier meeting a target ε (bisection, relative tolerance 1e-12)')
    .requiredOption('--epsilon <e>', 'target ε > 0')
    .requiredOption('--sample-rate <q>', 'Poisson sampling rate q in (0, 1]');
  withAccountingOptions(noiseCmd)
    .action((opts: CommonOpts & { epsilon?: unknown }) => {
      const target = parseEpsilon(opts.epsilon);
      const sampleRate = parseSampleRate(opts.sampleRate);
      const { steps, delta, orders, conversion, fractionalSeries } = parseAccounting(opts);
      const r = noiseMultiplierFor({ epsilon: target, sampleRate, steps, delta, orders, conversion, fractionalSeries });
      if (opts.json) {
        write(JSON.stringify({ noiseMultiplier: r.noiseMultiplier, epsilon: r.epsilon, targetEpsilon: target, order: r.order, conversion, delta, steps, sampleRate }));
      } else {
        write(`noise multiplier = ${r.noiseMultiplier} gives epsilon = ${formatEpsilon(r.epsilon)} <= ${target} at delta = ${delta} (optimal order ${r.order}, ${conversion} conversion; q = ${sampleRate}, ${steps} steps)`);
      }
    });
}
