import type { PrivateKey } from '@libp2p/interface';
import { FedtwinError } from '@fedtwin/errors';
import {
  createEntry, createEntrySigner, createNoteSigner, decodeEntryAsync, noteVerifierFromPeerId, openLedger, sha256Hex,
  type EntryPayloadInput, type Ledger, type LedgerEntry,
} from '@fedtwin/ledger';

/**
 * The consortium's audit log: an append-only Merkle log (RFC 9162) of who contributed what, when,
 * under which privacy spend, signed entry by entry, with a checkpoint signed after every round and
 * co-signed by members acting as witnesses (docs/ledger.md).
 */
export interface AuditLog {
  readonly origin: string;
  readonly size: number;
  /** Appends an entry the aggregator authors (membership, round, aggregate, key). */
  record(payload: EntryPayloadInput): Promise<{ index: number }>;
  /** Appends an entry a member signed (contribution, refusal) after checking who signed what. */
  recordMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<{ index: number }>;
  /** Decodes and checks a member-signed entry without appending it (so a request can be refused before anything changes). */
  checkMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<LedgerEntry>;
  /** Decodes and checks a member's signed verdict on a sum without appending it. */
  checkVerdictEntry(bytes: Uint8Array, expect: { author: string; round: number; sumHash: string; participants: number; valid: boolean; version?: number; probe?: string }): Promise<LedgerEntry>;
  /** Appends an entry checkMemberEntry accepted. */
  appendChecked(entry: LedgerEntry): Promise<{ index: number }>;
  /** Signs a checkpoint of the current tree (after each round). */
  checkpoint(): Promise<string>;
  syncBundle(fromSize: number): ReturnType<Ledger['syncBundle']>;
  latestCheckpoint(): ReturnType<Ledger['latestCheckpoint']>;
  /** Merges a member's cosignature into the stored checkpoint; returns the number of cosignatures. */
  cosign(note: string, peer: string): Promise<number>;
  summary(): Promise<{ size: number; rootHash: string; checkpoint: string | null; cosignatures: number }>;
  close(): Promise<void>;
}


export interface MemberEntryExpectation {
  author: string;
  type: 'contribution' | 'refusal';
  round: number;
  body?: Uint8Array;
  keyId?: string;
  /** The round's base (model version id) a contribution must name. */
  base?: string;
}

export async function openAuditLog(init: { dir: string; identity: PrivateKey; consortium: string; members: string[] }): Promise<AuditLog> {
  const ledger = await openLedger({ dir: init.dir });
  const signer = createEntrySigner(init.identity);
  const origin = `fedtwin/${init.consortium}`;
  const note = createNoteSigner(origin, init.identity);
  const aggregatorVerifier = noteVerifierFromPeerId(signer.peerId, origin);
  const now = () => Date.now();
  // A new log starts with the membership it was created with.
  if (ledger.size === 0) {
    const admits: LedgerEntry[] = [];
    for (const m of init.members) admits.push(await createEntry({ type: 'membership', v: 1, action: 'admit', peerId: m, time: now() }, signer));
    await ledger.appendMany(admits);
    await ledger.signCheckpoint(note);
  }
  async function checkMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<LedgerEntry> {
    let entry: LedgerEntry;
    try {
      entry = await decodeEntryAsync(bytes);
    } catch (err) {
      throw new FedtwinError('AGG_BAD_ENTRY', `the ledger entry does not verify: ${(err as Error).message}`, { cause: err });
    }
    const p = entry.payload;
    const bad = (why: string) => new FedtwinError('AGG_BAD_ENTRY', `ledger entry rejected: ${why}`);
    if (entry.author !== expect.author) throw bad(`signed by ${entry.author}, sent by ${expect.author}`);
    if (p.type !== expect.type) throw bad(`a ${p.type} entry where a ${expect.type} entry was expected`);
    if (p.round !== expect.round || p.node !== expect.author) throw bad('round or node does not match the message');
    if (p.type === 'contribution' && expect.body) {
      if (p.ciphertextHash !== sha256Hex(expect.body) || p.ciphertextSize !== expect.body.length) throw bad('ciphertext hash or size does not match the update');
      if (expect.keyId !== undefined && p.keyId !== expect.keyId) throw bad(`key id ${p.keyId} is not ${expect.keyId}`);
      if (expect.base !== undefined && p.globalVersion !== expect.base) throw bad(`it names base ${p.globalVersion ?? '(none)'}, the round's base is ${expect.base}`);
    }
    return entry;
  }
  async function checkVerdictEntry(bytes: Uint8Array, expect: { author: string; round: number; sumHash: string; participants: number; valid: boolean; version?: number; probe?: string }): Promise<LedgerEntry> {
    let entry: LedgerEntry;
    try {
      entry = await decodeEntryAsync(bytes);
    } catch (err) {
      throw new FedtwinError('AGG_BAD_ENTRY', `the ledger entry does not verify: ${(err as Error).message}`, { cause: err });
    }
    const p = entry.payload;
    const bad = (why: string) => new FedtwinError('AGG_BAD_ENTRY', `verdict entry rejected: ${why}`);
    if (entry.author !== expect.author) throw bad(`signed by ${entry.author}, sent by ${expect.author}`);
    if (p.type !== 'verdict') throw bad(`a ${p.type} entry where a verdict entry was expected`);
    if (p.node !== expect.author || p.round !== expect.round || p.sumHash !== expect.sumHash || p.participants !== expect.participants || p.valid !== expect.valid
      || p.version !== expect.version || p.probe !== expect.probe) throw bad('it does not match the message (node, round, sum hash, participants, verdict, version or probe)');
    return entry;
  }
  return {
    origin,
    get size() { return ledger.size; },
    checkVerdictEntry,
    async record(payload) {
      const { index } = await ledger.append(await createEntry({ ...payload, time: now() } as EntryPayloadInput, signer));
      return { index };
    },
    async recordMemberEntry(bytes, expect) {
      const { index } = await ledger.append(await checkMemberEntry(bytes, expect));
      return { index };
    },
    async appendChecked(entry) {
      const { index } = await ledger.append(entry);
      return { index };
    },
    checkMemberEntry,
    async checkpoint() {
      return ledger.signCheckpoint(note);
    },
    syncBundle: (from) => ledger.syncBundle(from),
    latestCheckpoint: () => ledger.latestCheckpoint(),
    async cosign(noteText, peer) {
      const merged = await ledger.addCosignatures(noteText, [aggregatorVerifier, noteVerifierFromPeerId(peer)]);
      return countSignatures(merged) - 1;
    },
    async summary() {
      const latest = await ledger.latestCheckpoint();
      return {
        size: ledger.size, rootHash: Buffer.from(ledger.rootHash).toString('hex'),
        checkpoint: latest?.note ?? null, cosignatures: latest ? countSignatures(latest.note) - 1 : 0,
      };
    },
    close: () => ledger.close(),
  };
}

function countSignatures(note: string): number {
  return note.split('\n').filter((l) => l.startsWith('— ')).length;
}
