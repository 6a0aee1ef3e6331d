// The aggregator's side of one secure-aggregation round by pairwise masking (docs/he.md §9): which phase the
// round is in, who made each phase in time, and the messages it relays. The cryptography is @fedtwin/secagg's
// (collectAdvertisements, routeShares, recoveryRequest, unmask); this file only moves messages between phases.
// Phases: keys (advertisements) → shares (bundles) → input (masked updates, the usual update protocol) →
// recovery (one ledger-recorded request; members reveal) → done. Each phase closes when everyone it waits for
// answered or at its deadline; the sets are whoever made it in time.
import { FedtwinError } from '@fedtwin/errors';
import type { SecureAggregation } from '@fedtwin/protocol';
import type * as Secagg from '@fedtwin/secagg';

export type SecaggPhase = 'keys' | 'shares' | 'input' | 'recovery' | 'done';

type SA = typeof Secagg;
type Config = Extract<SecureAggregation, { scheme: 'secagg' }>;

export class SecaggRound {
  phase: SecaggPhase = 'keys';
  readonly ads = new Map<string, Secagg.KeyAdvertisement>();
  accepted: Secagg.KeyAdvertisement[] | undefined;
  readonly bundles = new Map<string, Secagg.ShareBundle>();
  agg: Secagg.AggregatorRound | undefined;
  inboxes: Map<string, Secagg.EncryptedShare[]> | undefined;
  request: Secagg.RecoveryRequest | undefined;
  requestIndex: number | undefined;
  readonly responses = new Map<string, Secagg.RecoveryResponse>();
  /** Why the round cannot go on (a phase closed with fewer than t members); members hear it as `closed`. */
  failed: string | undefined;
  /** When the current phase closes at the latest (ms). */
  phaseDeadline: number;

  readonly sa: SA;
  readonly cfg: Secagg.SecaggConfig;
  readonly phaseMs: number;

  constructor(sa: SA, cfg: Secagg.SecaggConfig, phaseMs: number, now: number) {
    this.sa = sa;
    this.cfg = cfg;
    this.phaseMs = phaseMs;
    this.phaseDeadline = now + phaseMs;
  }

  static config(c: Config, consortium: string, round: number, length: number): Secagg.SecaggConfig {
    return { consortium, round, members: c.members, threshold: c.threshold, ...(c.degree !== undefined ? { degree: c.degree } : {}), length };
  }

  private require(phase: SecaggPhase, what: string): void {
    if (this.failed) throw new FedtwinError('AGG_SECAGG_PHASE', `round ${this.cfg.round} cannot go on: ${this.failed}`, { hint: 'poll for the next round' });
    if (this.phase !== phase) {
      throw new FedtwinError('AGG_SECAGG_PHASE', `round ${this.cfg.round} is in phase ${this.phase}; ${what} belongs to phase ${phase}`, { hint: 'a member late for a phase sits the round out; poll for the next round' });
    }
  }

  /** Phase keys: one checked advertisement per member. */
  addAd(ad: Secagg.KeyAdvertisement): void {
    this.require('keys', 'a key advertisement');
    if (this.ads.has(ad.member)) throw new FedtwinError('AGG_DUPLICATE', `member ${ad.member} already advertised keys for round ${this.cfg.round}`, { hint: 'a member that restarted mid-round sits it out' });
    try {
      this.sa.verifyAdvertisement(this.cfg, ad);
    } catch (err) {
      throw new FedtwinError('AGG_SECAGG_BAD_KEYS', `key advertisement refused: ${(err as Error).message}`, { cause: err, hint: 'the keys must be signed by the member\'s own identity for this consortium and round' });
    }
    this.ads.set(ad.member, ad);
  }

