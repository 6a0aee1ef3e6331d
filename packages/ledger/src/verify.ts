// Offline audit of a ledger directory (works on a copy; opens it read-only).
//
// One sequential pass: every entry is parsed (canonical form, schema), its leaf hash recomputed and its
// signature checked (on worker threads, overlapping the next chunk's reads); every stored tree node is
// compared with the node recomputed from the leaves (nodes are keyed by their last leaf, so they stream in
// the order they are rebuilt); every stored checkpoint's signature is checked and its root compared with
// the recomputed root at its size; consecutive checkpoints are checked with RFC 9162 consistency proofs.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { bytesEqual, readU64be, toHex, utf8 } from './bytes.ts';
import { parseEntry, type EntryType, type LedgerEntry } from './entry.ts';
import { createSignaturePool } from './sigpool.ts';
import { emptyRoot, pushLeaf, rootOfRange, verifyConsistency, type HashedNode } from './merkle.ts';
import { parseCheckpoint, parseVerifierKey, verifyCheckpoint, type Checkpoint, type NoteVerifier } from './checkpoint.ts';
import { ledgerInternals, openLedgerForAudit, parseNodeKey, type Ledger } from './ledger.ts';

export interface LedgerSummary {
  entries: number;
  /** root of the whole tree, hex */
  rootHash: string;
  entriesByType: Record<EntryType, number>;
  /** distinct rounds opened */
  rounds: number;
  contributionsPerNode: Record<string, number>;
  /** latest epsilonTotal each node reported */
  epsilonPerNode: Record<string, number>;
  /** latest deltaTotal each node reported */
  deltaPerNode: Record<string, number>;
  refusalsPerNode: Record<string, number>;
  /** admitted and not removed */
  members: string[];
  checkpoints: number;
  latestCheckpoint: { size: number; rootHash: string; origin: string; signatures: string[] } | null;
  /** entries after the latest checkpoint (not yet covered by a signature) */
  uncheckpointedEntries: number;
  /** verifier key used for checkpoint signatures */
  checkpointKey: string | null;
}

export type VerifyFailureCode =
  | 'LEDGER_ENTRY_MISSING'
  | 'LEDGER_ENTRY_INVALID'
  | 'LEDGER_LEAF_HASH_MISMATCH'
  | 'LEDGER_NODE_MISMATCH'
  | 'LEDGER_SIGNATURE_INVALID'
  | 'LEDGER_CHECKPOINT_INVALID'
  | 'LEDGER_CHECKPOINT_MISMATCH'
  | 'LEDGER_INCONSISTENT';

export type VerifyResult =
  | { ok: true; summary: LedgerSummary }
  | {
      ok: false;
      /** first bad entry index, when the problem is tied to one */
      index: number | null;
      /** checkpoint involved, when there is one */
      checkpointSize?: number;
      code: VerifyFailureCode;
      message: string;
      /** summary of the entries before the failure */
      summary: LedgerSummary;
    };

export interface VerifyOptions {
  /** C2SP verifier keys trusted to sign checkpoints; default: the key recorded in the ledger */
  trustedKeys?: readonly string[];
  /** entries per read chunk */
  chunk?: number;
  /** signature-checking worker threads (default: available cores) */
  threads?: number;
}

/** The part of a Level iterator used here (rows as [key, value] views). */
interface RowIterator {
  nextv(size: number): Promise<[Uint8Array, Uint8Array][]>;
  close(): Promise<void>;
}

class Failure extends Error {
  readonly code: VerifyFailureCode;
  readonly index: number | null;
  readonly checkpointSize: number | undefined;
  constructor(code: VerifyFailureCode, index: number | null, message: string, checkpointSize?: number) {
    super(message);
    this.code = code;
    this.index = index;
    this.checkpointSize = checkpointSize;
  }
}

