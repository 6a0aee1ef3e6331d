// Before an aggregate is used: is it what the consortium agreed a round's sum is? Participants from the
// manifest, at least minParticipants, and exactly the sum the ledger's aggregate entry names (its hash, the
// contributions it sums, this member's own when it contributed). A refusal keeps the evidence and stops.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { sha256Hex } from '@fedtwin/ledger';
import type { AggregateResponse } from '@fedtwin/protocol';
import type { NodeContext } from '../context.ts';

type Aggregate = import('zod').infer<typeof AggregateResponse>;

/**
 * Checks `agg` (with its bytes) against the pinned manifest and the verified ledger; throws NODE_AGGREGATE_REFUSED.
 * Returns the leaf index of the ledger's aggregate entry for it (undefined for a member without a replica).
 */
export async function checkAggregate(ctx: NodeContext, agg: Aggregate, body: Uint8Array): Promise<number | undefined> {
  const m = ctx.consortium.manifest;
  const refuse = async (why: string): Promise<never> => {
    const evidence = await keepEvidence(ctx, agg, body, why);
    throw new FedtwinError('NODE_AGGREGATE_REFUSED', `aggregate ${agg.version} (round ${agg.round}) refused: ${why}`, {
      hint: `the aggregator published something other than the consortium's sum; evidence kept in ${evidence}; alert the consortium`,
      details: { version: agg.version, round: agg.round, evidence },
    });
  };
  const members = new Set(m.members.map((x) => x.peerId));
  const participants = new Set(agg.participants);
  if (participants.size !== agg.participants.length) await refuse('a participant is listed twice');
  const stranger = agg.participants.find((p) => !members.has(p));
  if (stranger) await refuse(`participant ${stranger} is not a member of the consortium manifest`);
  if (agg.participants.length < m.rounds.minParticipants) await refuse(`it sums ${agg.participants.length} contribution(s), the manifest's minParticipants is ${m.rounds.minParticipants}`);

  const witness = ctx.witness;
  if (!witness) return undefined; // a member without a ledger replica checks what it can
  const bodyHash = sha256Hex(body);
  const entries = await witness.entriesFor('aggregate', agg.round);
  const named = entries.filter(({ entry }) => entry.payload.type === 'aggregate' && entry.payload.aggregateHash === bodyHash);
  if (named.length === 0) await refuse(`no aggregate entry of round ${agg.round} in the verified ledger names this sum (${bodyHash.slice(0, 12)}…)`);
  const withdrawn = (await witness.entriesFor('exclusion', agg.round)).some(({ entry }) => entry.payload.type === 'exclusion' && entry.payload.action === 'withdraw' && entry.payload.aggregateHash === bodyHash);
  if (withdrawn) await refuse('the ledger records this sum as withdrawn');
  const p = named.at(-1)!.entry.payload;
  const entryIndex = named.at(-1)!.index;
  if (p.type !== 'aggregate') return entryIndex;
  if (p.contributions.length !== agg.participants.length) await refuse(`the ledger's aggregate entry sums ${p.contributions.length} contribution(s), the aggregate names ${agg.participants.length} participants`);
  const authors = new Set<string>();
  for (const leaf of p.contributions) {
    const e = await witness.entryAt(leaf);
    if (e.payload.type !== 'contribution' || e.payload.round !== agg.round) await refuse(`ledger leaf ${leaf} is not a contribution to round ${agg.round}`);
    authors.add(e.author);
  }
  for (const q of agg.participants) if (!authors.has(q)) await refuse(`participant ${q} has no contribution among the ledger's leaves for this sum`);
  // This member's own contribution to that round, if the aggregator acknowledged it, must be in the sum.
  const acked = ctx.state.contributions.some((c) => c.round === agg.round);
  const mine = acked ? await witness.entriesFor('contribution', agg.round, ctx.host.peerId) : [];
  if (mine.length > 0 && !p.contributions.includes(mine[0]!.index)) {
    const excluded = (await witness.entriesFor('exclusion', agg.round)).some(({ entry }) => entry.payload.type === 'exclusion' && entry.payload.action === 'exclude' && entry.payload.peerId === ctx.host.peerId);
    if (!excluded) await refuse(`this member's own contribution to round ${agg.round} (leaf ${mine[0]!.index}) is left out of the sum`);
  }
  return entryIndex;
}

/** The refused aggregate's header, its bytes and why, in `<dataDir>/evidence/` (0600), before the node stops. */
async function keepEvidence(ctx: NodeContext, agg: Aggregate, body: Uint8Array, why: string): Promise<string> {
  const dir = ctx.witness?.evidenceDir ?? join(ctx.init.dataDir, '..', 'evidence');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-aggregate-${agg.version}`);
  await writeFile(`${base}.json`, JSON.stringify({ refused: why, aggregate: agg, sha256: sha256Hex(body) }, null, 2), { mode: 0o600 });
  await writeFile(`${base}.bin`, body, { mode: 0o600 });
  return `${base}.json`;
}
