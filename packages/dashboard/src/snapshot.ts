import { readFile } from 'node:fs/promises';

/** Bytes a wire host moved, by protocol name. */
export type BytesByProtocol = Record<string, { sent: number; received: number }>;

/** What a sim's report.json says of the synthetic data: the figures the dashboard shows. */
export interface ReportSummary {
  dataset: string;
  nodes: number;
  rounds: number;
  fidelity: { mean: number; correlationDistance: number };
  utility: { trtrAuc: number; tstrAuc: { federated: number; localOnly: number; centralized: number } };
  privacy: { mode: string; epsilon: number | null; budget: number | null };
  /** File modification time, ms since the epoch. */
  writtenAt: number;
}

/**
 * What GET /api/dashboard returns and the page renders. `status` is `fedtwin status --json`'s object for the
 * role (null while a sim's aggregator is not up yet), `bytes` the wire host's per-protocol counts.
 */
export interface DashboardSnapshot {
  role: 'aggregator' | 'node';
  at: number;
  status: unknown;
  bytes: BytesByProtocol;
  report: ReportSummary | null;
  /** `daemon`: served by the daemon itself; `sim`: by `fedtwin sim --serve` (its aggregator's view, then the report). */
  source: 'daemon' | 'sim';
  /** One line on what is going on, when the status alone does not say it (a sim preparing data, training baselines). */
  note?: string;
}

/** The report's summary, or null when there is none (yet) or it cannot be read. */
export async function readReportSummary(path: string): Promise<ReportSummary | null> {
  try {
    const { stat } = await import('node:fs/promises');
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const r = JSON.parse(text) as Record<string, any>;
    const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
    return {
      dataset: String(r.dataset ?? ''), nodes: num(r.nodes), rounds: num(r.rounds),
      fidelity: { mean: num(r.fidelity?.mean), correlationDistance: num(r.fidelity?.correlationDistance) },
      utility: { trtrAuc: num(r.utility?.trtrAuc), tstrAuc: { federated: num(r.utility?.tstrAuc?.federated), localOnly: num(r.utility?.tstrAuc?.localOnly), centralized: num(r.utility?.tstrAuc?.centralized) } },
      privacy: { mode: String(r.privacy?.mode ?? ''), epsilon: typeof r.privacy?.epsilon === 'number' ? r.privacy.epsilon : null, budget: typeof r.privacy?.budget === 'number' ? r.privacy.budget : null },
      writtenAt: st.mtimeMs,
    };
  } catch {
    return null;
  }
}
