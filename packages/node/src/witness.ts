import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import {
  cosignatureVerifierFromPeerId, verifyConsistency, createCosignatureSigner, createEntry, createEntrySigner, createReplica, noteVerifierFromPeerId, openLedger, parseCheckpoint, verifyCheckpoint,
  type EntryPayloadInput, type EntryType, type Ledger, type LedgerEntry, type Replica,
} from '@fedtwin/ledger';

/**
 * This member's side of the audit log: it signs its own contribution and refusal entries, keeps a
 * replica of the consortium's log, checks every new checkpoint is consistent with the last one it
 * accepted and includes its own contributions, and co-signs it (docs/ledger.md).
 */
export interface Witness {
  /** Signs a member-authored entry; returns its bytes (base64) and leaf hash (hex). */
  sign(payload: EntryPayloadInput): Promise<{ entry: string; leafHash: string }>;
  readonly size: number;
  /** Verifies and stores a sync bundle; returns the cosigned note to send back. */
  accept(bundle: { entries: Uint8Array[]; checkpoint: string; consistencyProof: Uint8Array[] }, mustInclude: Array<{ leafHash: string; index?: number }>): Promise<{ note: string; size: number; rootHash: string }>;
  /**
   * Judges a whole `/fedtwin/ledger/1.0.0` reply: `checkpoint` (the signed note) and `body` (JSON
   * `{ entries: base64[], consistencyProof: hex[] }`, absent when the aggregator has nothing to send). The
   * reply's unsigned `size` is never consulted: the signed checkpoint always is, and against this replica —
   * an equal size must carry the same root (else a same-size fork), a smaller one is a rollback
   * (LEDGER_INCONSISTENT), a larger one needs the entries and a consistency proof from the last checkpoint
   * this member co-signed. On LEDGER_INCONSISTENT both signed checkpoints are written to the evidence
   * directory first. Returns the note with this member's cosignature, to send back.
   */
  syncReply(reply: { checkpoint: string; body?: Uint8Array | null; size?: number }, mustInclude: Array<{ leafHash: string; index?: number }>, opts?: SyncTiming): Promise<{ note: string; size: number; rootHash: string; appended: number }>;
  /** Where fork evidence is written. */
  readonly evidenceDir: string;
  /**
   * Judges checkpoint notes served as other members' attestations (issue 12 item 6): each must carry the
   * aggregator's signature; a note at a size this replica holds must have this replica's root there (else a
   * fork: evidence kept, LEDGER_INCONSISTENT); every other line must be a cosignature/v1 by the member it
   * names. Returns the members whose cosignature verified on a note of at least `atLeast` entries, and the
   * names on lines that did not verify. Notes larger than this replica are counted after the next sync.
   */
  attestations(notes: readonly string[], atLeast: number, members: readonly string[]): Promise<{ cosigners: string[]; forged: string[]; ahead: number }>;
  /** The latest checkpoint this replica verified, with this member's cosignature (null before the first sync). */
  latestNote(): Promise<string | null>;
  /** Consistency proof (hex) from `fromSize` to this replica's size. */
  consistencyProofFrom(fromSize: number): Promise<string[]>;
  /**
   * Judges another member's view (gossip): `note` must be signed by the aggregator and co-signed by `from`.
   * Equal or smaller: its root must be this replica's root at that size. Larger: with a `proof` that verifies,
   * it extends this replica (RFC 9162 consistency); otherwise it is kept and judged after the next sync — by
   * root at its size, or, if the aggregator still serves a smaller latest checkpoint than one it signed before
   * the sync was asked for, as a split view. A failing proof alone proves nothing (the peer may have sent a bad
   * one), so one member cannot stop another with it. A contradiction is a fork the aggregator signed: evidence
   * kept, LEDGER_INCONSISTENT.
   */
  judgePeerView(note: string, from: string, proof?: readonly string[]): Promise<'consistent' | 'pending' | 'ignored'>;
  /** Verified entries of `type` for `round` by `author` (default: the aggregator), in log order. */
  entriesFor(type: EntryType, round: number, author?: string): Promise<Array<{ index: number; entry: LedgerEntry }>>;
  /** The verified entry at `index`. */
  entryAt(index: number): Promise<LedgerEntry>;
  close(): Promise<void>;
}