  /** Closes phase keys with who advertised (fewer than t: the round fails). */
  closeKeys(now: number): void {
    if (this.phase !== 'keys') return;
    try {
      this.accepted = this.sa.collectAdvertisements(this.cfg, [...this.ads.values()]).accepted;
      this.phase = 'shares';
      this.phaseDeadline = now + this.phaseMs;
    } catch (err) {
      this.failed = `${this.ads.size} member(s) advertised keys in time, threshold ${this.cfg.threshold} (${(err as Error).message})`;
    }
  }

  /** Phase shares: one bundle per accepted member, one share per neighbour in neighbour order. */
  addBundle(b: Secagg.ShareBundle): void {
    this.require('shares', 'a share bundle');
    if (!this.accepted!.some((a) => a.member === b.member)) throw new FedtwinError('AGG_SECAGG_NOT_IN_ROUND', `member ${b.member} did not advertise keys in time for round ${this.cfg.round}`, { hint: 'poll for the next round' });
    if (this.bundles.has(b.member)) throw new FedtwinError('AGG_DUPLICATE', `member ${b.member} already sent its shares for round ${this.cfg.round}`);
    // routeShares checks shape (one share per neighbour, in order): try it on this bundle alone first.
    const graph = this.sa.roundGraph(this.cfg, this.accepted!);
    const nbrs = graph.neighbours(b.member);
    if (b.bCommit.length !== 32 || b.shares.length !== nbrs.length || b.shares.some((s, i) => s.from !== b.member || s.to !== nbrs[i])) {
      throw new FedtwinError('AGG_SECAGG_BAD_SHARES', `share bundle of ${b.member} is malformed: one share per neighbour (${nbrs.length}), in neighbour order`, { hint: 'the member runs another fedtwin version, or is faulty' });
    }
    this.bundles.set(b.member, b);
  }

  closeShares(now: number): void {
    if (this.phase !== 'shares') return;
    try {
      const r = this.sa.routeShares(this.cfg, this.accepted!, [...this.bundles.values()]);
      this.agg = r.round;
      this.inboxes = r.inboxes;
      this.phase = 'input';
      this.phaseDeadline = Infinity; // the round's own deadline governs the masked inputs
      void now;
    } catch (err) {
      this.failed = `${this.bundles.size} member(s) sent their shares in time, threshold ${this.cfg.threshold} (${(err as Error).message})`;
    }
  }

  /** Members that take part in the masked inputs (shared in time). */
  sharers(): Set<string> {
    return new Set(this.agg ? this.agg.commits.keys() : []);
  }

  /** The recovery request from who sent (called once, when the inputs close). */
  makeRequest(received: readonly string[]): Secagg.RecoveryRequest {
    this.request = this.sa.recoveryRequest(this.agg!, received);
    return this.request;
  }

  /** The request is in the ledger at leaf `index`: reveals open (only now may a member be pointed at it). */
  openRecovery(index: number, now: number): void {
    this.requestIndex = index;
    this.phase = 'recovery';
    this.phaseDeadline = now + this.phaseMs;
  }

  addResponse(member: string, r: Secagg.RecoveryResponse): void {
    this.require('recovery', 'a reveal');
    if (!this.request!.survivors.includes(member)) throw new FedtwinError('AGG_SECAGG_NOT_IN_ROUND', `member ${member} is not a survivor of round ${this.cfg.round}; only survivors reveal`);
    if (this.responses.has(member)) throw new FedtwinError('AGG_DUPLICATE', `member ${member} already revealed for round ${this.cfg.round}`);
    this.responses.set(member, r);
  }

  /** The exact sum, or undefined while too few shares are in (any other failure throws). */
  tryUnmask(masked: readonly Secagg.MaskedInput[]): Int32Array | undefined {
    if (this.responses.size < this.cfg.threshold) return undefined;
    try {
      return this.sa.unmask(this.agg!, this.request!, masked, [...this.responses.values()]);
    } catch (err) {
      if ((err as { code?: string }).code === 'SECAGG_NOT_ENOUGH_SHARES' && this.responses.size < this.request!.survivors.length) return undefined;
      throw err;
    }
  }
}
