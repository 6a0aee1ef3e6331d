// Spawns the real `fedtwin` entry point (node packages/cli/src/bin.ts) for the `dp` commands.
import { formatEpsilon } from '../src/format.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { epsilonFor, noiseMultiplierFor } from '@fedtwin/dp';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

// Async so the cases run concurrently (each spawn pays the whole CLI's start-up).
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 50_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const EPS = ['dp', 'epsilon', '--sample-rate', '0.01', '--noise-multiplier', '1.1', '--steps', '10000', '--delta', '1e-5'];
const NOISE = ['dp', 'noise', '--epsilon', '2', '--sample-rate', '0.01', '--steps', '1000', '--delta', '1e-5'];

describe.concurrent('fedtwin dp epsilon', () => {
  it('--json prints one object whose values equal the library result', async () => {
    const r = await run([...EPS, '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual(['conversion', 'delta', 'epsilon', 'noiseMultiplier', 'order', 'sampleRate', 'steps']);
    const lib = epsilonFor({ sampleRate: 0.01, noiseMultiplier: 1.1, steps: 10000, delta: 1e-5 });
    expect(out).toEqual({ epsilon: lib.epsilon, order: lib.order, conversion: 'improved', delta: 1e-5, steps: 10000, sampleRate: 0.01, noiseMultiplier: 1.1 });
    // the exact value for the default orders, by 40-digit direct integration (mpmath quad, see
    // packages/dp/test/numerics.test.ts): 5.631992368681802 at α = 4.7 (dp_accounting's absolute bound: 5.632010670081592)
    expect(Math.abs((out.epsilon as number) - 5.631992368681802) / 5.631992368681802).toBeLessThan(1e-6);
    expect(out.order).toBe(4.7);
  });

  it('--orders, --conversion classic and --fractional-series signed reach the library', async () => {
    const r = await run([...EPS, '--orders', '2,3,4.5,8,16,32', '--conversion', 'classic', '--fractional-series', 'signed', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    const lib = epsilonFor({ sampleRate: 0.01, noiseMultiplier: 1.1, steps: 10000, delta: 1e-5, orders: [2, 3, 4.5, 8, 16, 32], conversion: 'classic', fractionalSeries: 'signed' });
    expect(out.epsilon).toBe(lib.epsilon);
    expect(out.order).toBe(lib.order);
    expect(out.conversion).toBe('classic');
  });

  it('without --json prints one human-readable line, ε to 3 significant digits rounded up (--json keeps full precision)', async () => {
    const r = await run(EPS);
    expect(r.code).toBe(0);
    const lib = epsilonFor({ sampleRate: 0.01, noiseMultiplier: 1.1, steps: 10000, delta: 1e-5 });
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toContain(`epsilon = ${formatEpsilon(lib.epsilon)} at`);
    expect(Number(/epsilon = ([\d.]+)/.exec(r.stdout)![1])).toBeGreaterThanOrEqual(lib.epsilon);
    expect(r.stdout).not.toContain(String(lib.epsilon));
    expect(r.stdout).toContain(`order ${lib.order}`);
  });
});

describe.concurrent('fedtwin dp noise', () => {
  it('--json gives the smallest noise multiplier and the ε it achieves', async () => {
    const r = await run([...NOISE, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['noiseMultiplier', 'epsilon', 'order', 'conversion', 'delta', 'steps', 'sampleRate']) expect(out).toHaveProperty(k);
    const lib = noiseMultiplierFor({ epsilon: 2, sampleRate: 0.01, steps: 1000, delta: 1e-5 });
    expect(out.noiseMultiplier).toBe(lib.noiseMultiplier);
    expect(out.epsilon).toBe(lib.epsilon);
    expect(out.epsilon as number).toBeLessThanOrEqual(2);
    expect(out).toMatchObject({ order: lib.order, conversion: 'improved', delta: 1e-5, steps: 1000, sampleRate: 0.01 });
  });
});

describe.concurrent('bad arguments exit with code 2 and name the argument', () => {
  const withArg = (base: string[], flag: string, value: string) => {
    const i = base.indexOf(flag);
    return [...base.slice(0, i + 1), value, ...base.slice(i + 2)];
  };
  // one case per class: q outside (0,1], non-number, z <= 0, δ outside (0,1), non-integer steps, order <= 1,
  // unknown conversion, missing required option (epsilon and noise), target ε <= 0
  it.each([
    ['--sample-rate', withArg(EPS, '--sample-rate', '1.5')],
    ['--sample-rate', withArg(EPS, '--sample-rate', 'abc')],
    ['--noise-multiplier', withArg(EPS, '--noise-multiplier', '-1')],
    ['--delta', withArg(EPS, '--delta', '1')],
    ['--steps', withArg(EPS, '--steps', '2.5')],
    ['--orders', [...EPS, '--orders', '2,1,3']],
    ['--conversion', [...EPS, '--conversion', 'fancy']],
    ['--noise-multiplier', EPS.filter((_, i) => i !== 4 && i !== 5)], // missing required option
    ['--epsilon', withArg(NOISE, '--epsilon', '-1')],
    ['--epsilon', NOISE.filter((_, i) => i !== 2 && i !== 3)],
  ])('%s: %j', async (flag, args) => {
    const r = await run([...args, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(flag);
    expect(r.stdout).toBe('');
  });
});
