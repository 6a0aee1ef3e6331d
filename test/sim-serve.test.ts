// `fedtwin sim --serve HOST:PORT` (issue 15 items 3 and 7), scripted as an operator would: during a real sim (an
// aggregator and two nodes as processes) /metrics has a fedtwin_ series once the first round is open, and the
// dashboard, opened in a real browser (Debian's Chromium driven by playwright-core), shows the members, a round
// count and ε figures. Screenshots go to the test's temp dir and to .ci/screenshots/ (gitignored) when it can be
// created. Without Chromium the browser test is skipped, saying so.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, waitFor } from '@fedtwin/sim';
import { freePort } from './helpers/consortium.ts';
import { CHROMIUM, launchChromium, saveScreenshot, warnIfNoChromium } from './helpers/browser.ts';

warnIfNoChromium('sim-serve.test.ts');

let out: string;
let url: string;
let sim: ChildProcess;
let stderr = '';
let exited: Promise<number | null>;

const metricsText = async (): Promise<string | undefined> => {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined; // not listening yet
  }
};

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'fedtwin-sim-serve-'));
  url = `http://127.0.0.1:${await freePort()}`;
  // Five short rounds: long enough for a browser to watch a few of them on a loaded machine.
  sim = spawn(process.execPath, [CLI_BIN, 'sim', '--forest-trees', '5', '--nodes', '2', '--rounds', '5', '--epochs', '1', '--seed', '3', '--out', join(out, 'sim'), '--progress', 'lines', '--timeout', '240', '--serve', url.slice('http://'.length)], { stdio: ['ignore', 'pipe', 'pipe'] });
  sim.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-20_000); });
  sim.stdout!.resume();
  exited = new Promise((resolve) => sim.once('exit', (code) => resolve(code)));
  // Until its aggregator is up (data prepared, daemon started): the tests below then time the federation only.
  await waitFor('the sim\'s aggregator to be up (fedtwin_sim_aggregator_up 1)', async () => {
    if (sim.exitCode !== null) throw new Error(`sim exited ${sim.exitCode}: ${stderr}`);
    return (await metricsText())?.includes('\nfedtwin_sim_aggregator_up 1') ? true : undefined;
  }, 55_000, 250);
}, 60_000);
// The sim ends by itself (its baselines and report take a while after the federation) with code 0, and its
// server with it.
afterAll(async () => {
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 150_000))]);
  if (code === 'timeout') sim.kill('SIGKILL');
  const closed = code === 'timeout' ? undefined : await metricsText();
  await rm(out, { recursive: true, force: true });
  expect(code, stderr).toBe(0);
  expect(closed).toBeUndefined();
}, 160_000);

describe('fedtwin sim --serve', () => {
  it('serves a fedtwin_ metric at /metrics once the first round is open', async () => {
    const text = await waitFor('a round to open (fedtwin_rounds_opened_total ≥ 1)', async () => {
      if (sim.exitCode !== null) throw new Error(`sim exited ${sim.exitCode}: ${stderr}`);
      const t = await metricsText();
      return t && /^fedtwin_rounds_opened_total\{[^}]*\} [1-9]/m.test(t) ? t : undefined;
    }, 55_000, 250);
    expect(text).toMatch(/^fedtwin_[a-z_]+(\{[^}]*\})? \d/m);
    expect(text).toMatch(/^fedtwin_wire_bytes_total\{protocol="join",direction="in",role="aggregator"\} [1-9]/m);
    expect(text).toMatch(/^fedtwin_sim_aggregator_up 1$/m);
    expect(stderr).toContain(`dashboard on ${url}/`);
  }, 60_000);

  it.skipIf(!CHROMIUM)('shows the federation in a real browser: members, rounds, ε (screenshots)', async () => {
    const shots = join(out, 'screenshots');
    await mkdir(shots, { recursive: true });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      await page.goto(`${url}/`, { timeout: 15_000 });
      const snap = (name: string) => saveScreenshot(page, name, [shots]);
      await snap('sim-serve-1-open.png');
      // Until a member has contributed: a round count > 0, both members listed, an ε figure beside them.
      // Runs in the page (this file's types describe Node, not the DOM: the little it reads is typed here).
      await page.waitForFunction(() => {
        type El = { textContent: string | null; children: ArrayLike<El> };
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<El>; getElementById(id: string): El | null } }).document;
        const rows = Array.from(doc.querySelectorAll('#members tbody tr'));
        const rounds = Number(doc.getElementById('rounds-count')?.textContent ?? '0');
        const eps = rows.some((r) => /^\d+(\.\d+)?$/.test(r.children[6]?.textContent ?? ''));
        return rows.length === 2 && rounds > 0 && eps;
      }, undefined, { timeout: 45_000, polling: 250 });
      await page.waitForTimeout(300); // let the charts draw the same data
      await snap('sim-serve-2-rounds.png');
      const rounds = Number(await page.textContent('#rounds-count'));
      expect(rounds).toBeGreaterThan(0);
      const rows = await page.$$eval('#members tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
      expect(rows.map((r) => r[0])).toEqual(['site 0', 'site 1']);
      const eps = rows.map((r) => Number(r[6])).filter((x) => Number.isFinite(x));
      expect(eps.length).toBeGreaterThan(0);
      for (const e of eps) { expect(e).toBeGreaterThan(0); expect(e).toBeLessThanOrEqual(8); }
      expect(rows.map((r) => r[7])).toEqual(['8', '8']);
      // The charts are uPlot's: canvases it drew, no hand-made SVG.
      expect(await page.locator('#rounds-chart .uplot canvas').count()).toBe(1);
      expect(await page.locator('#epsilon-chart .uplot canvas').count()).toBe(1);
      expect(await page.locator('#bytes-chart .uplot canvas').count()).toBe(1);
      expect(Number(await page.textContent('#ledger dd'))).toBeGreaterThan(0);
      expect(pageErrors).toEqual([]);
      const files = await readdir(shots);
      expect(files.sort()).toEqual(['sim-serve-1-open.png', 'sim-serve-2-rounds.png']);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('keeps serving the aggregator\'s last answers after it left, while the sim writes its report', async () => {
    const seen = await waitFor('the aggregator to leave (fedtwin_sim_aggregator_up 0), or the sim to end', async () => {
      if (sim.exitCode !== null) return { ended: true as const };
      const t = await metricsText();
      if (!t?.includes('\nfedtwin_sim_aggregator_up 0')) return undefined;
      const snap = await fetch(`${url}/api/dashboard`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json() as Promise<{ source: string; status: { version: number } | null }>, () => undefined);
      return snap ? { ended: false as const, t, snap } : undefined;
    }, 55_000, 250);
    // A sim whose baselines took less than a poll has closed its server already: nothing left to look at.
    if (seen.ended) return;
    expect(seen.snap.source).toBe('sim');
    expect(seen.snap.status?.version).toBeGreaterThan(0);
    expect(seen.t).toMatch(/^fedtwin_rounds_closed_total\{outcome="aggregated",role="aggregator"\} [1-9]/m);
  }, 60_000);
});
