import type { PrivateKey } from '@libp2p/interface';
import { FedtwinError } from '@fedtwin/errors';
import {
  cosignatureVerifierFromPeerId, createEntry, createEntrySigner, createNoteSigner, decodeEntryAsync, MAX_NOTE_SIGNATURES, openLedger, parseCheckpoint, sha256Hex,
  type EntryPayloadInput, type EntryType, type Ledger, type LedgerEntry,
} from '@fedtwin/ledger';

/**
 * The consortium's audit log: an append-only Merkle log (RFC 9162) of who contributed what, when,
 * under which privacy spend, signed entry by entry, with a checkpoint signed after every round and
 * co-signed by members acting as witnesses (docs/ledger.md).
 */
export interface AuditLog {
  readonly origin: string;
  readonly size: number;
  /**
   * Appends an entry the aggregator authors (membership, round, aggregate, key, exclusion). `round` (open) and
   * `aggregate` entries are idempotent by default (see RecordOptions): a retry after a crash returns the entry
   * already there.
   */
  record(payload: EntryPayloadInput, opts?: RecordOptions): Promise<{ index: number; existed?: true }>;
  /**
   * Appends an entry a member signed (contribution, refusal) after checking who signed what. Idempotent per
   * (author, type, round): the very same entry again returns its index; a different one throws AGG_DUPLICATE.
   */
  recordMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<{ index: number; existed?: true }>;
  /** Decodes and checks a member-signed entry without appending it (so a request can be refused before anything changes). */
  checkMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<LedgerEntry>;
  /** Decodes and checks a member's signed verdict on a sum without appending it. */
  checkVerdictEntry(bytes: Uint8Array, expect: { author: string; round: number; sumHash: string; participants: number; valid: boolean; version?: number; probe?: string }): Promise<LedgerEntry>;
  /** Decodes and checks a member's signed secagg entry (keys, shares, reveal) for `round` without appending it. */
  checkSecaggEntry(bytes: Uint8Array, expect: { author: string; type: 'secagg-keys' | 'secagg-shares' | 'secagg-reveal'; round: number }): Promise<LedgerEntry>;
  /** Appends an entry checkMemberEntry accepted (contribution and refusal: idempotent, as recordMemberEntry). */
  appendChecked(entry: LedgerEntry): Promise<{ index: number; existed?: true }>;
  /** Leaf indices (ascending) of `type` entries for `round` signed by `author` (default: the aggregator). */
  findAllByKey(type: EntryType, round: number, author?: string): Promise<number[]>;
  /** The entry at leaf `index`. */
  entry(index: number): Promise<LedgerEntry>;
  /** The aggregator's peer ID (author of the entries it records). */
  readonly author: string;
  /** Signs a checkpoint of the current tree (after each round). */
  checkpoint(): Promise<string>;
  syncBundle(fromSize: number): ReturnType<Ledger['syncBundle']>;
  latestCheckpoint(): ReturnType<Ledger['latestCheckpoint']>;
  /** Merges a member's cosignature into the stored checkpoint; returns the number of cosignatures. */
  cosign(note: string, peer: string): Promise<number>;
  summary(): Promise<{ size: number; rootHash: string; checkpoint: string | null; cosignatures: number }>;
  /** Stored checkpoint notes of at least `fromSize` entries that carry a member's cosignature, newest first (at most `limit`). */
  witnessNotes(fromSize: number, limit: number): Promise<string[]>;
  close(): Promise<void>;
}


/**
 * Idempotency of aggregator-authored entries. A crash between the aggregator's state store and the ledger
 * means the same logical entry may be recorded twice (once before the crash, once by reconciliation or a
 * retry after it); these keys make the second time return the first entry:
 *  - `round` (action open): one per round number. A round is opened once; a failed round is never reopened
 *    under the same number (the next round gets the next number).
 *  - `aggregate`: keyed by (round, aggregateHash), not by round alone, because a round's aggregate may be
 *    withdrawn (an `exclusion` entry with action 'withdraw' naming its aggregateHash) and replaced by a new
 *    `aggregate` entry for the same round. The entry counts as already there when the latest aggregate of the
 *    round has the same aggregateHash and no withdrawal of that hash follows it; re-publishing a withdrawn sum
 *    (same hash after its withdrawal) appends a new entry.
 * `{ idempotent: false }` always appends (no caller needs that today). Other types always append.
 */
