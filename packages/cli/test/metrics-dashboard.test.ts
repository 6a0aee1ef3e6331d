// Issue 15 items 2 and 3 on real daemons: an aggregator and two nodes as processes (BFV, record-level DP), each
// with Prometheus metrics and a dashboard; /metrics scraped while rounds run and after; the dashboard's JSON;
// both pages opened in a real browser (Debian's Chromium via playwright-core; skipped, saying so, without it):
// the node's own budget and contributions mid-run, the aggregator's members and its latest report; a public bind
// without a token refused at start, and the token enforced with one.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Daemon, type LogEvent } from '@fedtwin/sim';
import { createConsortium, freePort, runCli, type Consortium } from '../../../test/helpers/consortium.ts';
import { CHROMIUM, launchChromium, saveScreenshot, warnIfNoChromium } from '../../../test/helpers/browser.ts';

/** One sample's value from Prometheus exposition text: the first line whose series starts with `series`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series) && !l.startsWith('#'));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
const scrape = async (url: string, headers: Record<string, string> = {}): Promise<string> => {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  expect(res.status, url).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
};

let c: Consortium;
let agg: { daemon: Daemon; events: LogEvent[]; address: string };
const nodes: Array<{ daemon: Daemon; events: LogEvent[] }> = [];
let aggMetrics = '';
let aggDashboard = '';
let nodeUrl = '';
let duringRun = '';
let nodeDuringRun = '';
let nodeSnapshot: { role: string; status: { contributions: number; privacy: unknown[] } } | undefined;

warnIfNoChromium('metrics-dashboard.test.ts');
type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;
let browser: Browser | undefined;
/** What node 0's page showed mid-run, in a real browser (read while node 1 was paused, so node 0 was up). */
let nodePage: { budget: string[][]; contributions: string; ledgerTitle: string; aggSectionsHidden: boolean; errors: string[] } | undefined;
/** A report.json as `fedtwin sim` writes it (the fields the dashboard reads), named in the aggregator's config. */
const REPORT = {
  dataset: 'breast_cancer_wdbc', nodes: 2, rounds: 2,
  fidelity: { mean: 0.8964, correlationDistance: 0.0712 },
  utility: { trtrAuc: 0.9941, tstrAuc: { federated: 0.9823, localOnly: 0.7968, centralized: 0.9931 } },
  privacy: { mode: 'record', epsilon: 7.9999, budget: 8 },
};

async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { timeout: 15_000 });
  return { page, errors };
}

