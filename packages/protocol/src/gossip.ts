// Member-to-member gossip of co-signed checkpoints (issue 12 item 6): members compare the views of the log
// the aggregator served them, directly, so a split view is caught by the members themselves.
import { z } from 'zod';

export const GOSSIP_PROTOCOL = 'gossip';
/** A consistency proof of a log up to 2^64 entries has at most 2·64 hashes. */
export const MAX_GOSSIP_PROOF = 128;
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** The sender's latest checkpoint: the aggregator's signed note with the sender's own cosignature line. */
export const GossipRequest = z.object({ note: z.string().max(65_536) }).strict();
/**
 * The responder's latest co-signed checkpoint (null before its first sync) and, when it is larger than the
 * requester's, the consistency proof from the requester's size to it, so the requester can check at once.
 */
export const GossipResponse = z.object({ note: z.string().max(65_536).nullable(), consistencyProof: z.array(hex64).max(MAX_GOSSIP_PROOF) }).strict();
