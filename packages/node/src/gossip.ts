// Members watch each other (issue 12 item 6): after each co-signed sync a member sends its latest
// checkpoint to the other members it can reach and judges theirs. The aggregator signs every checkpoint, so
// two members holding different trees at one size is proof it showed them different histories.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { parseCheckpoint } from '@fedtwin/ledger';
import { GOSSIP_PROTOCOL, GossipRequest, GossipResponse } from '@fedtwin/protocol';
import type { WireHost } from '@fedtwin/wire';
import type { Logger } from './types.ts';
import type { Witness } from './witness.ts';

/** Another member this one gossips with: its peer ID and a multiaddr ending in /p2p/<peerId>. */
export interface GossipPeer {
  peerId: string;
  address: string;
}

/** One exchange per peer never waits longer than this: an unreachable member must not hold up a round. */
const EXCHANGE_TIMEOUT_MS = 5_000;

export interface Gossip {
  /** A split view found by a peer's request (inbound): the round loop stops on it at its next sync. */
  readonly fatal: FedtwinError | undefined;
  /** Sends this member's latest checkpoint to every peer and judges their answers; throws LEDGER_INCONSISTENT on a split view. */
  exchange(log: Logger): Promise<{ consistent: number; pending: number; unreachable: number }>;
  /**
   * Best effort, bounded: shows every peer this member's latest checkpoint, answers ignored. Sent when this member
   * found a split view and is about to stop, so a peer that has not seen this view yet can find the split too
   * (else it may wait for a witness quorum that never comes).
   */
  alert(): Promise<void>;
}

const sizeOf = (note: string | null): number => {
  if (!note) return 0;
  try {
    return parseCheckpoint(note).checkpoint.size;
  } catch {
    return 0;
  }
};

/** Registers the gossip endpoint (only manifest members get an answer) and returns the exchanger. */
export async function startGossip(init: {
  host: Pick<WireHost, 'handle' | 'request'>; witness: Witness; peers: readonly GossipPeer[]; members: readonly string[]; log: Logger;
}): Promise<Gossip> {
  const members = new Set(init.members);
  for (const p of init.peers) {
    if (!members.has(p.peerId)) throw new FedtwinError('CONFIG_INVALID', `witness peer ${p.peerId} is not a member of the consortium manifest`, { hint: 'list only other members under witnesses:' });
    if (!p.address.endsWith(`/p2p/${p.peerId}`)) throw new FedtwinError('CONFIG_INVALID', `witness address ${p.address} must end in /p2p/${p.peerId}`, { hint: 'give each member\'s full multiaddr, e.g. /ip4/10.0.0.5/tcp/7002/p2p/12D3Koo…' });
  }
  let fatal: FedtwinError | undefined;
  const { witness } = init;
  /** The note last compared with every peer (all consistent): not sent again until it changes. */
  let settled: string | null = null;

  await init.host.handle(GOSSIP_PROTOCOL, {
    request: GossipRequest,
    maxBodyBytes: 0,
    maxInboundStreams: 2,
    authorize: ({ peer }) => {
      if (!members.has(peer)) throw new FedtwinError('NODE_NOT_MEMBER', 'gossip is between consortium members only');
    },
    handler: async ({ peer, header }) => {
      try {
        await witness.judgePeerView(header.note, peer);
      } catch (err) {
        if (!isFedtwinError(err, 'LEDGER_INCONSISTENT')) throw err;
        // This member stops at its next sync. It still answers with its own view, so the peer finds the
        // split by itself too (an error reply may arrive as a wire error, and this member may be gone by
        // the peer's next attempt).
        fatal ??= err;
        init.log.error({ event: 'split-view', from: peer, code: err.code }, err.message);
      }
      const note = await witness.latestNote();
      const consistencyProof = sizeOf(note) > sizeOf(header.note) ? await witness.consistencyProofFrom(sizeOf(header.note)) : [];
      return { header: { note, consistencyProof } };
    },
  });

  async function alertPeer(p: GossipPeer): Promise<void> {
    const mine = await witness.latestNote().catch(() => null);
    if (!mine) return;
    await init.host.request(p.address, GOSSIP_PROTOCOL, { header: { note: mine } }, { response: GossipResponse, maxBodyBytes: 0, timeoutMs: EXCHANGE_TIMEOUT_MS })
      .catch(() => undefined); // the peer may have stopped on it already, or be unreachable
  }

  return {
    get fatal() { return fatal; },
    alert: async () => { await Promise.all(init.peers.map(alertPeer)); },
    async exchange(log) {
      const mine = await witness.latestNote();
      if (!mine || mine === settled) return { consistent: 0, pending: 0, unreachable: 0 };
      const out = { consistent: 0, pending: 0, unreachable: 0 };
      await Promise.all(init.peers.map(async (p) => {
        let res: { header: { note: string | null; consistencyProof: string[] } };
        try {
          res = await init.host.request(p.address, GOSSIP_PROTOCOL, { header: { note: mine } }, { response: GossipResponse, maxBodyBytes: 0, timeoutMs: EXCHANGE_TIMEOUT_MS });
        } catch (err) {
          // The peer found the split first (its error says so): this member stops too.
          if (isFedtwinError(err) && /LEDGER_INCONSISTENT|another log/.test(`${err.code} ${err.message}`)) {
            fatal ??= new FedtwinError('LEDGER_INCONSISTENT', `member ${p.peerId} reports a split view: ${err.message}`, { hint: 'the aggregator shows members different histories: alert the consortium', details: { from: p.peerId } });
            throw fatal;
          }
          out.unreachable++;
          return;
        }
        if (res.header.note === null) return;
        const verdict = await witness.judgePeerView(res.header.note, p.peerId, res.header.consistencyProof);
        if (verdict === 'consistent') out.consistent++;
        else if (verdict === 'pending') out.pending++;
      })).catch((err: unknown) => {
        if (isFedtwinError(err, 'LEDGER_INCONSISTENT')) fatal ??= err;
        throw err;
      });
      if (out.consistent === init.peers.length) settled = mine;
      log.info({ event: 'gossip', peers: init.peers.length, ...out }, `compared checkpoints with ${out.consistent} of ${init.peers.length} members${out.pending + out.unreachable > 0 ? ` (${out.pending} ahead of this replica, ${out.unreachable} unreachable)` : ''}`);
      return out;
    },
  };
}
