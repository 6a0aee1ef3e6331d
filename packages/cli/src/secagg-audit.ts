// `fedtwin ledger verify`, secure aggregation by masking (docs/he.md §9): replays every recorded recovery from the
// ledger alone. `verifyLedgerDir` already checked signatures, authorship, one request per round and that every
// reveal quotes it; this checks the cryptography with @fedtwin/secagg's public functions: each advertisement is
// signed by its member, the request's digest and sets match the round (survivors ∪ dropped = who shared, disjoint),
// nobody revealed both secrets of one member, and ALL revealed shares of each owner interpolate to its committed b
// (survivors) or to the secret of its signed mask key (dropped) — a wrong share changes the interpolation.
import { FedtwinError } from '@fedtwin/errors';
import type { EntryPayload } from '@fedtwin/ledger';

type P<T extends EntryPayload['type']> = Extract<EntryPayload, { type: T }>;

export interface SecaggAuditRound {
  round: number;
  survivors: number;
  dropped: number;
  reveals: number;
  /** Owners whose secrets were rebuilt from the revealed shares and matched their commitment or signed key. */
  reconstructed: number;
}

const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Throws LEDGER_SECAGG_INVALID (with the entry's round) at the first inconsistency; returns one line per recovered round. */
export async function auditSecagg(payloads: readonly EntryPayload[]): Promise<SecaggAuditRound[]> {
  const requests = payloads.filter((p): p is P<'secagg-recovery'> => p.type === 'secagg-recovery');
  if (requests.length === 0) return [];
  const sa = await import('@fedtwin/secagg');
  const out: SecaggAuditRound[] = [];
  for (const req of requests) {
    const r = req.round;
    const bad = (why: string) => new FedtwinError('LEDGER_SECAGG_INVALID', `secure aggregation of round ${r}: ${why}`, {
      hint: 'the recorded key agreement or recovery does not replay: keep this ledger as evidence', details: { round: r },
    });
    const keys = payloads.filter((p): p is P<'secagg-keys'> => p.type === 'secagg-keys' && p.round === r);
    const shares = payloads.filter((p): p is P<'secagg-shares'> => p.type === 'secagg-shares' && p.round === r);
    const reveals = payloads.filter((p): p is P<'secagg-reveal'> => p.type === 'secagg-reveal' && p.round === r);
    const aggregated = payloads.some((p) => p.type === 'aggregate' && p.round === r);
    const cfg = { consortium: req.consortium, round: r, members: keys.map((k) => k.node), threshold: req.threshold, ...(req.degree !== undefined ? { degree: req.degree } : {}), length: 1 };
    const ads = keys.map((k) => ({ consortium: req.consortium, round: r, member: k.node, cPub: unb64(k.cPub), sPub: unb64(k.sPub), signature: unb64(k.signature) }));
    for (const ad of ads) {
      try {
        sa.verifyAdvertisement(cfg, ad);
      } catch (err) {
        throw bad(`the keys of ${ad.member} do not verify: ${(err as Error).message}`);
      }
    }
    const request = { consortium: req.consortium, round: r, survivors: req.survivors, dropped: req.dropped };
    if (hex(sa.requestDigest(request)) !== req.digest) throw bad('the recovery request\'s digest does not match its sets');
    const sharers = new Set(shares.map((s) => s.node));
    const surv = new Set(req.survivors), drop = new Set(req.dropped);
    for (const m of surv) if (drop.has(m)) throw bad(`${m} is named both survivor and dropped`);
    if (surv.size + drop.size !== sharers.size || ![...sharers].every((m) => surv.has(m) || drop.has(m))) throw bad('survivors and dropped are not exactly the members that shared their keys');
    const graph = sa.roundGraph(cfg, ads);
    const commit = new Map(shares.map((s) => [s.node, s.bCommit]));
    const pts = new Map<string, { x: number; y: bigint }[]>();
    for (const rv of reveals) {
      if (!surv.has(rv.node)) throw bad(`${rv.node} revealed shares but its input is not in the sum`);
      for (const s of rv.bShares) if (!surv.has(s.owner)) throw bad(`${rv.node} revealed a b-share of ${s.owner}, who is not a survivor`);
      for (const s of rv.sShares) if (!drop.has(s.owner)) throw bad(`${rv.node} revealed an s-share of ${s.owner}, who is not dropped`);
      for (const s of [...rv.bShares, ...rv.sShares]) {
        const holders = new Set([s.owner, ...graph.neighbours(s.owner)]);
        if (!holders.has(rv.node)) throw bad(`${rv.node} revealed a share of ${s.owner} it cannot hold (not in its neighbourhood)`);
        const list = pts.get(s.owner) ?? [];
        const y = unb64(s.y);
        const v = y.length === sa.SHARE_BYTES ? BigInt(`0x${hex(y)}`) : -1n;
        if (v < 0n || v >= sa.FIELD_PRIME) throw bad(`${rv.node} revealed a malformed share of ${s.owner}`);
        list.push({ x: graph.members.indexOf(rv.node) + 1, y: v });
        pts.set(s.owner, list);
      }
    }
    let reconstructed = 0;
    for (const owner of [...surv, ...drop]) {
      const p = pts.get(owner) ?? [];
      if (p.length < req.threshold) {
        if (aggregated) throw bad(`${p.length} share(s) of ${owner} revealed, threshold ${req.threshold}: the published sum cannot have been unmasked from the record`);
        continue;
      }
      let secret: Uint8Array;
      try {
        secret = sa.fieldToBytes(sa.combine(p), 32);
      } catch {
        throw bad(`the shares revealed for ${owner} do not interpolate to a 32-byte secret (a wrong share)`);
      }
      if (surv.has(owner)) {
        if (hex(sa.commitB(secret, req.consortium, r, owner)) !== commit.get(owner)) throw bad(`the b rebuilt from the ${p.length} revealed share(s) of ${owner} does not match its commitment (a wrong share)`);
      } else {
        const ad = ads.find((a) => a.member === owner)!;
        if (hex(sa.x25519PublicOf(secret)) !== hex(ad.sPub)) throw bad(`the mask key rebuilt from the ${p.length} revealed share(s) of ${owner} does not match its signed public key (a wrong share)`);
      }
      reconstructed++;
    }
    out.push({ round: r, survivors: surv.size, dropped: drop.size, reveals: reveals.length, reconstructed });
  }
  return out;
}