export interface RecordOptions {
  idempotent?: boolean;
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

export async function openAuditLog(init: { dir: string; identity: PrivateKey; consortium: string; members: string[]; manifestHash?: string }): Promise<AuditLog> {
  const origin = `fedtwin/${init.consortium}`;
  const ledger = await openLedger({ dir: init.dir, origin });
  // v2 entry signatures: bound to this log's origin (docs/ledger.md §1)
  const signer = createEntrySigner(init.identity, origin);
  const note = createNoteSigner(origin, init.identity);
  const now = () => Date.now();
  // A new log starts with the membership it was created with.
  if (ledger.size === 0) {
    const admits: LedgerEntry[] = [];
    // The first entry names the consortium manifest every member pinned.
    if (init.manifestHash) admits.push(await createEntry({ type: 'consortium', v: 1, consortium: init.consortium, manifestHash: init.manifestHash, aggregator: signer.peerId, members: init.members, time: now() }, signer));
    for (const m of init.members) admits.push(await createEntry({ type: 'membership', v: 1, action: 'admit', peerId: m, time: now() }, signer));
    await ledger.appendMany(admits);
    await ledger.signCheckpoint(note);
  }
  /** Decodes a member's signed entry and checks it is of `type` and signed by the sender (AGG_BAD_ENTRY otherwise). */
  async function decodeFromSender(bytes: Uint8Array, author: string, type: string): Promise<{ entry: LedgerEntry; bad: (why: string) => FedtwinError }> {
    let entry: LedgerEntry;
    try {
      entry = await decodeEntryAsync(bytes, origin);
    } catch (err) {
      throw new FedtwinError('AGG_BAD_ENTRY', `the ledger entry does not verify: ${(err as Error).message}`, { cause: err });
    }
    const bad = (why: string) => new FedtwinError('AGG_BAD_ENTRY', `${type} entry rejected: ${why}`);
    if (entry.author !== author) throw bad(`signed by ${entry.author}, sent by ${author}`);
    if (entry.payload.type !== type) throw bad(`a ${entry.payload.type} entry where a ${type} entry was expected`);
    return { entry, bad };
  }
  async function checkMemberEntry(bytes: Uint8Array, expect: MemberEntryExpectation): Promise<LedgerEntry> {
    const { entry, bad } = await decodeFromSender(bytes, expect.author, expect.type);
    const p = entry.payload;
    if (p.type !== 'contribution' && p.type !== 'refusal') throw bad(`a ${p.type} entry is not a member's contribution or refusal`);
    if (p.round !== expect.round || p.node !== expect.author) throw bad('round or node does not match the message');
    if (p.type === 'contribution' && expect.body) {
      if (p.ciphertextHash !== sha256Hex(expect.body) || p.ciphertextSize !== expect.body.length) throw bad('ciphertext hash or size does not match the update');
      if (expect.keyId !== undefined && p.keyId !== expect.keyId) throw bad(`key id ${p.keyId} is not ${expect.keyId}`);
      if (expect.base !== undefined && p.globalVersion !== expect.base) throw bad(`it names base ${p.globalVersion ?? '(none)'}, the round's base is ${expect.base}`);
    }
    return entry;
  }
  async function checkVerdictEntry(bytes: Uint8Array, expect: { author: string; round: number; sumHash: string; participants: number; valid: boolean; version?: number; probe?: string }): Promise<LedgerEntry> {
    const { entry, bad } = await decodeFromSender(bytes, expect.author, 'verdict');
    const p = entry.payload;
    if (p.type !== 'verdict') throw bad('not a verdict');
    if (p.node !== expect.author || p.round !== expect.round || p.sumHash !== expect.sumHash || p.participants !== expect.participants || p.valid !== expect.valid
      || p.version !== expect.version || p.probe !== expect.probe) throw bad('it does not match the message (node, round, sum hash, participants, verdict, version or probe)');
    return entry;
  }
  async function checkSecaggEntry(bytes: Uint8Array, expect: { author: string; type: 'secagg-keys' | 'secagg-shares' | 'secagg-reveal'; round: number }): Promise<LedgerEntry> {
    const { entry, bad } = await decodeFromSender(bytes, expect.author, expect.type);
    const p = entry.payload;
    if ((p.type !== 'secagg-keys' && p.type !== 'secagg-shares' && p.type !== 'secagg-reveal') || p.node !== expect.author || p.round !== expect.round) throw bad('round or node does not match the message');
    return entry;
  }
  // Look-up and append run as one step (a duplicate check racing another append of the same key would let both in).
  let lock: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = lock.then(fn, fn);
    lock = run.catch(() => undefined);
    return run;
  };
  const self = signer.peerId;

  /** The entry already standing for this aggregator-authored payload (see RecordOptions), if any. */
  async function existingFor(payload: EntryPayloadInput): Promise<number | undefined> {
    if (payload.type === 'round') return ledger.findByKey('round', payload.round, self);
    if (payload.type !== 'aggregate') return undefined;
    const aggs = await ledger.findAllByKey('aggregate', payload.round, self);
    const last = aggs.at(-1);
    if (last === undefined) return undefined;
    const e = await ledger.getEntry(last);
    if (e.payload.type !== 'aggregate' || e.payload.aggregateHash !== payload.aggregateHash) return undefined;
    for (const x of await ledger.findAllByKey('exclusion', payload.round, self)) {
      if (x < last) continue;
      const w = (await ledger.getEntry(x)).payload;
      if (w.type === 'exclusion' && w.action === 'withdraw' && w.aggregateHash === payload.aggregateHash) return undefined;
    }
    return last;
  }

