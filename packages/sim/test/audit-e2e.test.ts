import { describe, expect, it, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN, type SimAuditReport } from '@fedtwin/sim';
import { parseCsv } from '@fedtwin/models';

// `fedtwin sim --audit` end to end, small (2 nodes, 2 rounds of 10 epochs, 100 canaries: ~20 s a run on 2 cores).
// The same attack, the same canaries, only DP differs: without DP the members' model memorises the canaries it
// saw and the one-run bound reaches its ceiling for 100 canaries; with DP at ε = 1 it must stay at or below the
// claim. That ceiling (≈ 3.1) is above 1, so a broken DP-SGD (no noise, no clipping) fails the second test.
describe('fedtwin sim --audit (one-run privacy audit, real processes)', () => {
  const dirs: string[] = [];
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

  const run = async (dpArgs: string[]) => {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-audit-'));
    dirs.push(out);
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--generator', 'vae', '--nodes', '2', '--rounds', '2', '--epochs', '10', '--seed', '11', '--audit-canaries', '100', ...dpArgs, '--out', out, '--progress', 'none'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    return { out, report, audit: report.privacy.audit as SimAuditReport, stdout: r.stdout };
  };

  it('DP off: the audit finds a large ε_lower (over 90 % of guesses right; the ceiling for 100 canaries is ≈ 3.1)', async () => {
    const { out, report, audit, stdout } = await run(['--dp', 'off']);
    expect(audit).toMatchObject({ epsilonClaimed: null, canaries: 100, node: 0, confidence: 0.95, delta: 1e-5 });
    expect(audit.method).toMatch(/Steinke, Nasr & Jagielski 2023/);
    expect(audit.epsilonLower).toBeGreaterThan(2);
    expect(audit.epsilonLower).toBeLessThanOrEqual(audit.maxAttainable);
    expect(audit.correct / audit.guesses).toBeGreaterThan(0.9);
    expect(stdout).toMatch(/audit {5}ε_lower = \d+(\.\d+)? at 95 % confidence vs no claim \(DP off\)/);

    // The coins decided what node 0 trained on, and nothing else saw a canary.
    const saved = JSON.parse(await readFile(join(out, 'audit.json'), 'utf8')) as { canaries: Array<{ row: Array<number | string>; included: boolean; score: number }> };
    const key = (row: Array<number | string>) => row.map((v) => Number(v)).join(',');
    const rowsOf = async (f: string) => new Set(parseCsv(await readFile(f, 'utf8')).rows.map(key));
    const node0 = await rowsOf(join(out, 'nodes', '0', 'data.csv'));
    for (const c of saved.canaries) expect(node0.has(key(c.row))).toBe(c.included);
    expect(saved.canaries.filter((c) => c.included).length).toBe(audit.included);
    for (const f of [join(out, 'nodes', '1', 'data.csv'), join(out, 'test.csv')]) {
      const rows = await rowsOf(f);
      expect(saved.canaries.some((c) => rows.has(key(c.row)))).toBe(false);
    }
    expect(report.split.rowsPerNode[0]).toBe(node0.size - audit.included);
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('Empirical privacy audit');
  }, 200_000);

  it('DP on (ε = 1): ε_lower ≤ ε_claimed, where the same canaries could have shown up to the ceiling', async () => {
    const { audit } = await run(['--epsilon', '1']);
    expect(audit.epsilonClaimed).toBeGreaterThan(0);
    expect(audit.epsilonClaimed).toBeLessThanOrEqual(1);
    expect(audit.maxAttainable).toBeGreaterThan(audit.epsilonClaimed!);
    expect(audit.epsilonLower).toBeLessThanOrEqual(audit.epsilonClaimed!);
  }, 200_000);

  it('the marginals generator (the default): DP off, the released counts give node 0\'s canaries away; report, audit.json and output line as for the VAE', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-audit-marginals-'));
    dirs.push(out);
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--nodes', '2', '--seed', '11', '--audit-canaries', '100', '--dp', 'off', '--out', out, '--progress', 'none'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const audit = report.privacy.audit as SimAuditReport;
    expect(report.generator).toBe('marginals');
    expect(audit).toMatchObject({ epsilonClaimed: null, canaries: 100, node: 0, confidence: 0.95, delta: 1e-5 });
    expect(audit.method).toMatch(/Steinke, Nasr & Jagielski 2023/);
    expect(audit.score).toMatch(/released counts/);
    expect(audit.epsilonLower).toBeGreaterThan(2);
    expect(audit.correct / audit.guesses).toBeGreaterThan(0.9);
    expect(r.stdout).toMatch(/audit {5}ε_lower = \d+(\.\d+)? at 95 % confidence vs no claim \(DP off\)/);
    const saved = JSON.parse(await readFile(join(out, 'audit.json'), 'utf8')) as { canaries: Array<{ included: boolean }> };
    expect(saved.canaries.filter((c) => c.included).length).toBe(audit.included);
  }, 200_000);
});
