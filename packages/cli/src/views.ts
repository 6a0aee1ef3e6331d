import { FedtwinError } from '@fedtwin/errors';
import type { DashboardSnapshot, ViewServer } from '@fedtwin/dashboard';
import type { DaemonMetrics } from '@fedtwin/metrics';
import { resolveFrom } from './config.ts';

/** The `metrics:` and `dashboard:` sections of a daemon's config (docs/configuration.md). */
export interface ViewsConfig {
  metrics?: { listen: string; token?: string };
  dashboard?: { listen: string; token?: string; report?: string };
}

type BytesByProtocol = DashboardSnapshot['bytes'];

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One HTTP server to start: its address, token and what it serves. */
interface Planned {
  listen: string;
  token?: string;
  field: string;
  tokenField: string;
  metrics: boolean;
  dashboard: boolean;
}

/**
 * Which servers the config asks for, checked before the daemon does anything else: a bind other machines can
 * reach without a token ends the start here (HTTP_TOKEN_REQUIRED), not after the daemon has joined. The same
 * address for both (both `:0` counts as the same) is one server with the page and /metrics. A token set on
 * either section protects a shared server; a metrics server alone takes `metrics.token`, else `dashboard.token`.
 */
export async function planViews(config: ViewsConfig): Promise<Planned[]> {
  const { parseListen, isLoopback } = await import('@fedtwin/dashboard');
  const plans: Planned[] = [];
  const m = config.metrics;
  const d = config.dashboard;
  if (m && d && m.listen === d.listen) {
    plans.push({ listen: d.listen, token: d.token ?? m.token, field: 'dashboard.listen', tokenField: 'dashboard.token', metrics: true, dashboard: true });
  } else {
    if (d) plans.push({ listen: d.listen, token: d.token, field: 'dashboard.listen', tokenField: 'dashboard.token', metrics: false, dashboard: true });
    if (m) plans.push({ listen: m.listen, token: m.token ?? d?.token, field: 'metrics.listen', tokenField: 'metrics.token (or dashboard.token)', metrics: true, dashboard: false });
  }
  for (const p of plans) {
    if (!isLoopback(parseListen(p.listen, p.field).host) && !p.token) {
      throw new FedtwinError('HTTP_TOKEN_REQUIRED', `${p.field} ${p.listen} is reachable from other machines, and no bearer token is configured`, {
        hint: `set ${p.tokenField} (a random string of at least 16 characters, e.g. the output of openssl rand -hex 24), or listen on 127.0.0.1`,
        details: { field: p.field, listen: p.listen },
      });
    }
  }
  return plans;
}

export interface Views {
  /** The daemon's metrics, when configured: feed it log events and refused requests. */
  metrics: DaemonMetrics | undefined;
  /** Where each view listens (for listening.json and the log). */
  urls: { metrics?: string; dashboard?: string };
  close(): Promise<void>;
}

/** Starts the planned servers for one daemon. `status` is what `fedtwin status --json` shows for it. */
export async function startViews(opts: {
  role: 'aggregator' | 'node';
  plans: Planned[];
  baseDir: string;
  report?: string;
  status: () => Promise<unknown>;
  bytes: () => BytesByProtocol;
  log: Logger;
}): Promise<Views> {
  if (opts.plans.length === 0) return { metrics: undefined, urls: {}, close: async () => {} };
  const [{ startViewServer, readReportSummary }, metricsModule] = await Promise.all([import('@fedtwin/dashboard'), import('@fedtwin/metrics')]);
  const wantsMetrics = opts.plans.some((p) => p.metrics);
  const metrics: DaemonMetrics | undefined = !wantsMetrics ? undefined
    : opts.role === 'aggregator'
      ? metricsModule.createAggregatorMetrics({ status: opts.status as () => Promise<import('@fedtwin/metrics').AggregatorView>, bytes: opts.bytes })
      : metricsModule.createNodeMetrics({ status: opts.status as () => Promise<import('@fedtwin/metrics').NodeView>, bytes: opts.bytes });
  const reportPath = opts.report ? resolveFrom(opts.baseDir, opts.report) : undefined;
  const snapshot = async (): Promise<DashboardSnapshot> => ({
    role: opts.role, at: Date.now(), status: await opts.status(), bytes: opts.bytes(),
    report: reportPath ? await readReportSummary(reportPath) : null, source: 'daemon',
  });
  const servers: ViewServer[] = [];
  const urls: Views['urls'] = {};
  try {
    for (const p of opts.plans) {
      const server = await startViewServer({
        listen: p.listen, ...(p.token ? { token: p.token } : {}), field: p.field, tokenField: p.tokenField, log: opts.log,
        routes: { ...(p.dashboard ? { snapshot } : {}), ...(p.metrics && metrics ? { metrics: () => metrics.render() } : {}) },
      });
      servers.push(server);
      if (p.dashboard) urls.dashboard = `${server.url}/`;
      if (p.metrics) urls.metrics = `${server.url}/metrics`;
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  opts.log.info({ event: 'http-listening', ...urls }, [urls.dashboard && `dashboard on ${urls.dashboard}`, urls.metrics && `metrics on ${urls.metrics}`].filter(Boolean).join(', '));
  return { metrics, urls, close: async () => { await Promise.all(servers.map((s) => s.close())); } };
}
