import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FedtwinError } from '@fedtwin/errors';
import type { DashboardSnapshot, ViewServer } from '@fedtwin/dashboard';

export interface SimServeInit {
  listen: string;
  token?: string;
  outDir: string;
}

/** How long one look at the aggregator may take before the last good answer is served instead. */
const UPSTREAM_TIMEOUT_MS = 2000;

/**
 * `fedtwin sim --serve HOST:PORT`: for the whole run, the aggregator's dashboard at `/` and its Prometheus
 * metrics at `/metrics`. The aggregator (a child process, started after the data is prepared, gone before the
 * report is written) serves both on a free loopback port it writes into listening.json; this server forwards
 * to it while it runs and keeps its last answers after it left, adding the report once the sim wrote one.
 * Before the aggregator is up, /metrics has only `fedtwin_sim_aggregator_up 0`.
 */
export async function serveSim(opts: SimServeInit): Promise<ViewServer> {
  // In a worker thread: the sim trains its baselines in this thread, which would leave the page and /metrics
  // unanswered for seconds at a time.
  const worker = new Worker(new URL('./sim-serve-worker.ts', import.meta.url), { workerData: opts });
  const started = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    worker.once('message', (m: { url?: string; port?: number; error?: { code: string; message: string; hint?: string; details?: Record<string, unknown> } }) => {
      if (m.error) reject(new FedtwinError(m.error.code, m.error.message, { ...(m.error.hint ? { hint: m.error.hint } : {}), ...(m.error.details ? { details: m.error.details } : {}) }));
      else resolve({ url: m.url!, port: m.port! });
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the --serve worker exited (${code}) before it listened`)));
  });
  worker.unref(); // never what keeps the sim alive
  return {
    ...started,
    // The thread's end closes its sockets; a read-only view has nothing to flush.
    close: async () => { await worker.terminate(); },
  };
}

/** The server itself (run in the worker by serveSim). */
export async function startSimProxy(opts: SimServeInit): Promise<ViewServer> {
  const { startViewServer, readReportSummary } = await import('@fedtwin/dashboard');
  const startedAt = Date.now();
  const aggDir = join(opts.outDir, 'aggregator');
  let base: string | undefined;
  let lastSnapshot: DashboardSnapshot | undefined;
  let lastMetrics: { contentType: string; body: string } | undefined;
  let up = false;

  /** The aggregator's HTTP base URL, from this run's listening.json (an older run's file is older than startedAt). */
  const upstream = async (): Promise<string | undefined> => {
    if (base) return base;
    const file = join(aggDir, 'listening.json');
    try {
      if ((await stat(file)).mtimeMs < startedAt - 1000) return undefined;
      const l = JSON.parse(await readFile(file, 'utf8')) as { http?: { dashboard?: string } };
      base = l.http?.dashboard?.replace(/\/$/, '');
    } catch {
      // not written yet
    }
    return base;
  };
  const get = async (path: string): Promise<Response | undefined> => {
    const b = await upstream();
    if (!b) return undefined;
    try {
      const res = await fetch(`${b}${path}`, { signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
      up = res.ok;
      return res.ok ? res : undefined;
    } catch {
      up = false; // gone (finished) or busy: the last answer stands
      return undefined;
    }
  };
  const report = async () => {
    const path = join(opts.outDir, 'report.json');
    const r = await readReportSummary(path);
    return r && r.writtenAt >= startedAt - 1000 ? r : null;
  };

  const refreshSnapshot = async (): Promise<void> => {
    const res = await get('/api/dashboard');
    if (res) lastSnapshot = (await res.json().catch(() => lastSnapshot)) as DashboardSnapshot | undefined;
  };
  const refreshMetrics = async (): Promise<void> => {
    const res = await get('/metrics');
    if (res) lastMetrics = { contentType: res.headers.get('content-type') ?? 'text/plain; version=0.0.4; charset=utf-8', body: await res.text().catch(() => lastMetrics?.body ?? '') };
  };
  // Look at the aggregator every second whether or not anyone asks: its last state (a short federation may be
  // over before the first page load) is what the page and /metrics show once it has left.
  let polling = false;
  const poller = setInterval(() => {
    if (polling) return;
    polling = true;
    void Promise.all([refreshSnapshot(), refreshMetrics()]).finally(() => { polling = false; });
  }, 1000);
  poller.unref();

  const snapshot = async (): Promise<DashboardSnapshot> => {
    await refreshSnapshot();
    const rep = await report();
    const note = !lastSnapshot ? 'the simulation is preparing its data and starting the aggregator'
      : !up && !rep ? 'the federation is over; the simulation trains its baselines and writes the report'
        : undefined;
    return {
      role: 'aggregator', status: null, bytes: {}, ...lastSnapshot,
      at: Date.now(), source: 'sim', report: rep ?? lastSnapshot?.report ?? null, ...(note ? { note } : {}),
    };
  };
  const metrics = async (): Promise<{ contentType: string; body: string }> => {
    await refreshMetrics();
    const own = `# HELP fedtwin_sim_aggregator_up 1 while fedtwin sim --serve reaches its aggregator (the series above are its last answer)\n# TYPE fedtwin_sim_aggregator_up gauge\nfedtwin_sim_aggregator_up ${up ? 1 : 0}\n`;
    return { contentType: lastMetrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', body: `${lastMetrics?.body ?? ''}${own}` };
  };
  const server = await startViewServer({
    listen: opts.listen, ...(opts.token ? { token: opts.token } : {}), field: '--serve', tokenField: 'FEDTWIN_SERVE_TOKEN',
    routes: { snapshot, metrics },
  }).catch((err: unknown) => { clearInterval(poller); throw err; });
  return { ...server, url: server.url, port: server.port, close: async () => { clearInterval(poller); await server.close(); } };
}