/** When the sync being judged was asked for (ms since the epoch): peer views received before it are due. */
export interface SyncTiming {
  requestedAt?: number;
}

export async function openWitness(init: {
  dir: string; identity: PrivateKey; aggregatorPeerId: string; origin: string;
  /** fork evidence goes here (default: `evidence/` next to the ledger directory, i.e. `<dataDir>/evidence`) */
  evidenceDir?: string;
}): Promise<Witness> {
  const ledger: Ledger = await openLedger({ dir: init.dir, origin: init.origin });
  // v2 entry signatures: bound to this consortium's log origin (no replay into another consortium)
  const signer = createEntrySigner(init.identity, init.origin);
  const aggregatorKey = noteVerifierFromPeerId(init.aggregatorPeerId, init.origin);
  const replica: Replica = await createReplica({
    ledger, origin: init.origin,
    aggregatorKey,
    // C2SP tlog-cosignature/v1 lines under this member's peer ID
    witness: createCosignatureSigner(signer.peerId, init.identity),
  });
  const evidenceDir = init.evidenceDir ?? join(dirname(init.dir), 'evidence');
  const toInclusion = (mustInclude: Array<{ leafHash: string; index?: number }>) =>
    mustInclude.map((h) => ({ leafHash: Uint8Array.from(Buffer.from(h.leafHash, 'hex')), ...(h.index !== undefined ? { index: h.index } : {}) }));

  /** Keeps both signed checkpoints of a fork (0600 files, timestamped) before the error propagates. */
  async function keepEvidence(served: string, err: FedtwinError, entries?: readonly Uint8Array[]): Promise<void> {
    const cosigned = (await ledger.latestCheckpoint())?.note ?? null;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await mkdir(evidenceDir, { recursive: true, mode: 0o700 });
    const base = join(evidenceDir, `${stamp}-${err.code === 'LEDGER_INCONSISTENT' ? 'fork' : 'bad-entry'}`);
    const write = (path: string, text: string) => writeFile(path, text, { mode: 0o600, flag: 'wx' });
    if (cosigned !== null) await write(`${base}-cosigned.note`, cosigned);
    await write(`${base}-served.note`, served);
    await write(`${base}.json`, JSON.stringify({
      time: new Date().toISOString(), origin: init.origin, aggregator: init.aggregatorPeerId, code: err.code, message: err.message,
      details: err.details ?? null, cosigned, served,
      // the entries served with that checkpoint (base64): an entry the aggregator signed in a member's name is here
      ...(entries ? { entries: entries.map((e) => Buffer.from(e).toString('base64')) } : {}),
    }, null, 2) + '\n');
  }

  async function syncChecked(checkpoint: string, entries: Uint8Array[], consistencyProof: Uint8Array[], mustInclude: Array<{ leafHash: string; index?: number }>) {
    try {
      return await replica.sync({ entries, checkpoint, consistencyProof, mustInclude: toInclusion(mustInclude) });
    } catch (err) {
      // Only a checkpoint the aggregator signed is evidence (replica.sync checks the signature first): a fork,
      // or entries it served under its signature that break the authorship rules (e.g. a contribution it signed
      // in a member's name).
      const badEntry = isFedtwinError(err, 'LEDGER_ENTRY_INVALID');
      if (isFedtwinError(err, 'LEDGER_INCONSISTENT') || badEntry) {
        try {
          verifyCheckpoint(checkpoint, [aggregatorKey], { origin: init.origin, require: [aggregatorKey.name] });
          await keepEvidence(checkpoint, err, badEntry ? entries : undefined);
        } catch (e) {
          if (!isFedtwinError(e, 'LEDGER_CHECKPOINT_INVALID')) (err as { evidenceError?: unknown }).evidenceError = e;
        }
      }
      throw err;
    }
  }

  /** Other members' larger checkpoints not yet checkable (no proof came with them): checked after each sync. */
  const pendingViews: Array<{ note: string; from: string; size: number; rootHex: string; receivedAt: number }> = [];

  async function fork(note: string, from: string, size: number, why: string): Promise<never> {
    const err = new FedtwinError('LEDGER_INCONSISTENT', `member ${from} was shown another log: ${why}`, {
      hint: 'the aggregator shows members different histories (a split view); both signed checkpoints are kept as evidence: alert the consortium',
      details: { from, size },
    });
    await keepEvidence(note, err);
    throw err;
  }

  async function checkAgainstReplica(note: string, from: string, size: number, rootHex: string): Promise<void> {
    const mine = Buffer.from(await ledger.root(size)).toString('hex');
    if (mine !== rootHex) await fork(note, from, size, `its checkpoint of size ${size} has root ${rootHex.slice(0, 16)}…, this member verified ${mine.slice(0, 16)}… at that size`);
  }

  async function judgePeerView(note: string, from: string, proof?: readonly string[]): Promise<'consistent' | 'pending' | 'ignored'> {
    let cp: ReturnType<typeof verifyCheckpoint>;
    try {
      cp = verifyCheckpoint(note, [aggregatorKey], { origin: init.origin, require: [aggregatorKey.name] });
    } catch {
      return 'ignored'; // not a checkpoint of this consortium's log: proves nothing either way
    }
    // Only a view the member itself vouches for (its own cosignature line) can show a split.
    const v = cosignatureVerifierFromPeerId(from);
    const text = new TextEncoder().encode(cp.text);
    if (!parseCheckpoint(note).signatures.some((sig) => sig.name === from && sig.keyId === v.keyId && v.verify(text, sig.signature))) return 'ignored';
    const { size } = cp.checkpoint;
    const rootHex = Buffer.from(cp.checkpoint.rootHash).toString('hex');
    if (size <= ledger.size) {
      await checkAgainstReplica(note, from, size, rootHex);
      return 'consistent';
    }
    if (proof && proof.length > 0 && ledger.size > 0) {
      try {
        verifyConsistency(ledger.size, size, proof.map((h) => Uint8Array.from(Buffer.from(h, 'hex'))), ledger.rootHash, cp.checkpoint.rootHash);
        return 'consistent';
      } catch {
        // a split view, or a bad proof from the peer: the next sync decides (below)
      }
    }
    if (pendingViews.length < 64) pendingViews.push({ note, from, size, rootHex, receivedAt: Date.now() });
    return 'pending';
  }

  /**
   * After a sync: every pending view now within this replica is checked by root. One still beyond it, received
   * before this sync was asked for, is a split view: the aggregator had signed that larger checkpoint, and an
   * honest one serves its latest checkpoint on every sync (it never serves a smaller one afterwards).
   */
  async function checkPendingViews(requestedAt: number | undefined): Promise<void> {
    for (let i = pendingViews.length - 1; i >= 0; i--) {
      const p = pendingViews[i]!;
      if (p.size > ledger.size) {
        if (requestedAt !== undefined && p.receivedAt < requestedAt) {
          pendingViews.splice(i, 1);
          await fork(p.note, p.from, p.size, `it holds the aggregator's signed checkpoint of size ${p.size}, but the aggregator's latest checkpoint served to this member afterwards is of size ${ledger.size}`);
        }
        continue;
      }
      pendingViews.splice(i, 1);
      await checkAgainstReplica(p.note, p.from, p.size, p.rootHex);
    }
  }

  return {
    get size() { return ledger.size; },
    evidenceDir,
    async sign(payload) {
      const e = await createEntry({ ...payload, time: Date.now() } as EntryPayloadInput, signer);
      return { entry: Buffer.from(e.bytes).toString('base64'), leafHash: Buffer.from(e.leafHash).toString('hex') };
    },
    async accept(bundle, mustInclude) {
      // Each own contribution must sit at the leaf index the aggregator acknowledged.
      const r = await syncChecked(bundle.checkpoint, bundle.entries, bundle.consistencyProof, mustInclude);
      return { note: r.note, size: r.size, rootHash: Buffer.from(r.rootHash).toString('hex') };
    },
    async entriesFor(type, round, author = init.aggregatorPeerId) {
      const out: Array<{ index: number; entry: LedgerEntry }> = [];
      for (const index of await ledger.findAllByKey(type, round, author)) out.push({ index, entry: await ledger.getEntry(index) });
      return out;
    },
    entryAt: (index) => ledger.getEntry(index),
    async latestNote() {
      return (await ledger.latestCheckpoint())?.note ?? null;
    },
    async consistencyProofFrom(fromSize) {
      if (fromSize <= 0 || fromSize >= ledger.size) return [];
      return (await ledger.consistencyProof(fromSize)).map((h) => Buffer.from(h).toString('hex'));
    },
    judgePeerView: (note, from, proof) => judgePeerView(note, from, proof),
    async attestations(notes, atLeast, members) {
      const memberSet = new Set(members);
      const cosigners = new Set<string>();
      const forged = new Set<string>();
      let ahead = 0;
      for (const note of notes) {
        let cp: ReturnType<typeof verifyCheckpoint>;
        try {
          cp = verifyCheckpoint(note, [aggregatorKey], { origin: init.origin, require: [aggregatorKey.name] });
        } catch {
          forged.add(init.aggregatorPeerId); // not even the aggregator's own signature: worthless
          continue;
        }
        const { size, rootHash } = cp.checkpoint;
        if (size < atLeast) continue;
        if (size > ledger.size) { ahead++; continue; }
        const mine = Buffer.from(await ledger.root(size)).toString('hex');
        if (mine !== Buffer.from(rootHash).toString('hex')) {
          // The aggregator signed another root for a size this member verified: a fork, provable to anyone.
          const err = new FedtwinError('LEDGER_INCONSISTENT', `the aggregator signed two different trees of size ${size}: ${mine.slice(0, 16)}… (verified here) and ${Buffer.from(rootHash).toString('hex').slice(0, 16)}… (shown as other members' view)`, {
            hint: 'the aggregator shows members different histories; both signed checkpoints are kept as evidence: alert the consortium',
            details: { size, verified: mine, served: Buffer.from(rootHash).toString('hex') },
          });
          await keepEvidence(note, err);
          throw err;
        }
        const text = new TextEncoder().encode(parseCheckpoint(note).text);
        for (const sig of parseCheckpoint(note).signatures) {
          if (sig.name === aggregatorKey.name) continue;
          if (!memberSet.has(sig.name)) { forged.add(sig.name); continue; }
          const v = cosignatureVerifierFromPeerId(sig.name);
          if (sig.keyId === v.keyId && v.verify(text, sig.signature)) cosigners.add(sig.name);
          else forged.add(sig.name);
        }
      }
      return { cosigners: [...cosigners], forged: [...forged], ahead };
    },
    async syncReply(reply, mustInclude, opts) {
      if (!reply || typeof reply.checkpoint !== 'string') throw new FedtwinError('LEDGER_SYNC_INVALID', 'the ledger sync reply carries no checkpoint');
      let entries: Uint8Array[] = [];
      let consistencyProof: Uint8Array[] = [];
      if (reply.body && reply.body.byteLength > 0) {
        let parsed: { entries?: unknown; consistencyProof?: unknown };
        try {
          parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(reply.body)) as typeof parsed;
        } catch (e) {
          throw new FedtwinError('LEDGER_SYNC_INVALID', `the ledger sync body is not JSON: ${(e as Error).message}`);
        }
        const strings = (v: unknown, what: string): string[] => {
          if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new FedtwinError('LEDGER_SYNC_INVALID', `the ledger sync body's ${what} is not an array of strings`);
          return v as string[];
        };
        entries = strings(parsed.entries, 'entries').map((e) => Uint8Array.from(Buffer.from(e, 'base64')));
        consistencyProof = strings(parsed.consistencyProof, 'consistencyProof').map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
      }
      // Always through the replica: signature, size and root against what this member holds, whatever `size` says.
      const r = await syncChecked(reply.checkpoint, entries, consistencyProof, mustInclude);
      await checkPendingViews(opts?.requestedAt);
      return { note: r.note, size: r.size, rootHash: Buffer.from(r.rootHash).toString('hex'), appended: r.appended };
    },
    close: () => ledger.close(),
  };
}
