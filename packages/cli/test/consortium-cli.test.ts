// Spawns the real `fedtwin` entry point for `consortium init` and `consortium hash`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const A = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const B = '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7';
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const dir = mkdtempSync(join(tmpdir(), 'fedtwin-consortium-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedtwin consortium', () => {
  it('init writes a manifest whose hash `consortium hash` prints back', () => {
    const out = join(dir, 'consortium.yaml');
    const init = run(['consortium', 'init', '--members', `St Anne=${A},${B}`, '--aggregator', AGG, '--id', 'demo', '--rounds', '4', '--out', out, '--json']);
    expect(init.code, init.stderr).toBe(0);
    const { manifestHash } = JSON.parse(init.stdout) as { manifestHash: string };
    expect(manifestHash).toMatch(/^[0-9a-f]{64}$/);
    const m = parse(readFileSync(out, 'utf8'));
    // The default scheme is pairwise masking (issue 16), written into the file with its pinned threshold.
    expect(m).toMatchObject({ consortium: 'demo', aggregator: AGG, members: [{ peerId: A, name: 'St Anne' }, { peerId: B }], rounds: { total: 4, quorum: 2 }, secureAggregation: { scheme: 'secagg', threshold: 2 }, privacy: { mode: 'record' } });
    expect(m.secureAggregation.keyHolder).toBeUndefined();
    // Single-key BFV on request, its key holder pinned.
    const bfvOut = join(dir, 'consortium-bfv.yaml');
    const bfv = run(['consortium', 'init', '--members', `St Anne=${A},${B}`, '--aggregator', AGG, '--id', 'demo', '--aggregation', 'bfv', '--out', bfvOut]);
    expect(bfv.code, bfv.stderr).toBe(0);
    expect(parse(readFileSync(bfvOut, 'utf8'))).toMatchObject({ secureAggregation: { scheme: 'bfv', keyHolder: A } });
    const hash = run(['consortium', 'hash', out]);
    expect(hash.code).toBe(0);
    expect(hash.stdout.trim()).toBe(manifestHash);
    // A second init to the same file needs --force.
    const again = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--force/);
  });

  it('init --generator marginals pins the marginals generator with its 3 rounds; with site-level DP it is refused', () => {
    const out = join(dir, 'marginals.yaml');
    const init = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--generator', 'marginals', '--out', out]);
    expect(init.code, init.stderr).toBe(0);
    expect(parse(readFileSync(out, 'utf8'))).toMatchObject({ model: { kind: 'marginals', seed: 42 }, rounds: { total: 3 }, privacy: { mode: 'record' } });
    const site = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--generator', 'marginals', '--privacy', 'site', '--out', join(dir, 'y.yaml')]);
    expect(site.code).toBe(2);
    expect(site.stderr).toMatch(/CONSORTIUM_INVALID.*privacy\.mode/);
    expect(run(['consortium', 'init', '--members', A, '--aggregator', AGG, '--generator', 'gan', '--out', join(dir, 'z.yaml')]).stderr).toMatch(/CLI_BAD_ARGUMENT/);
  });

  it('init --calibrate pins the VAE\'s column release (model.calibrate); refused with site-level DP or the marginals generator', () => {
    const out = join(dir, 'calibrate.yaml');
    const init = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--calibrate', '--out', out]);
    expect(init.code, init.stderr).toBe(0);
    expect(parse(readFileSync(out, 'utf8'))).toMatchObject({ model: { kind: 'vae', calibrate: true }, rounds: { total: 5 }, privacy: { mode: 'record' } });
    const site = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--calibrate', '--privacy', 'site', '--out', join(dir, 'c1.yaml')]);
    expect(site.code).toBe(2);
    expect(site.stderr).toMatch(/CONSORTIUM_INVALID.*model\.calibrate/);
    expect(run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--calibrate', '--generator', 'marginals', '--out', join(dir, 'c2.yaml')]).stderr).toMatch(/CLI_BAD_ARGUMENT/);
  });

  it('bad input: exit 2 naming the field', () => {
    const r = run(['consortium', 'init', '--members', `${A},${A}`, '--aggregator', AGG, '--out', join(dir, 'x.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONSORTIUM_INVALID.*members.*listed twice/);
    // One member under the masking default: refused with the way out.
    const one = run(['consortium', 'init', '--members', A, '--aggregator', AGG, '--out', join(dir, 'one.yaml')]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/CLI_BAD_ARGUMENT.*at least 2/);
    expect(one.stderr).toMatch(/--aggregation bfv/);
    expect(run(['consortium', 'init', '--members', A, '--aggregator', AGG, '--aggregation', 'bfv', '--out', join(dir, 'one.yaml')]).code).toBe(0);
    const missing = run(['consortium', 'hash', join(dir, 'none.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/CONSORTIUM_NOT_FOUND/);
  });
});
