// Issue 14 item 4, `fedtwin sim --seeds K`: K whole runs (real processes), then one report whose figures are
// the runs' means with 95 % confidence intervals beside them, and each run's own outputs in OUT/seed-<s>/.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN } from '@fedtwin/sim';

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

describe('fedtwin sim --seeds', () => {
  it('two runs (seeds 5 and 6): report.json holds the means and seeds.ci95 the intervals; each run keeps its own outputs', { timeout: 420_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-seeds-'));
    dirs.push(out);
    const r = spawnSync(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--dataset', 'pima_diabetes', '--nodes', '2', '--seed', '5', '--seeds', '2', '--out', out, '--progress', 'none'], { encoding: 'utf8', timeout: 400_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 runs \(seeds 5, 6\), mean \[95 % CI\]/);
    expect(r.stdout).toMatch(/TSTR AUC federated \(logistic regression\)\s+\d\.\d{3} \[-?\d\.\d{3}, \d\.\d{3}\]/);
    expect((await readdir(out)).sort()).toEqual(['report.html', 'report.json', 'seed-5', 'seed-6']);
    const runs = await Promise.all([5, 6].map(async (s) => JSON.parse(await readFile(join(out, `seed-${s}`, 'report.json'), 'utf8'))));
    for (const s of [5, 6]) expect(await readdir(join(out, `seed-${s}`))).toEqual(expect.arrayContaining(['synthetic.csv', 'test.csv', 'split.json', 'report.json']));
    const summary = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const fed = runs.map((x) => x.utility.tstrAuc.federated as number);
    expect(summary.utility.tstrAuc.federated).toBeCloseTo((fed[0]! + fed[1]!) / 2, 12);
    const iv = summary.seeds.ci95.utility.tstrAuc.federated;
    expect(iv.n).toBe(2);
    // t(0.975, 1) = 12.706: half-width 12.706 · sd / √2 with sd = |a − b| / √2
    expect(iv.hi - iv.mean).toBeCloseTo(12.706 * Math.abs(fed[0]! - fed[1]!) / 2, 9);
    expect(summary.seeds.values).toEqual([5, 6]);
    expect(summary.dataset).toBe('pima_diabetes');
    expect(await readFile(join(out, 'report.html'), 'utf8')).toMatch(/95 % CI/);
  });

  it('refuses --seeds 1 and --seeds with --serve before running anything', () => {
    for (const args of [['--seeds', '1'], ['--seeds', '2', '--serve', '127.0.0.1:0'], ['--seeds', 'x']]) {
      const r = spawnSync(process.execPath, [CLI_BIN, 'sim', ...args, '--out', join(tmpdir(), 'fedtwin-seeds-never')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--seeds/);
    }
  });
});
