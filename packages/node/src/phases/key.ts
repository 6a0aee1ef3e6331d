// Key: the secure-aggregation scheme this round loop encodes with — BFV under the consortium key (the
// HE key ceremony, scheme.ts), or plaintext (baseline).
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import type { z } from 'zod';
import { FedtwinError } from '@fedtwin/errors';
import { KeyPublishAck, KeyResponse, MAX_TASK_WAIT_MS, Protocols, type JoinResponse } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import type { AggregatorCall } from '../call.ts';
import { bfvMember, plaintextMember, secaggMember, type KeyCeremonyIo, type MemberScheme } from '../scheme.ts';

type KeyResponseT = z.infer<typeof KeyResponse>;

export async function openScheme(init: NodeInit, join: JoinResponse, call: AggregatorCall, giveUpMs: number): Promise<MemberScheme> {
  const sa = join.secureAggregation;
  if (sa.scheme === 'secagg') {
    // No key to fetch: fresh keys per round (phases/secagg.ts). The recovery request is read in the ledger replica.
    if (!init.identity || !init.ledgerDir) throw new FedtwinError('NODE_BAD_INIT', 'secure aggregation by masking needs the member identity (it signs its keys) and a ledger replica (recovery requests are read there)', { hint: 'give the node its identity key and a ledger directory' });
    return secaggMember(sa);
  }
  if (sa.scheme !== 'bfv') {
    const scheme = plaintextMember();
    init.logger.warn({ event: 'plaintext-aggregation' }, 'secure aggregation is OFF: updates travel in plaintext (baseline mode)');
    return scheme;
  }
  if (!init.identity) throw new FedtwinError('NODE_BAD_INIT', 'secure aggregation needs the member identity to open its sealed HE key');
  return bfvMember({
    config: sa, announcedKeyId: join.keyId, identity: init.identity, peerId: init.host.peerId,
    keyFile: init.heKeyFile ?? `${dirname(init.dataDir)}/he-secret.key`, logger: init.logger, giveUpMs,
    threads: init.heThreads ?? Math.min(2, availableParallelism()),
    io: keyCeremonyIo(call),
  });
}

/** The key ceremony's two requests: long-poll for this member's sealed key; publish the boxes (key holder). */
function keyCeremonyIo(call: AggregatorCall): KeyCeremonyIo {
  return {
    fetchKey: async () => (await call(Protocols.key, { waitMs: MAX_TASK_WAIT_MS }, KeyResponse, { timeoutMs: MAX_TASK_WAIT_MS + 30_000 })).header as KeyResponseT,
    publish: async (keyId, epoch, boxes) => {
      await call(Protocols.keyPublish, { keyId, epoch, boxes: boxes.length }, KeyPublishAck, { body: new TextEncoder().encode(JSON.stringify(boxes)) });
    },
  };
}
