// Offline audit of a ledger directory (works on a copy; opens it read-only).
//
// One sequential pass: every entry is parsed (canonical form, schema), its leaf hash recomputed and its
// signature checked (on worker threads, overlapping the next chunk's reads); every stored tree node is
// compared with the node recomputed from the leaves (nodes are keyed by their last leaf, so they stream in
// the order they are rebuilt); every stored checkpoint's signature is checked and its root compared with
// the recomputed root at its size; consecutive checkpoints are checked with RFC 9162 consistency proofs.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { bytesEqual, readU64be, toHex, utf8 } from './bytes.ts';
import { ENTRY_TYPES, type EntryType } from './entry.ts';
import { createAuditPool } from './audit-pool.ts';
import { signatureImpl as sigImpl, type AuditChunkResult, type SignatureImpl } from './audit-chunk.ts';
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
  /** Members an `exclusion` entry removed from the federation (a contribution broke decryption, or a false report). */
  excluded: string[];
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
  /** Ed25519 implementation that checked entry signatures (libsodium when installed; node:crypto decides every rejection) */
  signatureImpl: SignatureImpl;
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
  byType: Record<EntryType, number> = { membership: 0, round: 0, contribution: 0, aggregate: 0, key: 0, refusal: 0, verdict: 0, exclusion: 0, consortium: 0 };
  rounds = new Set<number>();
  contributions: Record<string, number> = {};
  epsilon: Record<string, number> = {};
  delta: Record<string, number> = {};
  refusals: Record<string, number> = {};
  members = new Set<string>();
  /** members excluded by an `exclusion` entry */
  excluded = new Set<string>();
  /** round of the contribution at each index; NaN for other entry types */
  contributionRound: Float64Array;
  /** `<round> <node>` -> index of that node's contribution or refusal entry for that round (one of them, once) */
  answered = new Map<string, { index: number; type: 'contribution' | 'refusal' }>();

  constructor(size: number) {
    this.contributionRound = new Float64Array(size).fill(NaN);
  }

  /**
   * A node answers a round once: one contribution (its ε is counted once) or one refusal, never both. A
   * second one is what a crash between the aggregator's two stores used to leave (issue 11).
   */
  once(index: number, type: 'contribution' | 'refusal', round: number, who: string): void {
    const key = `${round} ${who}`;
    const prior = this.answered.get(key);
    if (prior) {
      const what = prior.type === type ? `a second ${type}` : `a ${type} besides its ${prior.type}`;
      throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${what} of node ${who} for round ${round} (the first is entry ${prior.index}); a node answers a round once`);
    }
    this.answered.set(key, { index, type });
  }

  /** Adds entry `j` of a worker's chunk result, which is ledger entry `index`. */
  add(index: number, r: AuditChunkResult, j: number): void {
    const type = ENTRY_TYPES[r.type[j]];
    this.entries++;
    this.byType[type]++;
    const round = r.round[j];
    const who = r.who[j] >= 0 ? r.strings[r.who[j]] : '';
    switch (type) {
      case 'membership':
        if (r.admit[j] === 1) this.members.add(who);
        else this.members.delete(who);
        break;
      case 'round':
        this.rounds.add(round);
        break;
      case 'contribution':
        this.once(index, 'contribution', round, who);
        this.contributions[who] = (this.contributions[who] ?? 0) + 1;
        this.epsilon[who] = r.epsilonTotal[j];
        this.delta[who] = r.deltaTotal[j];
        this.contributionRound[index] = round;
        break;
      case 'aggregate':
        for (let k = r.aggOffsets[j]; k < r.aggOffsets[j + 1]; k++) {
          const leaf = r.aggLeaves[k];
          if (leaf >= index || this.contributionRound[leaf] !== round) {
            throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: aggregate for round ${round} includes leaf ${leaf}, which is not an earlier contribution to that round`);
          }
        }
        break;
      case 'refusal':
        this.once(index, 'refusal', round, who);
        this.refusals[who] = (this.refusals[who] ?? 0) + 1;
        break;
      case 'verdict':
        break;
      case 'exclusion':
        if (who) this.excluded.add(who);
        break;
      case 'key':
      case 'consortium':
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
      excluded: [...tally.excluded].sort(),
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
      signatureImpl: sigImpl(),
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
    // Worker threads parse, hash and signature-check chunk after chunk while this thread reads the next
    // ones; results are consumed in order, so the first failure seen is the lowest bad index.
    const pool = createAuditPool(opts.threads);
    const inflight: { first: number; result: Promise<AuditChunkResult> }[] = [];
    const maxInflight = 4;
    let expected = 0;
    const consume = async (): Promise<void> => {
      const c = inflight.shift() as (typeof inflight)[number];
      const r = await c.result;
      for (let j = 0; j < r.count; j++) {
        const index = c.first + j;
        if (r.bad?.at === j && r.bad.kind === 'parse') throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${r.bad.message}`);
        for (const node of pushLeaf(range, index, r.leafHashes.subarray(j * 32, j * 32 + 32))) {
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
        if (r.bad?.at === j) throw new Failure('LEDGER_SIGNATURE_INVALID', index, `entry ${index}: ${r.bad.message}`);
        tally.add(index, r, j);
        expected++;
        checkRoot(expected);
      }
    };
    try {
      let read = 0;
      for (;;) {
        const rows = await eit.nextv(chunk);
        if (rows.length === 0) break;
        // Key continuity is checked here, before the bytes leave for a worker; a gap or a stray key ends
        // the read, and the entries before it are still examined (an earlier failure wins).
        let keyFailure: Failure | undefined;
        let take = 0;
        let bytes = 0;
        for (const [k, v] of rows) {
          const index = readU64be(k, P);
          if (index !== read) {
            keyFailure = new Failure(
              'LEDGER_ENTRY_MISSING',
              read,
              index > read ? `entry ${read} is missing (the next stored entry is ${index})` : `entry key ${index} is out of order`,
            );
            break;
          }
          if (index >= n) {
            keyFailure = new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index} is beyond the recorded size ${n} (a write outside the ledger)`);
            break;
          }
          take++;
          read++;
          bytes += v.byteLength;
        }
        if (take > 0) {
          const data = new Uint8Array(bytes);
          const offsets = new Uint32Array(take + 1);
          for (let j = 0, o = 0; j < take; j++) {
            data.set(rows[j][1], o);
            o += rows[j][1].byteLength;
            offsets[j + 1] = o;
          }
          const result = pool.run(data, offsets);
          result.catch(() => undefined);
          inflight.push({ first: read - take, result });
        }
        if (keyFailure) {
          while (inflight.length) await consume();
          throw keyFailure;
        }
        while (inflight.length > maxInflight) await consume();
      }
      while (inflight.length) await consume();
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