  /** Appends a member's contribution or refusal unless that member already answered the round. */
  async function appendMember(entry: LedgerEntry): Promise<{ index: number; existed?: true }> {
    const p = entry.payload;
    if (p.type !== 'contribution' && p.type !== 'refusal') return { index: (await ledger.append(entry)).index };
    return exclusive(async () => {
      const same = await ledger.findAllByKey(p.type, p.round, entry.author);
      if (same.length > 0) {
        // The very same bytes again (a member re-sending after a crash on either side): already recorded.
        if (Buffer.from(await ledger.leafHash(same[0]!)).equals(entry.leafHash)) return { index: same[0]!, existed: true as const };
        throw new FedtwinError('AGG_DUPLICATE', `member ${entry.author} already has a ${p.type} entry for round ${p.round} (leaf ${same[0]})`, {
          hint: 'a member answers a round once; poll for the next round',
        });
      }
      const other = p.type === 'contribution' ? 'refusal' : 'contribution';
      const theOther = await ledger.findByKey(other, p.round, entry.author);
      if (theOther !== undefined) {
        throw new FedtwinError(p.type === 'contribution' ? 'AGG_ALREADY_REFUSED' : 'AGG_ALREADY_CONTRIBUTED',
          `member ${entry.author} already has a ${other} entry for round ${p.round} (leaf ${theOther}); it cannot also ${p.type === 'contribution' ? 'contribute to' : 'decline'} it`,
          { hint: 'poll for the next round' });
      }
      return { index: (await ledger.append(entry)).index };
    });
  }

  return {
    origin,
    author: self,
    get size() { return ledger.size; },
    checkVerdictEntry,
    async record(payload, opts = {}) {
      return exclusive(async () => {
        if (opts.idempotent !== false) {
          const existing = await existingFor(payload);
          if (existing !== undefined) return { index: existing, existed: true as const };
        }
        const { index } = await ledger.append(await createEntry({ ...payload, time: now() } as EntryPayloadInput, signer));
        return { index };
      });
    },
    async recordMemberEntry(bytes, expect) {
      return appendMember(await checkMemberEntry(bytes, expect));
    },
    appendChecked: appendMember,
    findAllByKey: (type, round, author = self) => ledger.findAllByKey(type, round, author),
    entry: (index) => ledger.getEntry(index),
    checkMemberEntry,
    checkSecaggEntry,
    async checkpoint() {
      return ledger.signCheckpoint(note);
    },
    syncBundle: (from) => ledger.syncBundle(from),
    latestCheckpoint: () => ledger.latestCheckpoint(),
    async cosign(noteText, peer) {
      // Only the sender's own C2SP cosignature/v1 line, verified with the key inside its peer ID, over the
      // text of a checkpoint this log signed; every other line the sender supplies is ignored (issue 12).
      const bad = (why: string) => new FedtwinError('AGG_BAD_COSIGNATURE', `cosignature from ${peer} refused: ${why}`, {
        hint: 'send the checkpoint note with your own cosignature/v1 line (fedtwin node does this after verifying a sync)',
      });
      let parsed: ReturnType<typeof parseCheckpoint>;
      let verifier: ReturnType<typeof cosignatureVerifierFromPeerId>;
      try {
        parsed = parseCheckpoint(noteText);
        verifier = cosignatureVerifierFromPeerId(peer);
      } catch (err) {
        throw bad((err as Error).message);
      }
      const own = parsed.signatures.filter((sig) => sig.name === peer && sig.keyId === verifier.keyId);
      if (own.length !== 1) throw bad(own.length === 0 ? 'the note carries no cosignature/v1 line under the sender\'s peer ID' : 'the note carries more than one line under the sender\'s peer ID');
      if (!verifier.verify(new TextEncoder().encode(parsed.text), own[0]!.signature)) throw bad('the sender\'s cosignature does not verify with its peer ID\'s key');
      const stored = await ledger.checkpointAt(parsed.checkpoint.size);
      if (stored === undefined || parseCheckpoint(stored).text !== parsed.text) throw bad(`no checkpoint of this log has that text (size ${parsed.checkpoint.size})`);
      // A member's line is added once (mergeNotes keeps the first line per key); a full note stays as it is.
      const current = parseCheckpoint(stored).signatures;
      if (current.some((sig) => sig.name === peer && sig.keyId === verifier.keyId) || current.length >= MAX_NOTE_SIGNATURES) return current.length - 1;
      const merged = await ledger.addCosignatures(`${parsed.text}\n${own[0]!.line}\n`, [verifier]);
      return countSignatures(merged) - 1;
    },
    async summary() {
      const latest = await ledger.latestCheckpoint();
      return {
        size: ledger.size, rootHash: Buffer.from(ledger.rootHash).toString('hex'),
        checkpoint: latest?.note ?? null, cosignatures: latest ? countSignatures(latest.note) - 1 : 0,
      };
    },
    async witnessNotes(fromSize, limit) {
      const all = await ledger.listCheckpoints();
      return all.filter((c) => c.size >= fromSize && countSignatures(c.note) > 1).sort((a, b) => b.size - a.size).slice(0, limit).map((c) => c.note);
    },
    close: () => ledger.close(),
  };
}

function countSignatures(note: string): number {
  return note.split('\n').filter((l) => l.startsWith('— ')).length;
}
