// Small helpers the phases share: abortable sleep, CPU time, the aggregator's peer ID, budget summaries.
import type { PrivacyBudget } from '@fedtwin/dp';

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** CPU milliseconds of this process (worker threads included) between two process.cpuUsage() readings (`to` omitted: now). */
export function cpuMsBetween(from: NodeJS.CpuUsage, to: NodeJS.CpuUsage = process.cpuUsage()): number {
  return Math.round((to.user - from.user + to.system - from.system) / 1000);
}

/** The aggregator's peer ID from its address (`…/p2p/<id>`) or the bare ID. */
export function aggregatorPeerId(target: string): string {
  const i = target.lastIndexOf('/p2p/');
  return i >= 0 ? target.slice(i + 5) : target;
}

export function spentSummary(b: { record?: PrivacyBudget; site?: PrivacyBudget }): Record<string, { epsilon: number; budget: number; delta: number }> {
  const out: Record<string, { epsilon: number; budget: number; delta: number }> = {};
  for (const mode of ['record', 'site'] as const) {
    const x = b[mode];
    if (x) out[mode] = { epsilon: x.spent().epsilon, budget: x.epsilon, delta: x.delta };
  }
  return out;
}