beforeAll(async () => {
  c = await createConsortium({ nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 120, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
  const [mPort, dPort, nPort] = [await freePort(), await freePort(), await freePort()];
  aggMetrics = `http://127.0.0.1:${mPort}/metrics`;
  aggDashboard = `http://127.0.0.1:${dPort}`;
  nodeUrl = `http://127.0.0.1:${nPort}`;
  const config = JSON.parse(await readFile(c.aggConfig, 'utf8')) as Record<string, unknown>;
  await writeFile(c.aggConfig, JSON.stringify({ ...config, metrics: { listen: `127.0.0.1:${mPort}` }, dashboard: { listen: `127.0.0.1:${dPort}`, report: 'report.json' } }));
  if (CHROMIUM) browser = await launchChromium();
  agg = await c.startAggregator();
  const listening = JSON.parse(await readFile(join(c.dir, 'agg-data', 'listening.json'), 'utf8')) as { http?: { metrics?: string; dashboard?: string } };
  expect(listening.http).toEqual({ metrics: aggMetrics, dashboard: `${aggDashboard}/` });
  // node 0: page and metrics on one address (the same listen string: one server)
  await c.writeNodeConfig(0, { metrics: { listen: `127.0.0.1:${nPort}` }, dashboard: { listen: `127.0.0.1:${nPort}` } });
  await c.writeNodeConfig(1);
  nodes.push(c.startNode(0), c.startNode(1));
  // While round 1 is open (its aggregate needs both members' uploads, which take seconds of training).
  await waitFor('round 1 to open', async () => agg.events.find((e) => e.event === 'round-open'), 120_000, 100);
  duringRun = await scrape(aggMetrics);
  // Node 1 paused (SIGSTOP) before it can send round 2: no round 2 aggregate, so node 0 stays up for its page.
  nodes[1]!.daemon.child.kill('SIGSTOP');
  try {
    await waitFor('node 0 to contribute', async () => nodes[0]!.events.find((e) => e.event === 'contributed'), 120_000, 100);
    nodeDuringRun = await scrape(`${nodeUrl}/metrics`);
    nodeSnapshot = await (await fetch(`${nodeUrl}/api/dashboard`, { signal: AbortSignal.timeout(10_000) })).json() as typeof nodeSnapshot;
    if (browser) {
      const { page, errors } = await openPage(`${nodeUrl}/`);
      await page.waitForSelector('#budget tbody tr', { timeout: 30_000 });
      await page.waitForFunction(() => Number((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('contributions')?.textContent ?? '0') >= 1, undefined, { timeout: 30_000, polling: 250 });
      await saveScreenshot(page, 'node-dashboard.png');
      nodePage = {
        budget: await page.$$eval('#budget tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? ''))),
        contributions: (await page.textContent('#contributions')) ?? '',
        ledgerTitle: (await page.textContent('#ledger-title')) ?? '',
        aggSectionsHidden: await page.locator('#agg-members').isHidden(),
        errors,
      };
      await page.close();
    }
  } finally {
    nodes[1]!.daemon.child.kill('SIGCONT');
  }
  await waitFor('the federation to finish', async () => {
    if (agg.daemon.child.exitCode !== null) throw new Error(`aggregator exited: ${agg.daemon.stderrTail()}`);
    return agg.events.find((e) => e.event === 'finished');
  }, 300_000, 200);
  const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
  expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
}, 420_000);
afterAll(async () => {
  await browser?.close();
  await c?.cleanup();
});

describe('aggregator metrics (prom-client)', () => {
  it('has fedtwin_ series once the first round is open', () => {
    expect(sample(duringRun, 'fedtwin_rounds_opened_total')).toBeGreaterThanOrEqual(1);
    expect(sample(duringRun, 'fedtwin_wire_bytes_total{protocol="join",direction="in"')).toBeGreaterThan(0);
    expect(sample(duringRun, 'fedtwin_process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(duringRun).toMatch(/^# TYPE fedtwin_round_duration_seconds histogram$/m);
  });

  it('counts the finished federation: rounds, durations, contributions, ε per member, ledger, bytes per protocol', async () => {
    const text = await scrape(aggMetrics);
    expect(sample(text, 'fedtwin_rounds_opened_total')).toBe(2);
    expect(sample(text, 'fedtwin_rounds_closed_total{outcome="aggregated"')).toBe(2);
    expect(sample(text, 'fedtwin_rounds_closed_total{outcome="failed"')).toBe(0);
    expect(sample(text, 'fedtwin_round_duration_seconds_count')).toBe(2);
    expect(sample(text, 'fedtwin_round_duration_seconds_sum')).toBeGreaterThan(0);
    expect(sample(text, 'fedtwin_model_version')).toBe(2);
    for (const id of c.nodeIds) {
      expect(sample(text, `fedtwin_contributions_total{member="${id}"`)).toBe(2);
      expect(sample(text, `fedtwin_refusals_total{member="${id}"`)).toBe(0);
      const spent = sample(text, `fedtwin_privacy_epsilon_spent{member="${id}"`)!;
      expect(spent).toBeGreaterThan(0);
      expect(spent).toBeLessThanOrEqual(sample(text, `fedtwin_privacy_epsilon_budget{member="${id}"`)!);
    }
    expect(sample(text, 'fedtwin_ledger_entries')).toBeGreaterThan(4);
    expect(sample(text, 'fedtwin_ledger_checkpoint_cosignatures')).toBeGreaterThanOrEqual(1);
    const upload = [...text.matchAll(/^fedtwin_wire_bytes_total\{protocol="([a-z-]+)",direction="in".*\} (\d+)$/gm)].map((m) => ({ protocol: m[1], bytes: Number(m[2]) }));
    // The updates are the bulk of what comes in.
    expect(upload.sort((a, b) => b.bytes - a.bytes)[0]!.bytes).toBeGreaterThan(10_000);
    // Every series name follows the convention.
    const names = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`));
    for (const n of names) {
      expect(n, n).toMatch(/^fedtwin_/);
      if (n.endsWith(' counter')) expect(n, n).toMatch(/_total counter$/);
    }
  });

  it('serves its dashboard JSON (members, rounds, ledger, bytes) read-only', async () => {
    const snap = await (await fetch(`${aggDashboard}/api/dashboard`)).json() as { role: string; status: { members: Array<{ contributions: number; epsilon: { spent: number } }>; rounds: unknown[]; ledger: { size: number } }; bytes: Record<string, unknown> };
    expect(snap.role).toBe('aggregator');
    expect(snap.status.members.map((m) => m.contributions)).toEqual([2, 2]);
    expect(snap.status.members.every((m) => m.epsilon.spent > 0)).toBe(true);
    expect(snap.status.rounds).toHaveLength(2);
    expect(snap.status.ledger.size).toBeGreaterThan(4);
    expect(Object.keys(snap.bytes)).toContain('join');
    expect((await fetch(`${aggDashboard}/`)).status).toBe(200);
    expect((await fetch(`${aggDashboard}/api/dashboard`, { method: 'POST', body: '{}' })).status).toBe(405);
  });
});

describe('node metrics and dashboard', () => {
  it('shows its own contributions, ε and replica on one address', () => {
    expect(sample(nodeDuringRun, 'fedtwin_contributions_total')).toBeGreaterThanOrEqual(1);
    expect(sample(nodeDuringRun, 'fedtwin_privacy_epsilon_spent{mode="record"')).toBeGreaterThan(0);
    expect(sample(nodeDuringRun, 'fedtwin_privacy_epsilon_budget{mode="record"')).toBe(8);
    expect(sample(nodeDuringRun, 'fedtwin_ledger_entries')).toBeGreaterThan(0);
    expect(sample(nodeDuringRun, 'fedtwin_wire_bytes_total{protocol="update",direction="out"')).toBeGreaterThan(1000);
    expect(nodeSnapshot?.role).toBe('node');
    expect(nodeSnapshot?.status.contributions).toBeGreaterThanOrEqual(1);
    expect(nodeSnapshot?.status.privacy.length).toBeGreaterThan(0);
  });
});

describe('the dashboards in a real browser', () => {
  it.skipIf(!CHROMIUM)('node 0\'s page mid-run: its own ε against its budget, its contributions, its verified replica; no aggregator sections', () => {
    expect(nodePage, 'node 0\'s page was read in beforeAll').toBeDefined();
    const [row] = nodePage!.budget;
    expect(row![0]).toBe('record');
    expect(Number(row![1])).toBeGreaterThan(0);
    expect(Number(row![1])).toBeLessThanOrEqual(8);
    expect(row![2]).toBe('8');
    expect(Number(nodePage!.contributions)).toBeGreaterThanOrEqual(1);
    expect(nodePage!.ledgerTitle).toMatch(/replica/);
    expect(nodePage!.aggSectionsHidden).toBe(true);
    expect(nodePage!.errors).toEqual([]);
  });

  it.skipIf(!CHROMIUM)('the aggregator\'s page shows the latest report once a sim wrote one, beside the finished federation', async () => {
    const { page, errors } = await openPage(`${aggDashboard}/`);
    try {
      await page.waitForSelector('#members tbody tr', { timeout: 30_000 });
      expect(await page.locator('#report-section').isHidden()).toBe(true); // no report.json yet
      await writeFile(join(c.dir, 'report.json'), JSON.stringify(REPORT));
      await page.waitForSelector('#report-section', { state: 'visible', timeout: 30_000 });
      await saveScreenshot(page, 'aggregator-dashboard-report.png');
      const kv = await page.$$eval('#report dt', (dts) => dts.map((dt) => [dt.textContent ?? '', dt.nextElementSibling?.textContent ?? '']));
      const get = (k: string) => kv.find(([key]) => key.startsWith(k))?.[1];
      expect(get('data set')).toBe('breast_cancer_wdbc (2 nodes, 2 rounds)');
      expect(get('fidelity')).toBe('0.896');
      expect(get('correlation distance')).toBe('0.071');
      expect(get('TRTR AUC')).toBe('0.994');
      expect(get('privacy')).toMatch(/^record-level, ε 8(\.0+)? of 8$/);
      const rows = await page.$$eval('#members tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
      expect(rows.map((r) => r[4])).toEqual(['2', '2']);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('tokens', () => {
  it('refuses to start an aggregator whose metrics listen beyond loopback without a token (HTTP_TOKEN_REQUIRED, exit 2)', async () => {
    const config = JSON.parse(await readFile(c.aggConfig, 'utf8')) as Record<string, unknown>;
    const path = join(c.dir, 'public-metrics.json');
    await writeFile(path, JSON.stringify({ ...config, dataDir: 'agg-public', metrics: { listen: '0.0.0.0:0' }, dashboard: undefined }));
    const r = await runCli(['aggregator', 'start', '--config', path], 30_000);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/HTTP_TOKEN_REQUIRED/);
    expect(r.stderr).toMatch(/metrics\.listen 0\.0\.0\.0:0/);
  });

  it('a typo in the metrics section is named with the valid key', async () => {
    const config = JSON.parse(await readFile(c.aggConfig, 'utf8')) as Record<string, unknown>;
    const path = join(c.dir, 'typo.json');
    await writeFile(path, JSON.stringify({ ...config, metrics: { listn: '127.0.0.1:9464' } }));
    const r = await runCli(['aggregator', 'start', '--config', path], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/did you mean "listen"/);
  });

  it('with dashboard.token on a public bind: /metrics answers 401 without the token and 200 with it', async () => {
    const config = JSON.parse(await readFile(c.aggConfig, 'utf8')) as Record<string, unknown>;
    const port = await freePort();
    const token = 'test-token-0123456789abcdef';
    const path = join(c.dir, 'public-token.json');
    // A fresh dataDir and ledger: the finished federation's state stays as it is; this daemon only has to come up.
    await writeFile(path, JSON.stringify({ ...config, dataDir: 'agg-token', ledgerDir: 'agg-token/ledger', metrics: { listen: `0.0.0.0:${port}` }, dashboard: { listen: `0.0.0.0:${port}`, token } }));
    const { startDaemon, stopDaemon } = await import('@fedtwin/sim');
    const d = startDaemon('aggregator', ['aggregator', 'start', '--config', path], () => undefined);
    try {
      await waitFor('the public aggregator to listen', async () => {
        if (d.child.exitCode !== null) throw new Error(`aggregator exited: ${d.stderrTail()}`);
        return readFile(join(c.dir, 'agg-token', 'listening.json'), 'utf8').then(() => true, () => undefined);
      }, 60_000, 100);
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      expect((await fetch(`${url}/api/dashboard`, { headers: { Authorization: 'Bearer nope-nope-nope-nope' } })).status).toBe(401);
      const ok = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^fedtwin_rounds_opened_total\{role="aggregator"\} 0$/m);
    } finally {
      await stopDaemon(d, 3000);
    }
  });
});
