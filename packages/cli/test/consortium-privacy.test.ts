// Issue 13 items 4 and 9 through the real `fedtwin` entry point: DP on unless said otherwise, and no
// site-level DP over plaintext aggregation.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
const dir = mkdtempSync(join(tmpdir(), 'fedtwin-consortium-privacy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedtwin consortium init: privacy', () => {
  it('writes record-level DP at ε = 8, δ = 1e-5 by default; --privacy off is written as asked, with a warning', () => {
    const out = join(dir, 'default.yaml');
    const r = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(parse(readFileSync(out, 'utf8')).privacy).toEqual({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 });
    expect(r.stderr).toBe('');
    const off = join(dir, 'off.yaml');
    const o = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--privacy', 'off', '--out', off]);
    expect(o.code, o.stderr).toBe(0);
    expect(parse(readFileSync(off, 'utf8')).privacy.mode).toBe('off');
    expect(o.stderr).toMatch(/warning: this manifest has no differential privacy/);
  });

  it('refuses site or both with --plaintext (exit 2, nothing written), with the figures and a hint', () => {
    for (const mode of ['site', 'both']) {
      const out = join(dir, `plain-${mode}.yaml`);
      const r = run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--plaintext', '--privacy', mode, '--rounds', '50', '--out', out]);
      expect(r.code, mode).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`error \\[CONSORTIUM_INVALID\\]: .*privacy\\.mode "${mode}" needs secure aggregation.*per visible update`));
      expect(r.stderr).toMatch(/hint: use secureAggregation\.scheme "bfv"/);
      expect(existsSync(out)).toBe(false);
    }
    expect(run(['consortium', 'init', '--members', `${A},${B}`, '--aggregator', AGG, '--plaintext', '--privacy', 'record', '--out', join(dir, 'plain-record.yaml')]).code).toBe(0);
  });
});