class Tally {
  entries = 0;
  byType: Record<EntryType, number> = { membership: 0, round: 0, contribution: 0, aggregate: 0, key: 0, refusal: 0 };
  rounds = new Set<number>();
  contributions: Record<string, number> = {};
  epsilon: Record<string, number> = {};
  delta: Record<string, number> = {};
  refusals: Record<string, number> = {};
  members = new Set<string>();
  /** round of the contribution at each index; NaN for other entry types */
  contributionRound: Float64Array;

  constructor(size: number) {
    this.contributionRound = new Float64Array(size).fill(NaN);
  }

  add(index: number, e: LedgerEntry): void {
    const p = e.payload;
    this.entries++;
    this.byType[p.type]++;
    switch (p.type) {
      case 'membership':
        if (p.action === 'admit') this.members.add(p.peerId);
        else this.members.delete(p.peerId);
        break;
      case 'round':
        this.rounds.add(p.round);
        break;
      case 'contribution':
        this.contributions[p.node] = (this.contributions[p.node] ?? 0) + 1;
        this.epsilon[p.node] = p.epsilonTotal;
        this.delta[p.node] = p.deltaTotal;
        this.contributionRound[index] = p.round;
        break;
      case 'aggregate':
        for (const j of p.contributions) {
          if (j >= index || this.contributionRound[j] !== p.round) {
            throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: aggregate for round ${p.round} includes leaf ${j}, which is not an earlier contribution to that round`);
          }
        }
        break;
      case 'refusal':
        this.refusals[p.node] = (this.refusals[p.node] ?? 0) + 1;
        break;
      case 'key':
        break;
    }
  }
}

/** Audits a ledger directory; never throws for a bad ledger (returns ok: false), only for I/O or a locked dir. */
export async function verifyLedgerDir(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const ledger = await openLedgerForAudit(dir);
  try {
    return await verifyOpenLedger(ledger, opts);
  } finally {
    await ledger.close();
  }
}

export async function verifyOpenLedger(ledger: Ledger, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const n = ledger.size;
  const tally = new Tally(n);
  const range: HashedNode[] = [];
  const recorded = await ledger.checkpointKey();
  const keys = opts.trustedKeys ?? (recorded ? [recorded] : []);
  let checkpointKey: string | null = keys[0] ?? null;
  const cps: { size: number; checkpoint: Checkpoint; signatures: string[] }[] = [];
  const summary = (): LedgerSummary => {
    const latest = cps.length ? cps[cps.length - 1] : undefined;
    return {
      entries: tally.entries,
      rootHash: toHex(rootOfRange(range)),
      entriesByType: tally.byType,
      rounds: tally.rounds.size,
      contributionsPerNode: tally.contributions,
      epsilonPerNode: tally.epsilon,
      deltaPerNode: tally.delta,
      refusalsPerNode: tally.refusals,
      members: [...tally.members].sort(),
      checkpoints: cps.length,
      latestCheckpoint: latest
        ? { size: latest.size, rootHash: toHex(latest.checkpoint.rootHash), origin: latest.checkpoint.origin, signatures: latest.signatures }
        : null,
      uncheckpointedEntries: tally.entries - (latest?.size ?? 0),
      checkpointKey,
    };
  };
  try {
    // Checkpoints: parse and check signatures first, so their sizes are known during the scan.
    let verifiers: NoteVerifier[] = [];
    try {
      verifiers = keys.map((k) => parseVerifierKey(k));
    } catch (e) {
      throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint key is not a valid verifier key: ${(e as Error).message}`);
    }
    checkpointKey = keys[0] ?? null;
    for (const { size, note } of await ledger.listCheckpoints()) {
      let checkpoint: Checkpoint;
      let signatures: string[];
      try {
        const parsed = parseCheckpoint(note);
        signatures = parsed.signatures.map((s) => s.name);
        if (verifiers.length === 0) throw new FedtwinError('LEDGER_CHECKPOINT_INVALID', 'no checkpoint key is recorded or given, so its signature cannot be checked');
        checkpoint = verifyCheckpoint(note, verifiers, { require: [verifiers[0].name] }).checkpoint;
      } catch (e) {
        throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint at size ${size}: ${(e as Error).message}`, size);
      }
      if (checkpoint.size !== size) throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint stored under size ${size} says size ${checkpoint.size}`, size);
      if (size > n) throw new Failure('LEDGER_CHECKPOINT_MISMATCH', n, `checkpoint for size ${size} is beyond the ${n} entries present (entries ${n}..${size - 1} are gone)`, size);
      if (cps.length && cps[0].checkpoint.origin !== checkpoint.origin) {
        throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint at size ${size} has origin ${checkpoint.origin}, earlier ones ${cps[0].checkpoint.origin}`, size);
      }
      cps.push({ size, checkpoint, signatures });
    }
    const cpAt = new Map(cps.map((c) => [c.size, c.checkpoint]));
    const checkRoot = (size: number): void => {
      const cp = cpAt.get(size);
      if (!cp) return;
      const root = size === 0 ? emptyRoot() : rootOfRange(range);
      if (!bytesEqual(root, cp.rootHash)) {
        throw new Failure(
          'LEDGER_CHECKPOINT_MISMATCH',
          size > 0 ? size - 1 : null,
          `checkpoint at size ${size}: signed root ${toHex(cp.rootHash)} does not match the root ${toHex(root)} recomputed from entries 0..${size - 1} (history was rewritten)`,
          size,
        );
      }
    };
    checkRoot(0);

    const { db, entries, nodes } = ledgerInternals(ledger);
    const chunk = Math.max(1, opts.chunk ?? 2048);
    // Iterate the root database over each sublevel's prefixed key range: the sublevel wrapper re-slices
    // every key (an allocation per row, 3 rows per entry); here keys keep their prefix and are read at
    // offset P. classic-level caps a nextv() at 16 KiB by default; raise it so one call yields a chunk.
    const P = entries.prefix.length;
    if (nodes.prefix.length !== P) throw new FedtwinError('LEDGER_CORRUPT', 'unexpected sublevel layout');
    const rangeOf = (prefix: string) => ({
      gte: utf8.encode(prefix),
      lt: utf8.encode(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)),
      keyEncoding: 'view',
      valueEncoding: 'view',
      highWaterMarkBytes: 16 * 1024 * 1024,
    });
    const eit = db.iterator(rangeOf(entries.prefix) as never) as unknown as RowIterator;
    const nit = db.iterator(rangeOf(nodes.prefix) as never) as unknown as RowIterator;
    let nodeBuf: [Uint8Array, Uint8Array][] = [];
    let nodePos = 0;
    const nextNode = async (): Promise<[Uint8Array, Uint8Array] | undefined> => {
      if (nodePos >= nodeBuf.length) {
        nodeBuf = await nit.nextv(chunk * 2);
        nodePos = 0;
        if (nodeBuf.length === 0) return undefined;
      }
      return nodeBuf[nodePos++];
    };
    // Signatures are checked by worker threads, chunk by chunk, while the next chunks are read and hashed;
    // results are consumed in order, so the first failure seen is the lowest bad index.
    const pool = createSignaturePool(opts.threads);
    const inflight: { first: number; entries: LedgerEntry[]; bad: Promise<number> }[] = [];
    const maxInflight = 4;
    const drainOne = async (): Promise<void> => {
      const c = inflight.shift() as (typeof inflight)[number];
      const bad = await c.bad;
      if (bad >= 0) {
        const e = c.entries[bad];
        throw new Failure('LEDGER_SIGNATURE_INVALID', c.first + bad, `entry ${c.first + bad}: signature does not verify against its author ${e.author} (forged or altered)`);
      }
    };
    const submit = (first: number, entries: LedgerEntry[]): void => {
      if (entries.length === 0) return;
      const bad = pool.check(entries);
      bad.catch(() => undefined);
      inflight.push({ first, entries, bad });
    };
    let expected = 0;
    try {
      for (;;) {
        const rows = await eit.nextv(chunk);
        if (rows.length === 0) break;
        const batch: LedgerEntry[] = [];
        const first = expected;
        let syncFailure: Failure | undefined;
        try {
          for (const [k, v] of rows) {
            const index = readU64be(k, P);
            if (index !== expected) {
              throw new Failure(
                'LEDGER_ENTRY_MISSING',
                expected,
                index > expected ? `entry ${expected} is missing (the next stored entry is ${index})` : `entry key ${index} is out of order`,
              );
            }
            if (index >= n) throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index} is beyond the recorded size ${n} (a write outside the ledger)`);
            let e: LedgerEntry;
            try {
              e = parseEntry(v);
            } catch (err) {
              throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${(err as Error).message}`);
            }
            for (const node of pushLeaf(range, index, e.leafHash)) {
              const stored = nodePos < nodeBuf.length ? nodeBuf[nodePos++] : await nextNode();
              // compare the key as numbers: (last leaf = this entry, level), no allocation per node
              if (!stored || stored[0].byteLength !== P + 9 || stored[0][P + 8] !== node.level || readU64be(stored[0], P) !== index) {
                const key = stored?.[0].subarray(P);
                const what = key ? `found node (level ${parseNodeKey(key).level}, index ${parseNodeKey(key).index}) instead` : 'it is missing';
                throw new Failure(
                  node.level === 0 ? 'LEDGER_LEAF_HASH_MISMATCH' : 'LEDGER_NODE_MISMATCH',
                  index,
                  node.level === 0 ? `entry ${index}: stored leaf hash is missing (${what})` : `tree node (level ${node.level}, index ${node.index}) ending at entry ${index}: ${what}`,
                );
              }
              if (!bytesEqual(stored[1], node.hash)) {
                throw new Failure(
                  node.level === 0 ? 'LEDGER_LEAF_HASH_MISMATCH' : 'LEDGER_NODE_MISMATCH',
                  index,
                  node.level === 0
                    ? `entry ${index}: leaf hash of the stored bytes ${toHex(node.hash)} does not match the stored leaf hash ${toHex(stored[1])} (entry bytes edited, reordered or replaced)`
                    : `tree node (level ${node.level}, index ${node.index}) ending at entry ${index}: stored ${toHex(stored[1])}, recomputed ${toHex(node.hash)}`,
                );
              }
            }
            tally.add(index, e);
            batch.push(e);
            expected++;
            checkRoot(expected);
          }
        } catch (err) {
          if (!(err instanceof Failure)) throw err;
          syncFailure = err;
        }
        submit(first, batch);
        if (syncFailure) {
          while (inflight.length) await drainOne();
          throw syncFailure;
        }
        while (inflight.length > maxInflight) await drainOne();
      }
      while (inflight.length) await drainOne();
      if (expected !== n) throw new Failure('LEDGER_ENTRY_MISSING', expected, `entry ${expected} is missing (the ledger records ${n} entries, ${expected} are present)`);
      const extra = await nextNode();
      if (extra) throw new Failure('LEDGER_NODE_MISMATCH', n, `the tree stores nodes beyond its ${n} entries (a truncated or rewritten log)`);
    } finally {
      await eit.close();
      await nit.close();
      await pool.close();
    }
    // Consecutive checkpoints must be consistent (proofs built from the stored nodes just verified).
    for (let k = 1; k < cps.length; k++) {
      const a = cps[k - 1];
      const b = cps[k];
      if (a.size === 0) continue;
      try {
        verifyConsistency(a.size, b.size, await ledger.consistencyProof(a.size, b.size), a.checkpoint.rootHash, b.checkpoint.rootHash);
      } catch (e) {
        if (!isFedtwinError(e, 'LEDGER_PROOF_INVALID')) throw e;
        throw new Failure('LEDGER_INCONSISTENT', null, `checkpoints at sizes ${a.size} and ${b.size} are not consistent: ${e.message}`, b.size);
      }
    }
    return { ok: true, summary: summary() };
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    const out: VerifyResult = { ok: false, index: err.index, code: err.code, message: err.message, summary: summary() };
    if (err.checkpointSize !== undefined) out.checkpointSize = err.checkpointSize;
    return out;
  }
}
