import type { Served } from './host-tap.ts';

/**
 * When an aggregator started with --exit-when-finished may exit. "Finished" alone (every round aggregated, or
 * the federation ended early) is too soon: members still have to fetch the last aggregate and, before they apply
 * it, see it co-signed by a quorum of members (rounds.witnessQuorum), both from this daemon. An aggregator that
 * left at once would strand them in retries until their unreachableGiveUpSeconds.
 *
 * So it is done when, for every active member (not excluded) — counted from what the daemon answered:
 *   1. the member fetched the final aggregate (an `aggregate` request for the final version), and
 *   2. after that, and after the final checkpoint's cosignatures reached the witness quorum (a `cosign` answer
 *      for a checkpoint at least the final ledger size, counting ≥ witnessQuorum), it was answered a `witnesses`
 *      request — the answer that lets it apply the aggregate and finish;
 * or when `graceMs` has passed since the federation finished (a member that is down, or already held the final
 * version, never asks again). Members fetch the co-signed checkpoint before the aggregate, so once all have
 * fetched, the quorum holds for everyone.
 */
export class FinishWatch {
  readonly #quorum: number;
  readonly #graceMs: number;
  readonly #fetched = new Map<string, { version: number; at: number }>();
  readonly #witnessed = new Map<string, number>();
  readonly #cosigns: Array<{ size: number; count: number; at: number }> = [];
  #target: { version: number; ledgerSize: number; active: string[] } | undefined;
  #grace: NodeJS.Timeout | undefined;
  #resolve!: (r: FinishOutcome) => void;
  readonly #done: Promise<FinishOutcome>;
  #settled = false;

  /** `witnessQuorum` 0: members apply aggregates without waiting for cosignatures (no ledger): step 2 is skipped. */
  constructor(opts: { witnessQuorum: number; graceMs: number }) {
    this.#quorum = opts.witnessQuorum;
    this.#graceMs = opts.graceMs;
    this.#done = new Promise((r) => { this.#resolve = r; });
  }

  /** Every request the aggregator answered (from tapHost). */
  served(s: Served): void {
    const header = s.header as Record<string, unknown> | undefined;
    if (s.protocol === 'aggregate' && typeof header?.version === 'number') {
      const prev = this.#fetched.get(s.peer);
      if (!prev || header.version >= prev.version) this.#fetched.set(s.peer, { version: header.version, at: s.at });
    } else if (s.protocol === 'witnesses') {
      this.#witnessed.set(s.peer, s.at);
    } else if (s.protocol === 'cosign' && typeof header?.note === 'string') {
      const size = Number(header.note.split('\n')[1]);
      const count = (s.response as { cosignatures?: unknown } | undefined)?.cosignatures;
      if (Number.isSafeInteger(size) && typeof count === 'number') this.#cosigns.push({ size, count, at: s.at });
    } else {
      return;
    }
    this.#check();
  }

  /** The federation finished: the final version, the ledger's size then, and the members still expected. */
  finished(target: { version: number; ledgerSize: number; active: string[] }): void {
    if (this.#target) return;
    this.#target = target;
    this.#grace = setTimeout(() => this.#settle('grace'), this.#graceMs);
    this.#check();
  }

  /** Resolves once done (or the grace period ran out), with the members that were still awaited. */
  whenDone(): Promise<FinishOutcome> {
    return this.#done;
  }

  /** Active members that have not yet fetched the final aggregate and seen its quorum. */
  waitingFor(): string[] {
    const t = this.#target;
    if (!t) return [];
    const quorumAt = this.#quorumAt(t.ledgerSize);
    return t.active.filter((m) => {
      const f = this.#fetched.get(m);
      if (!f || f.version < t.version) return true;
      if (this.#quorum === 0) return false;
      const w = this.#witnessed.get(m);
      return quorumAt === undefined || w === undefined || w < Math.max(f.at, quorumAt);
    });
  }

  stop(): void {
    if (this.#grace) clearTimeout(this.#grace);
  }

  #quorumAt(size: number): number | undefined {
    let at: number | undefined;
    for (const c of this.#cosigns) if (c.size >= size && c.count >= this.#quorum && (at === undefined || c.at < at)) at = c.at;
    return at;
  }

  #check(): void {
    if (this.#target && this.waitingFor().length === 0) this.#settle('all-fetched');
  }

  #settle(reason: FinishOutcome['reason']): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#grace) clearTimeout(this.#grace);
    this.#resolve({ reason, waitingFor: this.waitingFor() });
  }
}

export interface FinishOutcome {
  /** `all-fetched`: every active member has the final aggregate and its quorum; `grace`: the grace period ran out. */
  reason: 'all-fetched' | 'grace';
  waitingFor: string[];
}
