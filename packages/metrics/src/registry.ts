import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Bytes one wire host moved, by protocol name (what @fedtwin/wire's `bytesByProtocol()` returns). */
export type BytesByProtocol = Record<string, { sent: number; received: number }>;

/**
 * A registry with prom-client's default process metrics (CPU, resident memory, heap, event-loop lag, open fds)
 * under the `fedtwin_` prefix, so every series a daemon exports starts with it.
 */
export function daemonRegistry(role: 'aggregator' | 'node'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'fedtwin_' });
  return registry;
}

/**
 * A counter whose value is read from the daemon at scrape time (a count the daemon keeps anyway: rounds in its
 * state, bytes in its wire host). The daemon's counts only grow while it runs, so the series is a counter in
 * Prometheus' sense; it restarts with the process like any other.
 */
export function derivedCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Promise<Array<[Partial<Record<L, string>>, number]>> | Array<[Partial<Record<L, string>>, number]>): Counter<L> {
  return new Counter<L>({
    name, help, labelNames: [...labelNames], registers: [registry],
    async collect() {
      const values = await read();
      this.reset();
      // inc by 0 too: a zero series is still a series, so a scraper sees the metric before the first event
      for (const [labels, v] of values) this.inc(labels, Math.max(0, v));
    },
  });
}

/** A gauge read at scrape time; series that disappear from `read` (a member removed) disappear here too. */
export function derivedGauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Promise<Array<[Partial<Record<L, string>>, number]>> | Array<[Partial<Record<L, string>>, number]>): Gauge<L> {
  return new Gauge<L>({
    name, help, labelNames: [...labelNames], registers: [registry],
    async collect() {
      const values = await read();
      this.reset();
      for (const [labels, v] of values) this.set(labels, v);
    },
  });
}

/** fedtwin_wire_bytes_total{protocol,direction}: application payload bytes per protocol, in and out. */
export function wireBytes(registry: Registry, bytes: () => BytesByProtocol): void {
  derivedCounter(registry, 'fedtwin_wire_bytes_total', 'Application payload bytes moved by the wire layer (frames with their length prefixes), by protocol and direction', ['protocol', 'direction'] as const, () => {
    const out: Array<[Partial<Record<'protocol' | 'direction', string>>, number]> = [];
    for (const [protocol, c] of Object.entries(bytes())) {
      out.push([{ protocol, direction: 'in' }, c.received], [{ protocol, direction: 'out' }, c.sent]);
    }
    return out;
  });
}

/** fedtwin_verification_failures_total{check}: counted as the daemon logs them (see the role's module for which). */
export function verificationFailures(registry: Registry): (check: string) => void {
  const c = new Counter({ name: 'fedtwin_verification_failures_total', help: 'Checks that failed: a forged or inconsistent ledger view, a bad contribution, a sum that did not match', labelNames: ['check'], registers: [registry] });
  return (check) => c.inc({ check });
}
