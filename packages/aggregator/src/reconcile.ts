import { FedtwinError } from '@fedtwin/errors';
import { nextModelVersion } from '@fedtwin/protocol';
import { sha256Hex, type JsonValue } from '@fedtwin/ledger';
import type { AuditLog } from './audit.ts';
import type { AggregateRecord, AggregatorStore, RoundRecord } from './store.ts';
import type { Logger } from './types.ts';

/**
 * The aggregator keeps two stores, its state (store.ts) and the audit ledger, each written in its own atomic
 * batch. A crash between the two leaves one ahead of the other (issue 11):
 *   (a) a contribution entry in the ledger, its update not in state: the member re-sends the same entry and
 *       the idempotent append (audit.ts) maps it to the leaf already there; nothing to append here;
 *   (b) an aggregate in state (round 'aggregated'), no `aggregate` entry for it in the ledger;
 *   (c) a round in state, no `round` entry for it in the ledger.
 * On start, before any handler runs, this appends what the ledger misses for (b) and (c), exactly as the
 * aggregator would have (same payloads; the appends are idempotent, so running it twice appends nothing),
 * signs a checkpoint when it appended anything, and fills in contribution leaf indices state lost.
 */
export interface ReconcileInit {
  store: AggregatorStore;
  audit: AuditLog;
  log: Logger;
  /** The round entry's `config`, less what is per round (baseVersion, deadline): what openNextRound writes. */
  roundConfig: Record<string, JsonValue>;
  /** Consortium members: to report contribution entries of the open round whose update state does not hold (window a). */
  members?: readonly string[];
}

export interface ReconcileReport {
  /** rounds whose `round` entry was appended, with its leaf index */
  rounds: { round: number; index: number }[];
  /** rounds whose `aggregate` entry was appended */
  aggregates: { round: number; version: number; index: number }[];
  /** contribution leaf indices found in the ledger for contributions state listed without one */
  ledgerIndexes: { round: number; peer: string; index: number }[];
  /** members with a contribution entry for the open round whose update state does not hold (their re-send is accepted) */
  pending: { round: number; peer: string; index: number }[];
  /** the checkpoint signed after the appends, if any */
  checkpoint?: string;
}

export async function reconcileLedger(init: ReconcileInit): Promise<ReconcileReport> {
  const { store, audit, log } = init;
  const report: ReconcileReport = { rounds: [], aggregates: [], ledgerIndexes: [], pending: [] };
  const records = (await store.listRounds()).sort((a, b) => a.round - b.round);
  if (records.length === 0) return report;
  const aggregateOfRound = new Map<number, AggregateRecord>();
  for (const a of await store.listAggregates()) aggregateOfRound.set(a.round, a);
  const versionRound = new Map<number, number>([...aggregateOfRound.values()].map((a) => [a.version, a.round]));

  /** A round's base model version: fixed at open; for records older than that, the published chain in the ledger. */
  async function baseOf(rec: RoundRecord): Promise<string | undefined> {
    if (rec.baseHash) return rec.baseHash;
    const prevRound = versionRound.get(rec.baseVersion);
    if (prevRound === undefined) return undefined;
    const last = (await audit.findAllByKey('aggregate', prevRound)).at(-1);
    if (last === undefined) return undefined;
    const p = (await audit.entry(last)).payload;
    return p.type === 'aggregate' ? p.modelVersion : undefined;
  }

  /** Contribution leaves of `rec`, filling in (and persisting) any ledgerIndex state lost. */
  async function leavesOf(rec: RoundRecord): Promise<{ rec: RoundRecord; leaves: number[]; missing: string[] }> {
    let changed = false;
    const missing: string[] = [];
    const contributions = [];
    for (const c of rec.contributions) {
      if (c.ledgerIndex !== undefined) { contributions.push(c); continue; }
      const found = (await audit.findAllByKey('contribution', rec.round, c.peer))[0];
      if (found === undefined) { missing.push(c.peer); contributions.push(c); continue; }
      contributions.push({ ...c, ledgerIndex: found });
      report.ledgerIndexes.push({ round: rec.round, peer: c.peer, index: found });
      changed = true;
    }
    const next = changed ? { ...rec, contributions } : rec;
    if (changed) await store.saveRound(next);
    const leaves = next.contributions.map((c) => c.ledgerIndex).filter((i): i is number => i !== undefined).sort((a, b) => a - b);
    return { rec: next, leaves, missing };
  }

  for (const stored of records) {
    let rec = stored;
    // (c) the round was opened in state; its `round` entry is what openNextRound appends right after.
    if ((await audit.findAllByKey('round', rec.round)).length === 0) {
      const base = await baseOf(rec);
      const r = await audit.record({
        type: 'round', v: 1, action: 'open', round: rec.round, ...(base ? { globalVersion: base } : {}),
        config: { ...init.roundConfig, baseVersion: rec.baseVersion, deadline: rec.deadline },
      });
      if (!r.existed) report.rounds.push({ round: rec.round, index: r.index });
    }
    if (rec.contributions.some((c) => c.ledgerIndex === undefined)) rec = (await leavesOf(rec)).rec;
    // (b) the round was aggregated in state; its `aggregate` entry is what aggregate() appends right after.
    if (rec.status === 'aggregated') {
      const agg = aggregateOfRound.get(rec.round);
      const saved = agg ? await store.getAggregate(agg.version) : undefined;
      if (!agg || !saved) {
        log.warn({ event: 'reconcile-skipped', round: rec.round, reason: 'no stored aggregate' }, `round ${rec.round} is aggregated in state but its aggregate is not stored; cannot reconcile its ledger entry`);
        continue;
      }
      const aggregateHash = sha256Hex(saved.body);
      const base = await baseOf(rec);
      const { leaves, missing } = await leavesOf(rec);
      if (!base || missing.length > 0 || leaves.length !== rec.contributions.length) {
        throw new FedtwinError('STATE_CORRUPT', `round ${rec.round}: cannot rebuild its aggregate entry (${!base ? 'no base model version' : `no contribution entry in the ledger for ${missing.join(', ')}`})`, {
          hint: 'run `fedtwin ledger verify` on the aggregator\'s ledger; restore state and ledger from the same backup',
        });
      }
      const r = await audit.record({ type: 'aggregate', v: 1, round: rec.round, contributions: leaves, aggregateHash, modelVersion: nextModelVersion(base, aggregateHash) });
      if (!r.existed) report.aggregates.push({ round: rec.round, version: agg.version, index: r.index });
    }
    // (a) contribution entries of the open round with no update in state: the member's re-send maps to them.
    if (rec.status === 'open' && init.members) {
      const have = new Set(rec.contributions.map((c) => c.peer));
      for (const peer of init.members) {
        if (have.has(peer)) continue;
        const index = (await audit.findAllByKey('contribution', rec.round, peer))[0];
        if (index !== undefined) report.pending.push({ round: rec.round, peer, index });
      }
    }
  }
  if (report.rounds.length > 0 || report.aggregates.length > 0) report.checkpoint = await audit.checkpoint();
  if (report.rounds.length + report.aggregates.length + report.ledgerIndexes.length + report.pending.length > 0) {
    const { checkpoint: _c, ...what } = report;
    log.warn({ event: 'reconciled', ...what }, `ledger reconciled with state: appended ${report.rounds.length} round and ${report.aggregates.length} aggregate entr${report.rounds.length + report.aggregates.length === 1 ? 'y' : 'ies'}${report.pending.length ? `; ${report.pending.length} contribution(s) of the open round await their member's re-send` : ''}`);
  }
  return report;
}
