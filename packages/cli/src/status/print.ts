import { formatEpsilon } from '../format.ts';
import type { AggregatorStatus } from './aggregator-status.ts';
import type { LedgerView } from './ledger-view.ts';
import type { NodeStatus } from './node-status.ts';

/** How many rounds the human output lists (the latest ones); --json has them all. */
const ROUNDS_SHOWN = 20;

const time = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : '—');
const short = (peer: string) => `…${peer.slice(-8)}`;

function source(s: { source: 'live' | 'dataDir'; updatedAt: number }): string {
  return s.source === 'live' ? `live (published ${time(s.updatedAt)})` : 'from the dataDir (the daemon is not running)';
}

function ledgerLines(label: string, l: LedgerView | null): string[] {
  if (!l) return [`${label}none yet`];
  return [
    `${label}${l.size} entries, root ${l.rootHash}`,
    `  checkpoint    ${l.checkpoint ? `size ${l.checkpoint.size}, ${l.checkpoint.cosignatures} member cosignature(s)` : 'none signed yet'}`,
  ];
}

export function aggregatorText(s: AggregatorStatus): string {
  const lines = [
    `aggregator ${s.peerId} — consortium ${s.consortium}, ${source(s)}`,
    `  federation    ${s.status}${s.finishedEarly ? ` early: ${s.finishedEarly}` : ''}, version ${s.version} of ${s.totalRounds} rounds`,
    `  HE key        ${s.he.scheme === 'plaintext' ? 'none (plaintext aggregation)' : s.he.scheme === 'secagg' ? 'none (pairwise masking: fresh keys per member and round)' : s.he.keyId ? `${s.he.keyId.slice(0, 16)}…, epoch ${s.he.epoch ?? 'unknown'}` : 'not published yet (key ceremony pending)'}`,
    ...ledgerLines('  ledger        ', s.ledger),
    `  rounds        ${s.rounds.length} (${s.rounds.filter((r) => r.status === 'open').length} open, ${s.rounds.filter((r) => r.status === 'aggregated').length} aggregated, ${s.rounds.filter((r) => r.status === 'failed').length} failed)`,
  ];
  for (const r of s.rounds.slice(-ROUNDS_SHOWN)) {
    lines.push(`    round ${String(r.round).padStart(3)}  ${r.status.padEnd(10)}  ${r.participants} contribution(s)${r.refusals ? `, ${r.refusals} refusal(s)` : ''}  opened ${time(r.openedAt)}${r.seconds !== undefined ? `  ${r.seconds.toFixed(1)} s` : ''}${r.reason ? `  (${r.reason})` : ''}`);
  }
  if (s.rounds.length > ROUNDS_SHOWN) lines.push(`    … ${s.rounds.length - ROUNDS_SHOWN} earlier round(s) in --json`);
  lines.push(`  members       ${s.members.length}`);
  for (const m of s.members) {
    const flags = [m.excluded ? 'EXCLUDED' : '', m.exhausted ? 'budget exhausted' : '', m.joined === true ? 'joined' : m.joined === false ? 'not joined' : ''].filter(Boolean).join(', ');
    const eps = m.epsilon ? `ε ${formatEpsilon(m.epsilon.spent)} of ${formatEpsilon(m.epsilon.budget)} (${m.epsilon.mode})` : 'ε —';
    lines.push(`    ${short(m.peerId)} ${(m.name ?? '').padEnd(14).slice(0, 14)}  ${m.contributions} contribution(s), ${m.refusals} refusal(s)  ${eps}  last seen ${time(m.lastSeenAt)}${flags ? `  [${flags}]` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

export function nodeText(s: NodeStatus): string {
  const lines = [
    `node ${s.peerId} — consortium ${s.consortium}, ${source(s)}`,
    `  model         version ${s.version}${s.hash ? ` (${s.hash.slice(0, 16)}…)` : ''}, last round ${s.lastRound}${s.finished ? ', federation finished' : ''}`,
    `  contributions ${s.contributions}${s.contributedRounds.length ? ` (rounds ${s.contributedRounds.join(', ')})` : ''}`,
    ...(s.privacy.length ? s.privacy.map((p) => `  privacy       ${p.mode}-level: ε ${formatEpsilon(p.spent)} spent of ${formatEpsilon(p.budget)} (δ ${p.delta})`) : ['  privacy       no DP budget recorded']),
    ...(s.refused ? [`  refused       from round ${s.refused.round}: ${s.refused.reason}`] : []),
    ...ledgerLines('  replica       ', s.replica),
  ];
  return `${lines.join('\n')}\n`;
}
